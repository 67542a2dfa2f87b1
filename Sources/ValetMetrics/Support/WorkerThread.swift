// A plain pthread running one closure: the recorder's writer must not depend on the Swift concurrency pool.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A started OS thread that can be joined once.
final class WorkerThread: @unchecked Sendable {
    // @unchecked: `handle` is written in init and read only by `join`, which callers invoke once.
    private var handle: pthread_t?

    private final class Box {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }

    /// Starts `body` on a new thread; throws if the system refuses another thread.
    init(_ body: @escaping @Sendable () -> Void) throws(RecorderError) {
        let context = Unmanaged.passRetained(Box(body)).toOpaque()
        #if canImport(Glibc)
        var thread = pthread_t()
        #else
        var thread: pthread_t?
        #endif
        let rc = pthread_create(&thread, nil, workerThreadEntry, context)
        guard rc == 0 else {
            Unmanaged<Box>.fromOpaque(context).release()
            throw RecorderError.thread(code: rc)
        }
        handle = thread
    }

    func join() {
        guard let thread = handle else { return }
        handle = nil
        pthread_join(thread, nil)
    }

    fileprivate static func run(_ context: UnsafeMutableRawPointer) {
        let box = Unmanaged<Box>.fromOpaque(context).takeRetainedValue()
        box.body()
    }
}

// A global function, not a closure: C entry points must not inherit any actor isolation.
#if canImport(Glibc)
private func workerThreadEntry(_ context: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    if let context { WorkerThread.run(context) }
    return nil
}
#else
private func workerThreadEntry(_ context: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer? {
    WorkerThread.run(context)
    return nil
}
#endif
