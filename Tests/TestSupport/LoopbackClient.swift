// A minimal blocking HTTP/1.1 client over a real loopback socket, so tests see exactly what goes on the wire.
import Foundation

public struct LoopbackResponse {
    public var status: Int
    public var headers: [String: String]
    public var body: [UInt8]
    public var text: String { String(decoding: body, as: UTF8.self) }
}

public final class LoopbackConnection {
    public let fd: Int32
    private var pending: [UInt8] = []

    public init(port: UInt16) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { close(fd); throw LoopbackError.connect }
        // A receive timeout keeps a broken server from hanging the test run.
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    public func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            offset += n
        }
    }

    public func send(_ text: String) { send(Array(text.utf8)) }

    public func request(_ method: String, _ path: String, headers: [String: String] = [:], body: [UInt8] = []) {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if !body.isEmpty || method == "POST" { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        send(Array(head.utf8) + body)
    }

    /// Close our side abruptly, like a client that gives up.
    public func hangUp() { shutdown(fd, Int32(SHUT_RDWR)) }

    private func fill() -> Bool {
        var buffer = [UInt8](repeating: 0, count: 65536)
        let n = recv(fd, &buffer, buffer.count, 0)
        if n <= 0 { return false }
        pending.append(contentsOf: buffer[0..<n])
        return true
    }

    private func readLine() -> String? {
        while true {
            if let index = pending.firstIndex(of: UInt8(ascii: "\n")) {
                var line = Array(pending[..<index])
                pending.removeFirst(index + 1)
                if line.last == UInt8(ascii: "\r") { line.removeLast() }
                return String(decoding: line, as: UTF8.self)
            }
            if !fill() { return nil }
        }
    }

    private func readExactly(_ count: Int) -> [UInt8]? {
        while pending.count < count { if !fill() { return nil } }
        let bytes = Array(pending[..<count])
        pending.removeFirst(count)
        return bytes
    }

    public func readHead() throws -> (Int, [String: String]) {
        guard let statusLine = readLine() else { throw LoopbackError.closed }
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else { throw LoopbackError.malformed(statusLine) }
        var headers: [String: String] = [:]
        while let line = readLine(), !line.isEmpty {
            if let colon = line.firstIndex(of: ":") {
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return (status, headers)
    }

    /// Next chunk of a chunked body; nil at the terminating chunk.
    public func readChunk() throws -> [UInt8]? {
        guard let sizeLine = readLine(), let size = Int(sizeLine.split(separator: ";")[0], radix: 16) else {
            throw LoopbackError.closed
        }
        if size == 0 { _ = readLine(); return nil }
        guard let bytes = readExactly(size) else { throw LoopbackError.closed }
        _ = readLine()
        return bytes
    }

    public func readResponse() throws -> LoopbackResponse {
        let (status, headers) = try readHead()
        var body: [UInt8] = []
        if headers["transfer-encoding"]?.lowercased() == "chunked" {
            while let chunk = try readChunk() { body += chunk }
        } else if let length = headers["content-length"].flatMap({ Int($0) }) {
            guard let bytes = readExactly(length) else { throw LoopbackError.closed }
            body = bytes
        } else {
            while fill() {}
            body = pending
            pending = []
        }
        return LoopbackResponse(status: status, headers: headers, body: body)
    }
}

public enum LoopbackError: Error {
    case connect
    case closed
    case malformed(String)
}

/// Waits (polling) for a condition set by another thread; false if it never happened within `seconds`.
public func eventually(within seconds: Double = 10, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(5_000)
    }
    return condition()
}
