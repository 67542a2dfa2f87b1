// The standard `process_*` families, refreshed from a `ProcessMetrics` reading at each scrape.
import Prometheus

struct ProcessGauges: Sendable {
    /// A counter only goes up, so each scrape adds the CPU time spent since the previous one.
    private let cpu: Counter
    private let gauges: [(Gauge, @Sendable (ProcessMetrics) -> Double)]

    init(in registry: PrometheusCollectorRegistry) {
        cpu = registry.counter(.processCPU)
        gauges = [
            (registry.gauge(.processResident), \.residentBytes),
            (registry.gauge(.processVirtual), \.virtualBytes),
            (registry.gauge(.processStartTime), \.startTimeSeconds),
            (registry.gauge(.processOpenFDs), \.openFileDescriptors),
            (registry.gauge(.processMaxFDs), \.maxFileDescriptors),
            (registry.gauge(.processThreads), \.threads),
        ]
    }

    /// - Parameter cpuReported: CPU seconds already added to the counter; advanced to `reading`'s.
    func update(from reading: ProcessMetrics, cpuReported: inout Double) {
        if reading.cpuSeconds > cpuReported {
            cpu.increment(by: reading.cpuSeconds - cpuReported)
            cpuReported = reading.cpuSeconds
        }
        for (gauge, value) in gauges { gauge.set(to: value(reading)) }
    }
}
