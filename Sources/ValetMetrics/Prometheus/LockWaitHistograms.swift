// `valet_lock_wait_seconds`, written from the counts `InstrumentedLocks` keeps: the library's histograms can only
// export observations made through them, and the locks count their waits themselves (Locks links no metrics).
import Locks

enum LockWaitHistograms {
    static func write(to writer: inout ExpositionWriter) {
        let family = MetricFamily.lockWait
        writer.header(family)
        for snapshot in InstrumentedLocks.snapshots() {
            writer.histogram(
                name: family.name, labels: family.labelPairs([snapshot.name]),
                bounds: LockWaitStatistics.bucketBoundsSeconds, buckets: snapshot.bucketCounts,
                sum: snapshot.sumSeconds)
        }
    }
}
