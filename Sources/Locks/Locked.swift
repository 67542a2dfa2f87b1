// The project's mutex: Synchronization's `Mutex`, which ThreadSanitizer builds (`-D VALET_TSAN`, `make sanitize`)
// also guard with a pthread mutex, because TSan cannot see the ordering `Mutex` gives on its contended path.
import Synchronization
#if VALET_TSAN
import Glibc
#endif

/// `Mutex` with the same calls. On Linux a contended `Mutex` waits in the futex syscall inside the uninstrumented
/// runtime, so TSan sees no happens-before edge and reports every contended critical section as a race, burying
/// real reports. The pthread mutex TSan intercepts supplies that edge; ordinary builds compile to `Mutex` alone.
public struct Locked<State: ~Copyable>: ~Copyable, @unchecked Sendable {
    @usableFromInline let mutex: Mutex<State>
    #if VALET_TSAN
    @usableFromInline let shadow = ShadowLock()
    #endif

    public init(_ initial: consuming sending State) {
        mutex = Mutex(initial)
    }

    @inlinable
    public borrowing func withLock<Result: ~Copyable, E: Error>(
        _ body: (inout sending State) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        #if VALET_TSAN
        shadow.lock()
        defer { shadow.unlock() }
        #endif
        return try mutex.withLock(body)
    }

    @inlinable
    public borrowing func withLockIfAvailable<Result: ~Copyable, E: Error>(
        _ body: (inout sending State) throws(E) -> sending Result
    ) throws(E) -> sending Result? {
        #if VALET_TSAN
        guard shadow.tryLock() else { return nil }
        defer { shadow.unlock() }
        #endif
        return try mutex.withLockIfAvailable(body)
    }
}

#if VALET_TSAN
/// A heap-allocated pthread mutex: its address must not move, and `Locked` is a value.
public final class ShadowLock: @unchecked Sendable {
    @usableFromInline let handle: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        handle = .allocate(capacity: 1)
        pthread_mutex_init(handle, nil)
    }

    deinit {
        pthread_mutex_destroy(handle)
        handle.deallocate()
    }

    @inlinable func lock() { pthread_mutex_lock(handle) }
    @inlinable func unlock() { pthread_mutex_unlock(handle) }
    @inlinable func tryLock() -> Bool { pthread_mutex_trylock(handle) == 0 }
}
#endif
