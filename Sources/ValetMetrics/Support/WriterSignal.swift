// Wake-ups and flush hand-shakes between producers and the recorder's writer thread (a condition variable).
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `Mutex` has no condition variable, so the writer sleeps on a pthread one. Producers touch it only to wake
/// the writer early (buffer past its batch size) or to wait for a flush.
final class WriterSignal: @unchecked Sendable {
    // @unchecked: every field below is read and written only with `mutex` held.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var wakeRequested = false
    private var flushRequested: UInt64 = 0
    private var flushCompleted: UInt64 = 0
    private var stopping = false
    private var exited = false

    init() {
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        #if os(Linux)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        #endif
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    private func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body()
    }

    /// Asks the writer to drain now instead of at its next tick.
    func wake() {
        locked {
            wakeRequested = true
            pthread_cond_broadcast(condition)
        }
    }

    /// Writer side: sleeps until woken or `timeoutNanoseconds` pass. Returns the flush ticket the coming drain
    /// satisfies and whether the recorder is closing.
    func waitForWork(timeoutNanoseconds: UInt64) -> (flushTicket: UInt64, stopping: Bool) {
        locked {
            if !wakeRequested && !stopping {
                var deadline = timespec()
                #if os(Linux)
                clock_gettime(CLOCK_MONOTONIC, &deadline)
                #else
                clock_gettime(CLOCK_REALTIME, &deadline)
                #endif
                let total = UInt64(deadline.tv_nsec) + timeoutNanoseconds
                deadline.tv_sec += Int(total / 1_000_000_000)
                deadline.tv_nsec = Int(total % 1_000_000_000)
                while !wakeRequested && !stopping {
                    if pthread_cond_timedwait(condition, mutex, &deadline) == ETIMEDOUT { break }
                }
            }
            wakeRequested = false
            return (flushRequested, stopping)
        }
    }

    /// Writer side: everything recorded before `ticket` was requested is now committed.
    func completeFlush(_ ticket: UInt64) {
        locked {
            if ticket > flushCompleted { flushCompleted = ticket }
            pthread_cond_broadcast(condition)
        }
    }

    /// Writer side: the thread is gone; nobody should wait for it any more.
    func markExited() {
        locked {
            exited = true
            pthread_cond_broadcast(condition)
        }
    }

    /// Producer side: blocks until the writer has committed everything recorded before this call.
    /// Returns false if the writer had already exited.
    func flushAndWait() -> Bool {
        locked {
            guard !exited else { return false }
            flushRequested += 1
            let ticket = flushRequested
            wakeRequested = true
            pthread_cond_broadcast(condition)
            while flushCompleted < ticket && !exited {
                pthread_cond_wait(condition, mutex)
            }
            return flushCompleted >= ticket
        }
    }

    func stop() {
        locked {
            stopping = true
            pthread_cond_broadcast(condition)
        }
    }
}
