import KTDB
import KTProvision
import Testing

@Suite("GraphSlug")
struct GraphSlugTests {
    @Test("valid slugs and their schema names", arguments: ["news", "a_b", "x1y", String(repeating: "a", count: 57)])
    func valid(slug: String) throws {
        let parsed = try GraphSlug(slug)
        #expect(parsed.schemaName.rawValue == "graph_" + slug)
        #expect(parsed.schemaName.rawValue.utf8.count <= 63)
    }

    @Test("invalid slugs", arguments: ["ab", "_news", "news_", "News", "new-s", "né", String(repeating: "a", count: 58), ""])
    func invalid(slug: String) {
        #expect(throws: KTProvisionError.self) { try GraphSlug(slug) }
    }

    @Test("'default' is reserved")
    func reserved() {
        do {
            _ = try GraphSlug("default")
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .reservedSlug)
        }
    }
}
