// A histogram family whose series are Valet's lock-free `AtomicHistogram`s, which the library's registry cannot
// hold, so they are written after its output by `ExpositionWriter`.

/// One family: its catalogue entry and one histogram per label value (a single series when it has no label).
struct HistogramFamily: Sendable {
    let family: MetricFamily
    let labelValues: [String]
    let series: [AtomicHistogram]

    /// - Parameter labelValues: values of the family's one label; leave empty for an unlabelled family.
    init(_ family: MetricFamily, bounds: [Double], labelValues: [String] = []) {
        precondition(family.kind == .histogram && family.labels.count == (labelValues.isEmpty ? 0 : 1))
        self.family = family
        self.labelValues = labelValues
        series = (0..<max(labelValues.count, 1)).map { _ in AtomicHistogram(bounds: bounds) }
    }

    /// The only series of an unlabelled family.
    var histogram: AtomicHistogram { series[0] }

    func write(to writer: inout ExpositionWriter) {
        writer.header(family)
        for (index, histogram) in series.enumerated() {
            let snapshot = histogram.snapshot()
            let labels = labelValues.isEmpty ? [] : family.labelPairs([labelValues[index]])
            writer.histogram(
                name: family.name, labels: labels, bounds: histogram.bounds, buckets: snapshot.buckets,
                sum: snapshot.sum)
        }
    }
}
