// The scheduler's live state as gauges, overwritten on every change the scheduler reports.
import Prometheus

struct SchedulerGauges: Sendable {
    private let running: Gauge
    /// One per `WaitingCounts.labels` entry, in that order.
    private let waiting: [Gauge]
    private let batchSize: Gauge
    private let capacityBlocks: Gauge
    private let capacityBlocksInUse: Gauge
    private let kvCacheUsage: Gauge
    private let prefixCacheBlocks: Gauge
    private let waitingAll: Gauge
    private let maxBatch: Gauge
    private let maxQueue: Gauge

    init(in registry: PrometheusCollectorRegistry) {
        running = registry.gauge(.requestsRunning)
        waiting = WaitingCounts.labels.map { registry.gauge(.requestsWaiting, $0) }
        batchSize = registry.gauge(.batchSize)
        capacityBlocks = registry.gauge(.capacityBlocks)
        capacityBlocksInUse = registry.gauge(.capacityBlocksInUse)
        kvCacheUsage = registry.gauge(.kvCacheUsage)
        prefixCacheBlocks = registry.gauge(.prefixCacheBlocks)
        waitingAll = registry.gauge(.requestsWaitingAll)
        maxBatch = registry.gauge(.maxBatch)
        maxQueue = registry.gauge(.maxQueue)
    }

    func setLimits(maxBatch: Int, maxQueue: Int) {
        self.maxBatch.set(to: Double(maxBatch))
        self.maxQueue.set(to: Double(maxQueue))
    }

    func set(running: Int, waiting: WaitingCounts, capacityBlocks: Int, usedBlocks: Int, cachedBlocks: Int,
             batchSize: Int) {
        self.running.set(to: Double(running))
        for (gauge, count) in zip(self.waiting, waiting.counts) { gauge.set(to: Double(count)) }
        waitingAll.set(to: Double(waiting.counts.reduce(0, +)))
        self.capacityBlocks.set(to: Double(capacityBlocks))
        capacityBlocksInUse.set(to: Double(usedBlocks))
        kvCacheUsage.set(to: capacityBlocks > 0 ? Double(usedBlocks) / Double(capacityBlocks) : 0)
        self.batchSize.set(to: Double(batchSize))
        prefixCacheBlocks.set(to: Double(cachedBlocks))
    }
}
