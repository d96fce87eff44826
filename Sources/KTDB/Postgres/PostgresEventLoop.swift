import CLibPQ
import Foundation
import Glibc
import Synchronization

/// Waits for socket readiness of many nonblocking libpq connections on one thread (`epoll`).
///
/// A job starts on the caller's thread: with the connection in nonblocking mode, sending a
/// command (`PQsend*`, `PQflush`) never blocks, so the caller need not wake another thread.
/// Reading is done here when the socket becomes readable; the job's completion then resumes the
/// waiting task. A per-connection lock serialises the caller and the loop, and completions run
/// outside it. No libpq call that can block ever runs on Swift's cooperative pool.
///
/// The loop is also a `TaskExecutor`: a task that prefers it (`withTaskExecutorPreference`) runs
/// on the loop thread between its statements, so a statement's completion resumes it without
/// waking another thread. Such a task must not block.
final class PostgresEventLoop: TaskExecutor, Sendable {
    typealias Completion = (job: LoopJob, result: Result<[PostgresResult], KTDBError>)

    private struct RunQueue {
        var jobs: [UnownedJob] = []
        var sleeping = false
    }

    private let epollFD: Int32
    private let wakeFD: Int32
    private let registrations = Mutex<[Int32: LoopConnection]>([:])
    private let runQueue = Mutex(RunQueue())

    /// The process-wide loops; connections are spread across them. Their count is
    /// ``PostgresEventLoops/configure(count:)``'s, or one per processor.
    static let shared: [PostgresEventLoop] = {
        let count = PostgresEventLoops.start()
        return (0..<count).map { PostgresEventLoop(name: "kt-pg-loop-\($0)") }
    }()
    private static let nextLoop = Atomic<Int>(0)

    static func next() -> PostgresEventLoop {
        shared[nextLoop.wrappingAdd(1, ordering: .relaxed).oldValue % shared.count]
    }

    private init(name: String) {
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        wakeFD = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        precondition(epollFD >= 0 && wakeFD >= 0, "epoll/eventfd is unavailable")
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.fd = wakeFD
        epoll_ctl(epollFD, EPOLL_CTL_ADD, wakeFD, &event)
        let thread = Thread { [self] in self.loop() }
        thread.name = name
        thread.stackSize = 1024 * 1024
        thread.start()
    }

    // MARK: TaskExecutor

