// Plain threads, flags and a process-wide test lock, for tests that need real concurrency.
import Foundation
import Synchronization

/// Runs `body` on a new OS thread; `join()` waits for it.
public final class TestThread: Sendable {
    private let done = DispatchSemaphore(value: 0)

    public init(_ body: @escaping @Sendable () -> Void) throws {
        let done = self.done
        let thread = Thread {
            body()
            done.signal()
        }
        thread.start()
    }

    public func join() {
        done.wait()
        done.signal()
    }
}

/// A flag shared between test threads.
public final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    public init() {}
    public func set() { value.store(true, ordering: .releasing) }
    public var isSet: Bool { value.load(ordering: .acquiring) }
}

public func sleepMilliseconds(_ ms: Int) {
    usleep(useconds_t(ms * 1000))
}

private let processWide = NSLock()

/// Runs `body` while no other test holding this lock runs: for tests of process-wide state (the lock-wait sink)
/// that live in different suites, which Swift Testing runs in parallel.
public func exclusively<T>(_ body: () throws -> T) rethrows -> T {
    processWide.lock()
    defer { processWide.unlock() }
    return try body()
}
