// A strict reader of Prometheus text format 0.0.4 for the tests, with the checks promtool does not make.

struct Sample: Hashable {
    var name: String
    var labels: [String: String]
    var value: Double
}

struct Exposition {
    var help: [String: String] = [:]
    var types: [String: String] = [:]
    /// Family names in order of first appearance.
    var familyOrder: [String] = []
    var samples: [Sample] = []

    struct Problem: Error, CustomStringConvertible {
        var description: String
    }

    /// Parses and validates structure: HELP/TYPE once per family and before its samples, families contiguous,
    /// no duplicate series, histograms cumulative with +Inf equal to _count.
    init(_ text: String) throws {
        var currentFamily: String?
        var closedFamilies: Set<String> = []
        var seenSeries: Set<String> = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.isEmpty { continue }
            if line.hasPrefix("# ") {
                let parts = line.dropFirst(2).split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
                guard parts.count >= 2 else { throw Problem(description: "bad comment line: \(line)") }
                let family = String(parts[1])
                let rest = parts.count > 2 ? String(parts[2]) : ""
                try enter(family, &currentFamily, &closedFamilies)
                switch parts[0] {
                case "HELP":
                    guard help[family] == nil else { throw Problem(description: "second HELP for \(family)") }
                    guard types[family] == nil else { throw Problem(description: "HELP after TYPE for \(family)") }
                    help[family] = rest
                case "TYPE":
                    guard types[family] == nil else { throw Problem(description: "second TYPE for \(family)") }
                    guard samples.allSatisfy({ familyName(of: $0.name) != family }) else {
                        throw Problem(description: "TYPE after samples for \(family)")
                    }
                    types[family] = rest
                default:
                    throw Problem(description: "unknown comment: \(line)")
                }
                continue
            }
            let sample = try Self.parseSample(String(line))
            let family = familyName(of: sample.name)
            guard types[family] != nil, help[family] != nil else {
                throw Problem(description: "sample before HELP/TYPE: \(line)")
            }
            try enter(family, &currentFamily, &closedFamilies)
            let key = sample.name + "{" + sample.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                .joined(separator: ",") + "}"
            guard seenSeries.insert(key).inserted else { throw Problem(description: "duplicate series \(key)") }
            samples.append(sample)
        }
        try checkHistograms()
    }

    private mutating func enter(_ family: String, _ current: inout String?, _ closed: inout Set<String>) throws {
        guard family != current else { return }
        guard !closed.contains(family) else { throw Problem(description: "family \(family) is not contiguous") }
        if let current { closed.insert(current) }
        current = family
        familyOrder.append(family)
    }

    /// The family a sample belongs to (histogram suffixes removed when the base is a histogram).
    func familyName(of sampleName: String) -> String {
        for suffix in ["_bucket", "_sum", "_count"] where sampleName.hasSuffix(suffix) {
            let base = String(sampleName.dropLast(suffix.count))
            if types[base] == "histogram" { return base }
        }
        return sampleName
    }

    private func checkHistograms() throws {
        for (family, type) in types where type == "histogram" {
            var buckets: [[String: String]: [(Double, Double)]] = [:]
            var counts: [[String: String]: Double] = [:]
            var sums: Set<[String: String]> = []
            for sample in samples where familyName(of: sample.name) == family {
                if sample.name == family + "_bucket" {
                    var labels = sample.labels
                    guard let le = labels.removeValue(forKey: "le") else {
                        throw Problem(description: "bucket without le in \(family)")
                    }
                    let bound = le == "+Inf" ? Double.infinity : Double(le)
                    guard let bound else { throw Problem(description: "bad le \(le)") }
                    buckets[labels, default: []].append((bound, sample.value))
                } else if sample.name == family + "_count" {
                    counts[sample.labels] = sample.value
                } else if sample.name == family + "_sum" {
                    sums.insert(sample.labels)
                } else {
                    throw Problem(description: "unexpected sample \(sample.name) in histogram \(family)")
                }
            }
            guard !buckets.isEmpty else { continue }
            for (labels, series) in buckets {
                for (a, b) in zip(series, series.dropFirst()) {
                    guard a.0 < b.0 else { throw Problem(description: "\(family)\(labels): le not increasing") }
                    guard a.1 <= b.1 else { throw Problem(description: "\(family)\(labels): not cumulative") }
                }
                guard let last = series.last, last.0 == .infinity else {
                    throw Problem(description: "\(family)\(labels): no +Inf bucket")
                }
                guard counts[labels] == last.1 else {
                    throw Problem(description: "\(family)\(labels): +Inf \(last.1) != _count \(counts[labels] ?? -1)")
                }
                guard sums.contains(labels) else { throw Problem(description: "\(family)\(labels): no _sum") }
            }
            guard Set(buckets.keys) == Set(counts.keys) else {
                throw Problem(description: "\(family): _count series do not match bucket series")
            }
        }
    }

    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples.first { $0.name == name && $0.labels == labels }?.value
    }

    static func parseSample(_ line: String) throws -> Sample {
        var index = line.startIndex
        func peek() -> Character? { index < line.endIndex ? line[index] : nil }
        var name = ""
        while let c = peek(), c != "{", c != " " {
            name.append(c)
            index = line.index(after: index)
        }
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == ":" }) else {
            throw Problem(description: "bad metric name in: \(line)")
        }
        var labels: [String: String] = [:]
        if peek() == "{" {
            index = line.index(after: index)
            while peek() != "}" {
                var key = ""
                while let c = peek(), c != "=" {
                    key.append(c)
                    index = line.index(after: index)
                }
                index = line.index(after: index)
                guard peek() == "\"" else { throw Problem(description: "unquoted label value in: \(line)") }
                index = line.index(after: index)
                var value = ""
                while let c = peek(), c != "\"" {
                    if c == "\\" {
                        index = line.index(after: index)
                        switch peek() {
                        case "n": value.append("\n")
                        case "\\": value.append("\\")
                        case "\"": value.append("\"")
                        default: throw Problem(description: "bad escape in: \(line)")
                        }
                    } else {
                        value.append(c)
                    }
                    index = line.index(after: index)
                }
                guard peek() == "\"" else { throw Problem(description: "unterminated label value in: \(line)") }
                index = line.index(after: index)
                guard labels.updateValue(value, forKey: key) == nil else {
                    throw Problem(description: "repeated label \(key) in: \(line)")
                }
                if peek() == "," { index = line.index(after: index) }
                guard peek() != nil else { throw Problem(description: "unterminated labels in: \(line)") }
            }
            index = line.index(after: index)
        }
        guard peek() == " " else { throw Problem(description: "no value in: \(line)") }
        let rest = line[line.index(after: index)...].split(separator: " ")
        guard rest.count == 1 || rest.count == 2 else { throw Problem(description: "bad value in: \(line)") }
        let text = String(rest[0])
        let value: Double? = switch text {
        case "+Inf": .infinity
        case "-Inf": -.infinity
        case "NaN": .nan
        default: Double(text)
        }
        guard let value else { throw Problem(description: "bad value \(text) in: \(line)") }
        return Sample(name: name, labels: labels, value: value)
    }
}
