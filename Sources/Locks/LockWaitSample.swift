// One contended acquisition worth keeping as a row in `lock_waits`.

public struct LockWaitSample: Sendable, Equatable {
    /// Unix seconds when the lock was finally acquired.
    public var time: Double
    public var lock: String
    public var waitSeconds: Double

    public init(time: Double, lock: String, waitSeconds: Double) {
        self.time = time
        self.lock = lock
        self.waitSeconds = waitSeconds
    }
}
