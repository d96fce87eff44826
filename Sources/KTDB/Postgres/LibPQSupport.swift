import CLibPQ

// libpq's PG_DIAG_* macros are character constants, which Swift does not import.
let diagSQLState = Int32(UInt8(ascii: "C"))
let diagMessagePrimary = Int32(UInt8(ascii: "M"))
let diagMessageDetail = Int32(UInt8(ascii: "D"))

func libpqErrorMessage(_ handle: OpaquePointer) -> String {
    guard let pointer = PQerrorMessage(handle) else { return "unknown libpq error" }
    var text = String(cString: pointer)
    while let last = text.last, last.isWhitespace { text.removeLast() }
    return text.isEmpty ? "unknown libpq error" : text
}

/// Calls `body` with a C array of C strings (NULL for nil) that lives for the call. All strings
/// share one buffer, so a call costs two allocations whatever the number of values.
func withCStrings<R>(_ strings: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R) -> R {
    if strings.isEmpty { return body(nil) }
    var buffer: [CChar] = [0]  // never empty, so the base address exists even when every value is NULL
    var offsets: [Int?] = []
    offsets.reserveCapacity(strings.count)
    for string in strings {
        guard var string else {
            offsets.append(nil)
            continue
        }
        offsets.append(buffer.count)
        string.withUTF8 { bytes in
            bytes.withMemoryRebound(to: CChar.self) { buffer.append(contentsOf: $0) }
        }
        buffer.append(0)
    }
    return buffer.withUnsafeBufferPointer { storage in
        let base = storage.baseAddress!
        let pointers: [UnsafePointer<CChar>?] = offsets.map { $0.map { base + $0 } }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress) }
    }
}
