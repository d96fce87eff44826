import KTConfig
import KTCore
import KTDB
import KTQdrant
import Testing

@Suite("Redaction")
struct RedactionTests {
    @Test(
        "Qdrant URLs with user information are printed redacted",
        arguments: [
            ("http://user:pass@qdrant.example:6333", "http://***@qdrant.example:6333"),
            ("https://pass@qdrant.example", "https://***@qdrant.example"),
            ("http://qdrant.example:6333", "http://qdrant.example:6333"),
        ])
    func qdrantRedaction(url: String, printed: String) {
        #expect(URLRedaction.redactingUserInfo(url) == printed)
        var settings = Settings()
        settings.qdrant.url = url
        #expect(!"\(settings.qdrant)".contains("pass") && !"\(settings)".contains("pass"))
        let entry = GraphDatabaseConfig(
            graphDatabaseURL: try! DatabaseURL(parsing: "postgresql://h/db"),
            writeDatabaseURL: try! DatabaseURL(parsing: "postgresql://h/db"), qdrantURL: url)
        #expect(!"\(entry)".contains("pass"))
    }
}
