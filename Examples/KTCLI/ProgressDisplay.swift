import Foundation
import Synchronization

/// Shows the progress of long work: a bar redrawn in place when standard output is a terminal,
/// plain lines otherwise (one per step, for logs and pipes).
final class ProgressDisplay: Sendable {
    private let title: String
    private let isTerminal = isatty(STDOUT_FILENO) == 1
    private let lastDrawn = Mutex(ContinuousClock.now - .seconds(1))

    init(title: String) { self.title = title }

    /// Reports `completed` of `total`, with the step's line (printed as is when not on a terminal).
    func update(completed: Int, total: Int, line: String) {
        guard isTerminal else {
            // Written at once (not through print's buffer), so a log or a pipe sees each step as it happens.
            FileHandle.standardOutput.write(Data("[\(completed)/\(total)] \(line)\n".utf8))
            return
        }
        // Redraw at most 20 times a second, and always at the end.
        let now = ContinuousClock.now
        let draw = lastDrawn.withLock { last in
            guard completed == total || now - last >= .milliseconds(50) else { return false }
            last = now
            return true
        }
        guard draw else { return }
        let width = 30
        let filled = total == 0 ? width : width * completed / total
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        FileHandle.standardOutput.write(Data("\r\(title) \(bar) \(completed)/\(total)\u{1B}[K".utf8))
        if completed == total { FileHandle.standardOutput.write(Data("\n".utf8)) }
    }
}
