import Foundation

/// Printing URLs without their credentials.
public enum URLRedaction {
    /// `text` with the user information of its authority (`user:password@`) replaced by
    /// `***@`: what logs, errors and descriptions print for a URL. A text that is not a URL
    /// comes back unchanged unless it holds an `@` after `://`, which is redacted all the same.
    public static func redactingUserInfo(_ text: String) -> String {
        guard let scheme = text.range(of: "://"), let at = text[scheme.upperBound...].lastIndex(of: "@") else { return text }
        return String(text[..<scheme.upperBound]) + "***" + String(text[at...])
    }
}
