import KTCore
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

@Suite("PostgreSQL event loops")
struct PostgresEventLoopsTests {
    @Test("the loop count is configuration: 1-64 only, and once the loops run only their own count is accepted")
    func configuration() throws {
        #expect(throws: KTDBError.self) { try PostgresEventLoops.configure(count: 0) }
        #expect(throws: KTDBError.self) { try PostgresEventLoops.configure(count: 65) }
        // Start the loops (as the first connection would), then ask for another count.
        let running = PostgresEventLoop.shared.count
        #expect(PostgresEventLoops.runningCount == running)
        try PostgresEventLoops.configure(count: running)
        let refused = #expect(throws: KTDBError.self) { try PostgresEventLoops.configure(count: running == 64 ? 63 : running + 1) }
        #expect(refused?.code == .invalidArgument)
    }
}
