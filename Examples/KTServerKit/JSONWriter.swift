import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// A value that writes its own JSON: for the large lists where Foundation's `JSONEncoder`
/// (a dictionary per object, then sorting and serialising it) cost more than the database work.
protocol JSONWritable {
    func write(to json: inout JSONWriter)
}

extension Array: JSONWritable where Element: JSONWritable {
    func write(to json: inout JSONWriter) {
        json.array { json in for element in self { element.write(to: &json) } }
    }
}

/// Builds JSON text into bytes: objects, arrays and the scalar values the API uses. Commas are
/// placed by the writer; strings are escaped per RFC 8259; dates are ISO 8601 in UTC with whole
/// seconds (`2026-11-26T10:00:00Z`, what `JSONEncoder.DateEncodingStrategy.iso8601` writes).
struct JSONWriter {
    private(set) var bytes: [UInt8] = []
    /// Per open container: whether nothing was written in it yet.
    private var empty: [Bool] = [true]
    private var afterKey = false

    init(capacity: Int = 1024) { bytes.reserveCapacity(capacity) }

    private mutating func separate() {
        if afterKey {
            afterKey = false
            return
        }
        if !empty[empty.count - 1] { bytes.append(UInt8(ascii: ",")) }
        empty[empty.count - 1] = false
    }

    mutating func object(_ body: (inout JSONWriter) -> Void) { container(open: "{", close: "}", body) }

    mutating func array(_ body: (inout JSONWriter) -> Void) { container(open: "[", close: "]", body) }

    private mutating func container(open: Unicode.Scalar, close: Unicode.Scalar, _ body: (inout JSONWriter) -> Void) {
        separate()
        bytes.append(UInt8(ascii: open))
        empty.append(true)
        body(&self)
        empty.removeLast()
        bytes.append(UInt8(ascii: close))
    }

    /// An object member's key; the next value written is its value.
    mutating func key(_ name: String) {
        separate()
        appendString(name)
        bytes.append(UInt8(ascii: ":"))
        afterKey = true
    }

    mutating func null() {
        separate()
        bytes.append(contentsOf: "null".utf8)
    }

    mutating func string(_ value: String?) {
        guard let value else { return null() }
        separate()
        appendString(value)
    }

    mutating func bool(_ value: Bool) {
        separate()
        bytes.append(contentsOf: (value ? "true" : "false").utf8)
    }

    mutating func int(_ value: Int) {
        separate()
        bytes.append(contentsOf: String(value).utf8)
    }

    /// A finite number (rounded to microseconds); a non-finite one is written as 0.
    mutating func double(_ value: Double) {
        separate()
        let rounded = value.isFinite ? (value * 1e6).rounded() / 1e6 : 0
        bytes.append(contentsOf: "\(rounded)".utf8)
    }

    /// A UUID in lower case, as the API writes them.
    mutating func uuid(_ value: UUID?) {
        guard let value else { return null() }
        string(value.uuidString.lowercased())
    }

    mutating func date(_ value: Date) {
        separate()
        var seconds = time_t(value.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        bytes.append(UInt8(ascii: "\""))
        digits(Int(parts.tm_year) + 1900, 4)
        bytes.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mon) + 1, 2)
        bytes.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mday), 2)
        bytes.append(UInt8(ascii: "T"))
        digits(Int(parts.tm_hour), 2)
        bytes.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_min), 2)
        bytes.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_sec), 2)
        bytes.append(contentsOf: "Z\"".utf8)
    }

    private mutating func digits(_ value: Int, _ width: Int) {
        var divisor = 1
        for _ in 1..<width { divisor *= 10 }
        var rest = value
        while divisor > 0 {
            bytes.append(UInt8(ascii: "0") + UInt8((rest / divisor) % 10))
            rest %= divisor
            divisor /= 10
        }
    }

    private mutating func appendString(_ value: String) {
        bytes.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(contentsOf: "\\\"".utf8)
            case UInt8(ascii: "\\"): bytes.append(contentsOf: "\\\\".utf8)
            case UInt8(ascii: "\n"): bytes.append(contentsOf: "\\n".utf8)
            case UInt8(ascii: "\r"): bytes.append(contentsOf: "\\r".utf8)
            case UInt8(ascii: "\t"): bytes.append(contentsOf: "\\t".utf8)
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                bytes.append(contentsOf: "\\u00".utf8)
                bytes.append(hex[Int(byte >> 4)])
                bytes.append(hex[Int(byte & 0xF)])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}

extension JSONBody {
    /// A JSON response written by the value itself.
    static func response(writing value: some JSONWritable, status: HTTPResponse.Status = .ok) -> Response {
        var json = JSONWriter(capacity: 4096)
        value.write(to: &json)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: json.bytes)))
    }
}
