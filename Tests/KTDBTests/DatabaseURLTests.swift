import KTCore
import Testing

@testable import KTDB

@Suite("DatabaseURL")
struct DatabaseURLTests {
    @Test(
        "accepts postgresql, postgres and SQLAlchemy driver schemes",
        arguments: [
            "postgresql://kt:pw@db.example:6543/graph",
            "postgres://kt:pw@db.example:6543/graph",
            "postgresql+asyncpg://kt:pw@db.example:6543/graph",
            "postgresql+psycopg2://kt:pw@db.example:6543/graph",
        ])
    func schemes(url: String) throws {
        let parsed = try DatabaseURL(parsing: url)
        #expect(parsed.host == "db.example")
        #expect(parsed.port == 6543)
        #expect(parsed.user == "kt")
        #expect(parsed.password?.revealedValue == "pw")
        #expect(parsed.database == "graph")
        #expect(parsed.urlString(includingPassword: true) == "postgresql://kt:pw@db.example:6543/graph")
    }

    @Test("percent-encoded user and password decode exactly once and round-trip")
    func percentEncoding() throws {
        let parsed = try DatabaseURL(parsing: "postgresql://us%40er:a%2Bb%25c%40d%2Fe%3Af@h/db")
        #expect(parsed.user == "us@er")
        #expect(parsed.password?.revealedValue == "a+b%c@d/e:f")
        let keywords = Dictionary(uniqueKeysWithValues: parsed.connectionKeywords.map { ($0.keyword, $0.value) })
        #expect(keywords["password"] == "a+b%c@d/e:f")
        #expect(keywords["user"] == "us@er")
        let again = try DatabaseURL(parsing: parsed.urlString(includingPassword: true))
        #expect(again == parsed)
    }

    @Test("ssl=require becomes sslmode=require")
    func sslNormalisation() throws {
        #expect(try DatabaseURL(parsing: "postgresql+asyncpg://u:p@h/db?ssl=require").parameters == ["sslmode": "require"])
        #expect(try DatabaseURL(parsing: "postgresql://u:p@h/db?ssl=true").sslMode == .require)
        #expect(try DatabaseURL(parsing: "postgresql://u:p@h/db?sslmode=verify-full").sslMode == .verifyFull)
    }

    @Test("an unknown query key is an error naming the key, not passed to libpq")
    func unknownKey() {
        do {
            _ = try DatabaseURL(parsing: "postgresql://u:secretpw@h/db?prepared_statement_cache_size=0", key: "DATABASE_URL")
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .invalidDatabaseURL)
            #expect(error.message.hasPrefix("DATABASE_URL: "))
            #expect(error.debugDescription.contains("prepared_statement_cache_size"))
            #expect(!error.debugDescription.contains("secretpw"))
        }
    }

    @Test(
        "invalid input gets a clear error",
        arguments: [
            "mysql://u:p@h/db", "not a url", "postgresql://u:p@h:99999/db", "postgresql://u:p@h/db?sslmode=sometimes",
        ])
    func invalid(url: String) {
        #expect(throws: KTDBError.self) { try DatabaseURL(parsing: url) }
    }

    @Test("description and debugDescription never show the password")
    func redaction() throws {
        let parsed = try DatabaseURL(parsing: "postgresql://kt:hunter2@h:5432/db")
        #expect(!parsed.description.contains("hunter2"))
        #expect(!parsed.debugDescription.contains("hunter2"))
        #expect(!"\(parsed)".contains("hunter2"))
        #expect(parsed.description.contains("******"))
    }

    @Test("IPv6 hosts and missing parts")
    func ipv6() throws {
        let parsed = try DatabaseURL(parsing: "postgresql://[::1]:5433/db")
        #expect(parsed.host == "::1")
        #expect(parsed.port == 5433)
        #expect(parsed.user == nil)
        #expect(parsed.urlString() == "postgresql://[::1]:5433/db")
    }

    @Test("a default sslmode applies only when the URL names none")
    func defaultSSLMode() throws {
        let plain = try DatabaseURL(parsing: "postgresql://u@h/db")
        #expect(plain.withDefaultSSLMode(.require).sslMode == .require)
        let explicit = try DatabaseURL(parsing: "postgresql://u@h/db?sslmode=disable")
        #expect(explicit.withDefaultSSLMode(.require).sslMode == .disable)
    }
}

@Suite("Credentials never printed (issue 17, items 19 and 20)")
struct CredentialRedactionTests {
    @Test(
        "a raw '?' or '#' in a password: it parses, or the error quotes no part of it and says to percent-encode",
        arguments: [
            ("postgresql://kt:S3cr?t@db.example:5432/graph", "S3cr?t"),
            ("postgresql://kt:S3cr#t@db.example:5432/graph", "S3cr#t"),
            ("postgresql://kt:a?b#c/d@db.example/graph", "a?b#c/d"),
        ])
    func rawSpecialCharacters(url: String, password: String) throws {
        let parsed = try DatabaseURL(parsing: url)
        #expect(parsed.password?.revealedValue == password)
        #expect(parsed.host == "db.example")
        #expect(parsed.database == "graph")
    }

    @Test(
        "errors of a URL with credentials never quote them",
        arguments: [
            "postgresql://kt:S3cr?t@db.example:notaport/graph",
            "postgresql://kt:S3cr%zzt@db.example/graph",
            "postgresql://kt:S3cr@db.example/graph#frag",
            "postgresql://kt:S3cr?t#x",
        ])
    func errorsNeverQuoteCredentials(url: String) {
        do {
            _ = try DatabaseURL(parsing: url, key: "DATABASE_URL")
            Issue.record("\(url) should not parse")
        } catch {
            let text = "\(error) \(String(reflecting: error))"
            for fragment in ["S3cr", "zzt"] { #expect(!text.contains(fragment), "\(text)") }
        }
    }

    @Test("the percent-encoding hint is in the message")
    func hint() {
        do {
            _ = try DatabaseURL(parsing: "postgresql://kt:S3cr%zzt@db.example/graph")
        } catch {
            #expect(error.message.contains("percent-encoded"))
        }
    }
}
