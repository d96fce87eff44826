import CLibPQ

/// `COPY` on a loop connection: reading `COPY TO STDOUT` data and sending `COPY FROM STDIN`
/// data, one job at a time (see ``LoopJob/Request``).
extension LoopConnection {
    /// A `COPY` in progress: the server streams data out, or waits for data in.
    enum CopyState { case out, into }

    /// How much `COPY TO STDOUT` data one ``LoopJob/Request/copyRead`` job returns at most
    /// (about; a row is never split by libpq).
    static let copyChunkLimit = 512 * 1024

    var isCopyingOut: Bool { copyState == .out }
    var isCopyingIn: Bool { copyState == .into }

    /// What a `copyRead` or `copyWrite` job's step came to.
    enum CopyProgress {
        /// Waiting for the socket (readable for a read, writable for a write).
        case waiting
        case finished(LoopJob, Result<[PostgresResult], KTDBError>)
        /// A read reached the end of the data: the `COPY`'s own result is read next.
        case readResult
    }

    /// Reads buffered `COPY TO STDOUT` data for the current `copyRead` job.
    func readCopyData() -> CopyProgress {
        guard let job = current else { return .waiting }
        guard copyState == .out else {
            return finish(job, .failure(KTDBError(code: .invalidArgument, message: "no COPY TO STDOUT is in progress"))).progress
        }
        while copyBuffer.count < Self.copyChunkLimit {
            var pointer: UnsafeMutablePointer<CChar>?
            let length = PQgetCopyData(handle, &pointer, 1)
            if length > 0, let pointer {
                pointer.withMemoryRebound(to: UInt8.self, capacity: Int(length)) { copyBuffer.append(contentsOf: UnsafeBufferPointer(start: $0, count: Int(length))) }
                PQfreemem(pointer)
            } else if length == 0 {
                // Nothing buffered: wait for the socket, unless there is data to hand over.
                return copyBuffer.isEmpty ? .waiting : finishCopyRead(job)
            } else if length == -1 {
                // The end of the data; the COPY's result follows.
                copyState = nil
                commands = [.copyEnd(error: nil)]
                commandIndex = 0
                return .readResult
            } else {
                broken = true
                return finish(job, .failure(connectionError())).progress
            }
        }
        return finishCopyRead(job)
    }

    /// Hands the data read so far to the job (``finish(_:_:)`` adds it).
    private func finishCopyRead(_ job: LoopJob) -> CopyProgress {
        finish(job, .success([])).progress
    }

    /// Hands the current `copyWrite` job's data to libpq; it completes once libpq has sent it
    /// (`flushed`), or waits for the socket.
    func writeCopyData(flushed: Bool) -> CopyProgress {
        guard let job = current, case .copyWrite(let data) = job.request else { return .waiting }
        guard copyState == .into else {
            return finish(job, .failure(KTDBError(code: .invalidArgument, message: "no COPY FROM STDIN is in progress"))).progress
        }
        if !copyWriteQueued {
            let queued = data.withUnsafeBufferPointer { buffer in
                buffer.withMemoryRebound(to: CChar.self) { PQputCopyData(handle, $0.baseAddress, Int32($0.count)) }
            }
            switch queued {
            case 1: copyWriteQueued = true
            case 0: return .waiting  // libpq's buffer is full: retried when the socket is writable
            default:
                // The server ended the COPY (an error): its result is read like a statement's.
                copyState = nil
                commands = [.copyEnd(error: nil)]
                commandIndex = 0
                return .readResult
            }
        }
        return flushed ? finish(job, .success([])).progress : .waiting
    }
}

extension LoopConnection.Next {
    /// A finished job as a COPY step's outcome.
    var progress: LoopConnection.CopyProgress {
        if case .finished(let job, let result) = self { return .finished(job, result) }
        return .waiting
    }
}
