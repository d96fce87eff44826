import KTConfig
import Testing

@testable import KTDB

@Suite("Connection configuration: libpq keywords")
struct ConnectionConfigurationTests {
    func keywords(_ configuration: PostgresConnection.Configuration) -> [String: String] {
        Dictionary(configuration.keywords.map { ($0.keyword, $0.value) }, uniquingKeysWith: { $1 })
    }

    @Test("keepalives and tcp_user_timeout are on by default; statement_timeout is a startup option when set (issue 17, item 2)")
    func defaults() throws {
        let url = try DatabaseURL(parsing: "postgresql://kt@db.example/graph")
        let plain = keywords(PostgresConnection.Configuration(url: url))
        #expect(plain["keepalives"] == "1")
        #expect(plain["keepalives_idle"] == "30")
        #expect(plain["keepalives_interval"] == "10")
        #expect(plain["keepalives_count"] == "3")
        #expect(plain["tcp_user_timeout"] == "60000")
        #expect(plain["options"] == nil)
        var configuration = PostgresConnection.Configuration(url: url, keepalives: nil, tcpUserTimeout: nil, statementTimeout: .milliseconds(1500))
        let tuned = keywords(configuration)
        #expect(tuned["keepalives"] == nil && tuned["tcp_user_timeout"] == nil)
        #expect(tuned["options"] == "-c statement_timeout=1500")
        // What the URL names wins.
        configuration = PostgresConnection.Configuration(url: try DatabaseURL(parsing: "postgresql://kt@db.example/graph?keepalives_idle=5&tcp_user_timeout=900"))
        #expect(keywords(configuration)["keepalives_idle"] == "5")
        #expect(keywords(configuration)["tcp_user_timeout"] == "900")
    }
}
