import Foundation

/// PostgreSQL's text format for timestamps, in UTC.
enum PostgresTimestamp {
    static func format(_ date: Date) -> String {
        let total = date.timeIntervalSince1970
        var seconds = Int64(total.rounded(.down))
        var micros = Int64(((total - Double(seconds)) * 1_000_000).rounded())
        if micros >= 1_000_000 { seconds += 1; micros -= 1_000_000 }
        let days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        let secondOfDay = seconds - days * 86400
        let (y, m, d) = civilFromDays(days)
        func pad(_ v: Int64, _ width: Int) -> String {
            let s = String(v)
            return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
        }
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2)) \(pad(secondOfDay / 3600, 2)):\(pad(secondOfDay / 60 % 60, 2)):\(pad(secondOfDay % 60, 2)).\(pad(micros, 6))+00"
    }

    /// Parses `YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM[:SS]]]`; no offset means UTC.
    static func parse(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 19, bytes[4] == 0x2D, bytes[7] == 0x2D, bytes[10] == 0x20 || bytes[10] == 0x54,
            bytes[13] == 0x3A, bytes[16] == 0x3A
        else { return nil }
        func number(_ from: Int, _ to: Int) -> Int64? {
            var value: Int64 = 0
            for i in from..<to {
                let b = bytes[i]
                guard b >= 0x30 && b <= 0x39 else { return nil }
                value = value * 10 + Int64(b - 0x30)
            }
            return value
        }
        guard let y = number(0, 4), let mo = number(5, 7), let d = number(8, 10),
            let h = number(11, 13), let mi = number(14, 16), let s = number(17, 19)
        else { return nil }
        var index = 19
        var fraction = 0.0
        if index < bytes.count, bytes[index] == 0x2E {
            index += 1
            var scale = 0.1
            while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 {
                fraction += Double(bytes[index] - 0x30) * scale
                scale /= 10
                index += 1
            }
        }
        var offset: Int64 = 0
        if index < bytes.count {
            let sign: Int64
            switch bytes[index] {
            case 0x2B: sign = 1
            case 0x2D: sign = -1
            case 0x5A: return build(y, mo, d, h, mi, s, fraction, 0)
            default: return nil
            }
            index += 1
            let parts = String(decoding: bytes[index...], as: UTF8.self).split(separator: ":")
            guard let oh = parts.first.flatMap({ Int64($0) }) else { return nil }
            let om = parts.count > 1 ? Int64(parts[1]) ?? 0 : 0
            let os = parts.count > 2 ? Int64(parts[2]) ?? 0 : 0
            offset = sign * (oh * 3600 + om * 60 + os)
        }
        return build(y, mo, d, h, mi, s, fraction, offset)
    }

    private static func build(_ y: Int64, _ mo: Int64, _ d: Int64, _ h: Int64, _ mi: Int64, _ s: Int64, _ fraction: Double, _ offset: Int64) -> Date {
        let days = daysFromCivil(y, mo, d)
        let seconds = days * 86400 + h * 3600 + mi * 60 + s - offset
        return Date(timeIntervalSince1970: Double(seconds) + fraction)
    }

    // Howard Hinnant's civil-date algorithms (proleptic Gregorian calendar).
    static func daysFromCivil(_ year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    static func civilFromDays(_ days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }
}

/// PostgreSQL's text format for one-dimensional text arrays.
enum PostgresTextArray {
    static func format(_ elements: [String]) -> String { format(elements.lazy.map { Optional($0) }) }

    /// Formats the elements; `nil` is written as an unquoted `NULL`. Built as UTF-8 bytes: `"`
    /// and `\\` are ASCII and never part of a multi-byte sequence, so escaping byte-wise is exact.
    static func format(_ elements: some Collection<String?>) -> String {
        let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")
        var bytes: [UInt8] = [UInt8(ascii: "{")]
        bytes.reserveCapacity(elements.count * 24 + 2)
        var first = true
        for element in elements {
            if !first { bytes.append(UInt8(ascii: ",")) }
            first = false
            guard var element else {
                bytes.append(contentsOf: "NULL".utf8)
                continue
            }
            bytes.append(quote)
            element.withUTF8 { utf8 in
                if utf8.contains(where: { $0 == quote || $0 == backslash }) {
                    for byte in utf8 {
                        if byte == quote || byte == backslash { bytes.append(backslash) }
                        bytes.append(byte)
                    }
                } else {
                    bytes.append(contentsOf: utf8)
                }
            }
            bytes.append(quote)
        }
        bytes.append(UInt8(ascii: "}"))
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Parses `{a,"b c",NULL}`; NULL elements are not supported in `[String]` and fail.
    static func parse(_ text: String) -> [String]? {
        var scalars = Substring(text).unicodeScalars[...]
        // Skip an optional dimension decoration such as `[1:2]=`.
        if scalars.first == "[", let eq = scalars.firstIndex(of: "=") { scalars = scalars[scalars.index(after: eq)...] }
        guard scalars.first == "{", scalars.last == "}" else { return nil }
        scalars = scalars.dropFirst().dropLast()
        var result: [String] = []
        if scalars.isEmpty { return result }
        var current = String.UnicodeScalarView()
        var quoted = false, inQuotes = false, escaped = false
        func finish() -> Bool {
            let value = String(current)
            if !quoted && value == "NULL" { return false }
            result.append(value)
            current = String.UnicodeScalarView()
            quoted = false
            return true
        }
        for ch in scalars {
            if escaped { current.append(ch); escaped = false; continue }
            switch ch {
            case "\\": escaped = true
            case "\"": inQuotes.toggle(); quoted = true
            case "," where !inQuotes: if !finish() { return nil }
            default: current.append(ch)
            }
        }
        if inQuotes || escaped { return nil }
        return finish() ? result : nil
    }
}
