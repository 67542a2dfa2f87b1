// Clock reads shared by the lock, the recorder and the registry: a cheap monotonic counter and unix wall time.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The two clocks Valet's metrics use (named so it does not shadow the standard library's `Clock`).
public enum MetricsClock {
    /// Nanoseconds on the monotonic clock; only differences are meaningful.
    @inlinable
    public static func monotonicNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// Unix time in seconds, the unit of every SQLite timestamp column.
    public static func unixSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
