// Writes the families swift-prometheus cannot hold (lock-free histograms, lock statistics) in text format 0.0.4.

/// Appends HELP/TYPE headers and histogram series to a byte buffer.
struct ExpositionWriter {
    var bytes: [UInt8] = []

    mutating func header(_ family: MetricFamily) {
        header(name: family.name, help: family.help, type: family.kind.rawValue)
    }

    mutating func header(name: String, help: String, type: String) {
        append("# HELP \(name) ")
        for byte in help.utf8 {
            switch byte {
            case UInt8(ascii: "\\"): append("\\\\")
            case UInt8(ascii: "\n"): append("\\n")
            default: bytes.append(byte)
            }
        }
        append("\n# TYPE \(name) \(type)\n")
    }

    /// One histogram series from non-cumulative `buckets` (one per bound, then overflow).
    mutating func histogram(
        name: String, labels: [(String, String)], bounds: [Double], buckets: [UInt64], sum: Double
    ) {
        let labelText = Self.labelText(labels)
        let prefix = labelText.isEmpty ? "" : labelText + ","
        var cumulative: UInt64 = 0
        for (bound, count) in zip(bounds, buckets) {
            cumulative += count
            append("\(name)_bucket{\(prefix)le=\"\(Self.format(bound))\"} \(cumulative)\n")
        }
        let total = buckets.reduce(0, +)
        append("\(name)_bucket{\(prefix)le=\"+Inf\"} \(total)\n")
        let braces = labelText.isEmpty ? "" : "{\(labelText)}"
        append("\(name)_sum\(braces) \(Self.format(sum))\n")
        append("\(name)_count\(braces) \(total)\n")
    }

    mutating func append(_ text: String) {
        bytes.append(contentsOf: text.utf8)
    }

    static func labelText(_ labels: [(String, String)]) -> String {
        labels.map { name, value in "\(name)=\"\(escapeLabelValue(value))\"" }.joined(separator: ",")
    }

    static func escapeLabelValue(_ value: String) -> String {
        var out = ""
        for character in value {
            switch character {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(character)
            }
        }
        return out
    }

    /// Go-compatible float text: integers without exponent noise, specials as Prometheus spells them.
    static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return value.description
    }
}
