import Foundation
import KTDB
import Testing

@testable import KTServerKit

@Suite("JSONWriter (the graph list's encoder)")
struct JSONWriterTests {
    @Test("strings with quotes, backslashes, control characters and non-ASCII text round-trip; dates are ISO 8601 UTC seconds; nulls and nesting")
    func roundTrip() throws {
        let hostile = "a \"quoted\" \\ back\\slash\nnew\tline\r\u{01}\u{1F} é 日本 🚀 </script>"
        let date = Date(timeIntervalSince1970: 1_795_000_000.75)
        var json = JSONWriter()
        json.array { json in
            json.object { json in
                json.key("s"); json.string(hostile)
                json.key("n"); json.string(nil)
                json.key("i"); json.int(-42)
                json.key("b"); json.bool(true)
                json.key("d"); json.date(date)
                json.key("u"); json.uuid(UUID(uuidString: "E621E1F8-C36C-495A-93FC-0C247A3E6E5F"))
                json.key("empty"); json.array { _ in }
            }
            json.int(7)
        }
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(json.bytes)) as? [Any])
        let object = try #require(parsed.first as? [String: Any])
        #expect(object["s"] as? String == hostile)
        #expect(object["n"] is NSNull)
        #expect(object["i"] as? Int == -42)
        #expect(object["b"] as? Bool == true)
        #expect(object["d"] as? String == "2026-11-18T11:06:40Z")
        #expect(object["u"] as? String == "e621e1f8-c36c-495a-93fc-0c247a3e6e5f")
        #expect((object["empty"] as? [Any])?.isEmpty == true)
        #expect(parsed.last as? Int == 7)
        // What JSONEncoder's .iso8601 strategy writes for the same instant.
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        #expect(String(decoding: try encoder.encode([date]), as: UTF8.self) == #"["2026-11-18T11:06:40Z"]"#)
    }
}
