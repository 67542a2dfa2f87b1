// Every open connection's deadline for delivering a whole request, so a client that drips bytes (which keeps
// MHD's idle timeout from firing) still loses its slot.
import Foundation
import Locks
import Synchronization

/// A connection must deliver each request, headers and body, within `readTimeout` of opening, or, on a kept-alive
/// connection, within `idleTimeout + readTimeout` of its previous answer: an honest client that starts a request
/// just before the idle timeout still has the whole read timeout to finish it. While a request is being answered
/// (queued, streaming) there is no deadline; that time belongs to the engine, not to the client.
final class ReadDeadlines: Sendable {
    private struct Entry {
        let fd: Int32
        var deadline: ContinuousClock.Instant?
    }

    let readTimeout: Duration
    let idleTimeout: Duration
    private let entries = Locked<[UInt: Entry]>([:])
    private let cutCount = Atomic<Int>(0)

    init(readTimeout: Duration, idleTimeout: Duration) {
        self.readTimeout = readTimeout
        self.idleTimeout = idleTimeout
    }

    /// Connections cut off so far for missing their deadline.
    var cut: Int { cutCount.load(ordering: .relaxed) }

    var count: Int { entries.withLock { $0.count } }

    func opened(_ connection: OpaquePointer, fd: Int32, now: ContinuousClock.Instant = .now) {
        entries.withLock { $0[Self.key(connection)] = Entry(fd: fd, deadline: now + readTimeout) }
    }

    /// The whole request is in: from here the server is the one taking time.
    func received(_ connection: OpaquePointer) {
        entries.withLock { $0[Self.key(connection)]?.deadline = nil }
    }

    /// Answered; a kept-alive connection waits for its next request.
    func answered(_ connection: OpaquePointer, now: ContinuousClock.Instant = .now) {
        entries.withLock { $0[Self.key(connection)]?.deadline = now + idleTimeout + readTimeout }
    }

    func closed(_ connection: OpaquePointer) {
        _ = entries.withLock { $0.removeValue(forKey: Self.key(connection)) }
    }

    /// Shuts down the socket of every connection past its deadline; MHD then sees the peer gone and closes it.
    /// Done under the lock that `closed` takes: MHD reports a close before it closes the fd, so an fd found here
    /// still belongs to its connection and cannot have been reused by a newer one.
    @discardableResult
    func cutExpired(now: ContinuousClock.Instant = .now) -> Int {
        let n = entries.withLock { map -> Int in
            var n = 0
            for (key, entry) in map {
                guard let deadline = entry.deadline, deadline <= now else { continue }
                if entry.fd >= 0 { _ = shutdown(entry.fd, Int32(SHUT_RDWR)) }
                // Cut once: MHD's close notice removes the entry when it gets to it.
                map[key]?.deadline = nil
                n += 1
            }
            return n
        }
        if n > 0 { cutCount.add(n, ordering: .relaxed) }
        return n
    }

    private static func key(_ connection: OpaquePointer) -> UInt { UInt(bitPattern: connection) }
}
