import Foundation
import KTDB

/// Random values for credentials: API tokens (with a `kt_` prefix), console session ids and
/// CSRF tokens.
public enum SecureToken {
    /// 256 bits from the system's secure generator, URL-safe base64 without padding (43 characters).
    public static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}