    func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        let wake = runQueue.withLock { queue -> Bool in
            queue.jobs.append(unowned)
            defer { queue.sleeping = false }
            return queue.sleeping
        }
        if wake {
            var one: UInt64 = 1
            _ = write(wakeFD, &one, 8)
        }
    }

    func asUnownedTaskExecutor() -> UnownedTaskExecutor {
        UnownedTaskExecutor(ordinary: self)
    }

    /// Starts watching a connection's socket.
    func register(_ connection: LoopConnection) throws(KTDBError) {
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.fd = connection.fd
        try registrations.withLock { registrations throws(KTDBError) in
            guard epoll_ctl(epollFD, EPOLL_CTL_ADD, connection.fd, &event) == 0 else {
                throw KTDBError(code: .connectionFailed, message: "cannot watch the connection's socket (errno \(errno))")
            }
            registrations[connection.fd] = connection
        }
    }

    /// Queues `job` on `connection` and, if the connection is free, sends it from this thread.
    ///
    /// Closing a connection whose statement in flight was abandoned (its task was cancelled)
    /// does not wait for that statement: nobody waits for its answer, and with no cancel request
    /// sent (behind a transaction pooler) the answer may be long in coming.
    func submit(_ job: LoopJob, to connection: LoopConnection) {
        var completions: [Completion] = []
        connection.lock.withLock { _ in
            if case .close = job.request, let abandoned = connection.current, connection.stateBox.abandoned.load(ordering: .acquiring) {
                connection.current = nil
                completions.append((abandoned, .failure(KTDBError(code: .connectionClosed, message: "the connection was closed after its statement was abandoned"))))
                connection.queue.insert(job, at: 0)
            } else {
                connection.queue.append(job)
            }
            if connection.current == nil { startNext(connection, &completions) }
        }
        for completion in completions { completion.job.complete(completion.result) }
    }

    // MARK: Under the connection's lock

    private func startNext(_ connection: LoopConnection, _ completions: inout [Completion]) {
        while connection.current == nil, !connection.queue.isEmpty {
            let job = connection.queue.removeFirst()
            if case .close = job.request {
                deregister(connection)
                connection.finish()
                completions.append((job, .success([])))
                continue
            }
            guard connection.isUsable else {
                completions.append((job, .failure(KTDBError(code: .connectionClosed, message: "the connection is closed"))))
                continue
            }
            if case .copyEnd(error: .some) = job.request, !connection.isCopyingIn {
                // Aborting a COPY FROM STDIN the server has already ended: nothing to do.
                completions.append((job, .success([])))
                continue
            }
            connection.begin(job)
            switch job.request {
            case .copyRead:
                setInterest(connection, read: true)
                readCopy(connection, &completions)
            case .copyWrite:
                writeCopy(connection, &completions)
            default:
                sendCurrentCommand(connection, &completions)
            }
        }
    }

    /// Reads `COPY TO STDOUT` data for the current job; at the end of the data, the COPY's
    /// result is read like any statement's.
    private func readCopy(_ connection: LoopConnection, _ completions: inout [Completion]) {
        switch connection.readCopyData() {
        case .waiting:
            return
        case .finished(let job, let result):
            completions.append((job, result))
            startNext(connection, &completions)
        case .readResult:
            readResults(connection, &completions)
        }
    }

    /// Hands the current job's `COPY FROM STDIN` data to libpq and sends it; the job completes
    /// when libpq's buffer is empty (so a writer never runs ahead of the socket).
    private func writeCopy(_ connection: LoopConnection, _ completions: inout [Completion]) {
        while connection.current != nil {
            switch connection.writeCopyData(flushed: false) {
            case .finished(let job, let result):
                completions.append((job, result))
                startNext(connection, &completions)
                return
            case .readResult:
                readResults(connection, &completions)
                return
            case .waiting:
                break
            }
            switch connection.flush() {
            case 0:
                setWritable(connection, false)
                guard connection.copyWriteQueued else { continue }  // libpq's buffer was full: now it is empty
                if case .finished(let job, let result) = connection.writeCopyData(flushed: true) {
                    completions.append((job, result))
                    startNext(connection, &completions)
                }
                return
            case 1:
                setWritable(connection, true)
                return
            default:
                fail(connection, connection.connectionError(), &completions)
                return
            }
        }
    }

    private func sendCurrentCommand(_ connection: LoopConnection, _ completions: inout [Completion]) {
        if let error = connection.sendCurrentCommand() {
            fail(connection, error, &completions)
            return
        }
        flush(connection, &completions)
        // While sending, libpq reads what the server has sent (so neither side waits on a full
        // socket): an answer may already be in its buffer, and no readiness event would come
        // for it. An error the server raised during COPY FROM STDIN arrives that way.
        if connection.isUsable, connection.current != nil, !connection.wantsWrite, !connection.isBusy {
            readResults(connection, &completions)
        }
    }

    private func flush(_ connection: LoopConnection, _ completions: inout [Completion]) {
        guard connection.isUsable else { return }
        switch connection.flush() {
        case 0: setWritable(connection, false)
        case 1: setWritable(connection, true)
        default: fail(connection, connection.connectionError(), &completions)
        }
    }

    private func readable(_ connection: LoopConnection, hangup: Bool, _ completions: inout [Completion]) {
        guard connection.isUsable else {
            deregister(connection)
            return
        }
        if connection.current == nil, connection.isCopyingOut, !hangup {
            // COPY TO STDOUT data nobody asks for yet: leave it in the socket (the server waits).
            setInterest(connection, read: false)
            return
        }
        guard connection.consumeInput() else {
            fail(connection, connection.connectionError(), &completions)
            return
        }
        guard connection.current != nil else {
            // Idle but readable: a notice, or the server going away (libpq then reports it).
            connection.discardIdleInput()
            if !connection.isUsable { deregister(connection) }
            return
        }
        switch connection.current?.request {
        case .copyRead? where connection.isCopyingOut:
            readCopy(connection, &completions)
        case .copyWrite?:
            // An error the server sent during COPY FROM STDIN surfaces at the next write.
            return
        default:
            readResults(connection, &completions)
        }
    }

    /// Reads the current command's results as far as they have arrived.
    private func readResults(_ connection: LoopConnection, _ completions: inout [Completion]) {
        while connection.current != nil, !connection.isBusy {
            if connection.readResult() { continue }
            // The current command has returned all its results.
            switch connection.advance() {
            case .sendNext:
                sendCurrentCommand(connection, &completions)
            case .readNext:
                continue
            case .finished(let job, let result):
                completions.append((job, result))
                startNext(connection, &completions)
            case nil:
                break
            }
        }
    }

    private func fail(_ connection: LoopConnection, _ error: KTDBError, _ completions: inout [Completion]) {
        connection.markBroken()
        deregister(connection)
        if let job = connection.current {
            connection.current = nil
            completions.append((job, .failure(error)))
        }
        startNext(connection, &completions)
    }

    private func deregister(_ connection: LoopConnection) {
        registrations.withLock { registrations in
            guard registrations[connection.fd] === connection else { return }
            epoll_ctl(epollFD, EPOLL_CTL_DEL, connection.fd, nil)
            registrations[connection.fd] = nil
        }
    }

    private func setWritable(_ connection: LoopConnection, _ wantsWrite: Bool) {
        guard connection.wantsWrite != wantsWrite else { return }
        connection.wantsWrite = wantsWrite
        updateInterest(connection)
    }

    private func setInterest(_ connection: LoopConnection, read: Bool) {
        guard connection.watchesRead != read else { return }
        connection.watchesRead = read
        updateInterest(connection)
    }

    private func updateInterest(_ connection: LoopConnection) {
        var event = epoll_event()
        event.events = (connection.watchesRead ? EPOLLIN.rawValue : 0) | (connection.wantsWrite ? EPOLLOUT.rawValue : 0)
        event.data.fd = connection.fd
        epoll_ctl(epollFD, EPOLL_CTL_MOD, connection.fd, &event)
    }

    // MARK: Loop thread

    private func loop() {
        var events = [epoll_event](repeating: epoll_event(), count: 64)
        var completions: [Completion] = []
        while true {
            let jobs = runQueue.withLock { queue -> [UnownedJob] in
                let jobs = queue.jobs
                queue.jobs.removeAll(keepingCapacity: true)
                return jobs
            }
            for job in jobs { job.runSynchronously(on: asUnownedTaskExecutor()) }
            // Sleep only if no job arrived meanwhile; `enqueue` wakes us through `wakeFD` otherwise.
            let mayBlock = runQueue.withLock { queue -> Bool in
                queue.sleeping = queue.jobs.isEmpty
                return queue.sleeping
            }
            let count = events.withUnsafeMutableBufferPointer { epoll_wait(epollFD, $0.baseAddress, Int32($0.count), mayBlock ? -1 : 0) }
            runQueue.withLock { $0.sleeping = false }
            if count < 0 { continue }  // EINTR
            for index in 0..<Int(count) {
                let event = events[index]
                if event.data.fd == wakeFD {
                    var value: UInt64 = 0
                    _ = read(wakeFD, &value, 8)
                    continue
                }
                guard let connection = registrations.withLock({ $0[event.data.fd] }) else { continue }
                connection.lock.withLock { _ in
                    if event.events & EPOLLOUT.rawValue != 0 {
                        if case .copyWrite? = connection.current?.request { writeCopy(connection, &completions) } else { flush(connection, &completions) }
                    }
                    let hangup = event.events & (EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0
                    if hangup || event.events & EPOLLIN.rawValue != 0 { readable(connection, hangup: hangup, &completions) }
                }
                for completion in completions { completion.job.complete(completion.result) }
                completions.removeAll(keepingCapacity: true)
            }
        }
    }
}
