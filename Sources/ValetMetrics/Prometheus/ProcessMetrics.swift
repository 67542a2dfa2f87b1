// The standard `process_*` metrics, read from /proc/self on each scrape (a few small reads, no allocation storms).
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One reading of this process's resource use.
struct ProcessMetrics: Equatable {
    var cpuSeconds: Double = 0
    var residentBytes: Double = 0
    var virtualBytes: Double = 0
    var startTimeSeconds: Double = 0
    var openFileDescriptors: Double = 0
    var maxFileDescriptors: Double = 0
    var threads: Double = 0

    /// Reads /proc/self. Fields that cannot be read stay 0 (e.g. on non-Linux systems).
    static func read(bootTime: Double) -> ProcessMetrics {
        var metrics = ProcessMetrics()
        #if os(Linux)
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))
        if let stat = readSmallFile("/proc/self/stat"), let close = stat.lastIndex(of: UInt8(ascii: ")")) {
            // The command name may contain spaces and parentheses; fields are counted after its closing ')'.
            // Field n of proc(5) is at index n - 3 here.
            let fields = stat[(close + 1)...].split(separator: UInt8(ascii: " ")).map {
                String(decoding: $0, as: UTF8.self)
            }
            func field(_ n: Int) -> Double { fields.count > n - 3 ? Double(fields[n - 3].trimmed) ?? 0 : 0 }
            metrics.cpuSeconds = (field(14) + field(15)) / ticks
            metrics.threads = field(20)
            metrics.startTimeSeconds = bootTime + field(22) / ticks
            metrics.virtualBytes = field(23)
            metrics.residentBytes = field(24) * pageSize
        }
        if let directory = opendir("/proc/self/fd") {
            var count = 0
            while let entry = readdir(directory) {
                let isDot = withUnsafeBytes(of: entry.pointee.d_name) { $0.first == UInt8(ascii: ".") }
                if !isDot { count += 1 }
            }
            closedir(directory)
            metrics.openFileDescriptors = Double(max(count - 1, 0))  // minus the descriptor reading the directory
        }
        #endif
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
            metrics.maxFileDescriptors = Double(limit.rlim_cur)
        }
        return metrics
    }

    /// Seconds since the epoch when the machine booted (`btime` in /proc/stat).
    static func bootTime() -> Double {
        #if os(Linux)
        guard let stat = readSmallFile("/proc/stat") else { return 0 }
        for line in stat.split(separator: UInt8(ascii: "\n")) where line.starts(with: Array("btime ".utf8)) {
            return Double(String(decoding: line.dropFirst(6), as: UTF8.self).trimmed) ?? 0
        }
        #endif
        return 0
    }

    #if os(Linux)
    private static func readSmallFile(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4_096)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            result.append(contentsOf: chunk[0..<n])
        }
        return result
    }
    #endif
}

extension String {
    fileprivate var trimmed: String {
        String(self.drop { $0 == " " || $0 == "\n" }.reversed().drop { $0 == " " || $0 == "\n" }.reversed())
    }
}
