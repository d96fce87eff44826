import Foundation
import KTGraph
import Testing

@Suite("Open kinds")
struct KindsTests {
    @Test("a kind holds any string the original stored: literals, constants, JSON and SQL text round-trip unchanged")
    func openKinds() throws {
        let stored = NodeType(rawValue: "Legacy Type ünïcode")
        #expect(stored.rawValue == "Legacy Type ünïcode" && stored.description == stored.rawValue && stored.postgresText == stored.rawValue)
        #expect(NodeType.concept == "concept" && FactType.claim == "claim" && RelationshipType.related == "related")
        let encoded = try JSONEncoder().encode([stored])
        #expect(String(decoding: encoded, as: UTF8.self) == #"["Legacy Type ünïcode"]"#)
        #expect(try JSONDecoder().decode([NodeType].self, from: encoded) == [stored])
        #expect(try NodeType(postgresText: "perspective", typeOID: 25) == .perspective)
        #expect(GraphKeys.edgeKey(.related, "ml", "ai") == "related:ai--ml")
        #expect(GraphKeys.edgeKey(RelationshipType(rawValue: "draws_from"), "y", "x") == "draws_from:y--x")
    }
}
