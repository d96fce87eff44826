import Foundation
import KTDB

#if canImport(Glibc)
    import Glibc
#endif

/// A TCP proxy on 127.0.0.1 in front of a port: "stopping" it closes every connection through
/// it and refuses new ones, as a database pair that goes down; starting it again (same port)
/// brings the pair back.
final class TCPProxy: @unchecked Sendable {
    let port: Int
    private let target: Int
    private let lock = NSLock()
    private var listener: Int32 = -1
    private var sockets: Set<Int32> = []
    private var frozen = false
    private var holding = 0

    init(targetPort: Int) throws {
        target = targetPort
        port = try QdrantLocalServer.freePort()
        try start()
    }

    /// A proxy in front of the server `url` names (port 5432 when it names none).
    convenience init(before url: DatabaseURL) throws { try self.init(targetPort: url.port ?? 5432) }

    /// `url` reached through the proxy.
    func route(_ url: DatabaseURL) -> DatabaseURL {
        var routed = url
        routed.host = "127.0.0.1"
        routed.port = port
        return routed
    }

    /// Listens again on the same port.
    func start() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = Self.address(port)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, listen(fd, 64) == 0 else {
            close(fd)
            throw POSIXError(.EADDRINUSE)
        }
        lock.withLock { listener = fd }
        Thread.detachNewThread { [self] in
            while true {
                let client = accept(fd, nil, nil)
                if client < 0 { return }
                let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                var target = Self.address(self.target)
                let connected = withUnsafePointer(to: &target) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
                guard connected == 0 else {
                    close(client)
                    close(upstream)
                    continue
                }
                lock.withLock {
                    sockets.insert(client)
                    sockets.insert(upstream)
                }
                let ends = Ends()
                Thread.detachNewThread { self.pump(from: client, to: upstream, ends) }
                Thread.detachNewThread { self.pump(from: upstream, to: client, ends) }
            }
        }
    }

    /// Closes the listener and every connection through the proxy.
    func stop() {
        let (fd, open) = lock.withLock { () -> (Int32, Set<Int32>) in
            defer { listener = -1; sockets = [] }
            return (listener, sockets)
        }
        if fd >= 0 {
            shutdown(fd, Int32(SHUT_RDWR))
            close(fd)
        }
        for socket in open { shutdown(socket, Int32(SHUT_RDWR)) }
    }

    /// A silent network partition: connections stay open but nothing passes in either
    /// direction until ``thaw()`` (data read meanwhile is held, then delivered).
    func freeze() { lock.withLock { frozen = true } }

    /// Ends a ``freeze()``.
    func thaw() { lock.withLock { frozen = false } }

    /// Whether the proxy is frozen.
    var isFrozen: Bool { lock.withLock { frozen } }

    /// Directions of connections that read data while frozen and hold it: a request sent
    /// and not yet through.
    var held: Int { lock.withLock { holding } }

    /// Connections open through the proxy.
    var connections: Int { lock.withLock { sockets.count / 2 } }

    /// Counts the finished directions of one connection; the second closes both sockets.
    private final class Ends: @unchecked Sendable {
        let lock = NSLock()
        var finished = 0
    }

    private func pump(from source: Int32, to destination: Int32, _ ends: Ends) {
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = read(source, &buffer, buffer.count)
            if count <= 0 { break }
            if lock.withLock({ frozen }) {
                lock.withLock { holding += 1 }
                while lock.withLock({ frozen }) { usleep(10_000) }
                lock.withLock { holding -= 1 }
            }
            var sent = 0
            while sent < count {
                let written = buffer.withUnsafeBytes { send(destination, $0.baseAddress! + sent, count - sent, Int32(MSG_NOSIGNAL)) }
                if written <= 0 { break }
                sent += written
            }
            if sent < count { break }
        }
        shutdown(source, Int32(SHUT_RDWR))
        shutdown(destination, Int32(SHUT_RDWR))
        let last = ends.lock.withLock { () -> Bool in
            ends.finished += 1
            return ends.finished == 2
        }
        guard last else { return }
        lock.withLock {
            sockets.remove(source)
            sockets.remove(destination)
        }
        close(source)
        close(destination)
    }

    private static func address(_ port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        return address
    }
}
