// Persistent worker threads that split one piece of work (a matmul's rows, attention heads) with a cheap barrier.
import CKernels

/// Workers spin while steps keep coming and park on a futex after `spinMicroseconds` idle, because waking a
/// parked thread costs ~100 µs here while a dispatch to a spinning one costs well under 1 µs.
/// Only one thread may call `run` at a time (the engine loop); the caller does share 0 itself.
public final class ThreadPool: @unchecked Sendable {
    private let pool: OpaquePointer
    public let threadCount: Int

    public init(threads: Int, spinMicroseconds: Int = 20_000) {
        pool = valet_pool_create(Int32(max(1, threads)), Int32(spinMicroseconds))
        threadCount = Int(valet_pool_threads(pool))
    }

    deinit { valet_pool_destroy(pool) }

    /// Runs `body(thread, threadCount)` on every thread and returns when all have finished.
    public func run(_ body: (_ thread: Int, _ threads: Int) -> Void) {
        withoutActuallyEscaping(body) { escapable in
            var job = Job(body: escapable)
            withUnsafeMutablePointer(to: &job) { valet_pool_run(pool, threadPoolEntry, UnsafeMutableRawPointer($0)) }
        }
    }

    /// Calls `body` for every index in 0..<count exactly once, in contiguous ranges handed out on demand: a thread
    /// that loses its core (the machine is shared) delays only the range it holds, not a fixed share of the work.
    public func parallelFor(_ count: Int, _ body: (Range<Int>) -> Void) {
        forEachRange(count) { range, _ in body(range) }
    }

    /// `parallelFor`, also telling the body which thread (0..<threadCount) runs it, for per-thread scratch.
    public func forEachRange(_ count: Int, _ body: (Range<Int>, _ thread: Int) -> Void) {
        if count <= 0 { return }
        if threadCount == 1 || count == 1 {
            body(0..<count, 0)
            return
        }
        let chunk = max(1, count / (threadCount * 4))
        run { thread, _ in
            while true {
                let lo = valet_pool_ticket(pool) * chunk
                if lo >= count { break }
                body(lo..<min(count, lo + chunk), thread)
            }
        }
    }
}

private struct Job {
    var body: (Int, Int) -> Void
}

// A global function, so it carries no actor isolation when the C workers call it.
private func threadPoolEntry(_ context: UnsafeMutableRawPointer?, _ thread: Int32, _ threads: Int32) {
    context!.assumingMemoryBound(to: Job.self).pointee.body(Int(thread), Int(threads))
}
