// A memory-mapped GGUF file (spec versions 2 and 3): metadata, tensor infos and zero-copy tensor data.
import Foundation

public final class GGUFFile: @unchecked Sendable {
    // The mapping is read-only and lives as long as the object, so sharing across threads is safe.
    public let path: String
    public let version: UInt32
    public let metadata: [String: GGUFValue]
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    public let fileSize: Int
    private let tensorIndex: [String: Int]
    private let base: UnsafeRawPointer

    public init(path: String) throws(GGUFError) {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw GGUFError(file: path, "cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw GGUFError(file: path, "cannot stat: \(String(cString: strerror(errno)))") }
        let size = Int(st.st_size)
        guard size >= 24 else { throw GGUFError(file: path, "truncated: \(size) bytes is smaller than a GGUF header") }
        guard let map = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), map != MAP_FAILED else {
            throw GGUFError(file: path, "cannot map: \(String(cString: strerror(errno)))")
        }
        fileSize = size
        base = UnsafeRawPointer(map)
        do throws(GGUFError) {
            var r = Cursor(base: base, size: size, file: path)
            let magic = try r.u32()
            guard magic == 0x4655_4747 else {
                throw GGUFError(file: path, "not a GGUF file (magic 0x\(String(magic, radix: 16)))")
            }
            version = try r.u32()
            guard version == 2 || version == 3 else {
                throw GGUFError(file: path, "unsupported GGUF version \(version) (supported: 2, 3)")
            }
            let tensorCount = try r.count("tensor count")
            let kvCount = try r.count("metadata count")
            var meta: [String: GGUFValue] = [:]
            meta.reserveCapacity(kvCount)
            for _ in 0..<kvCount {
                let key = try r.string()
                let type = try r.u32()
                meta[key] = try r.value(type: type, key: key)
            }
            metadata = meta
            let align = meta["general.alignment"]?.int ?? 32
            guard align > 0, align & (align - 1) == 0 else {
                throw GGUFError(file: path, "general.alignment \(align) is not a power of two")
            }
            alignment = align

            var infos: [(String, [Int], UInt32, Int)] = []
            infos.reserveCapacity(tensorCount)
            for _ in 0..<tensorCount {
                let name = try r.string()
                let nDims = Int(try r.u32())
                guard (1...4).contains(nDims) else {
                    throw GGUFError(file: path, tensor: name, "has \(nDims) dimensions (1 to 4 allowed)")
                }
                var dims: [Int] = []
                for _ in 0..<nDims {
                    let d = try r.u64()
                    guard d > 0, d < 1 << 40 else { throw GGUFError(file: path, tensor: name, "bad dimension \(d)") }
                    dims.append(Int(d))
                }
                let type = try r.u32()
                let offset = try r.u64()
                guard offset < UInt64(size) else {
                    throw GGUFError(file: path, tensor: name, "truncated: data offset \(offset) lies beyond the file (\(size) bytes)")
                }
                infos.append((name, dims, type, Int(offset)))
            }
            let dataStart = (r.offset + align - 1) / align * align

            var list: [GGUFTensorInfo] = []
            var index: [String: Int] = [:]
            for (name, dims, rawType, offset) in infos {
                guard let type = GGMLType(rawValue: rawType) else {
                    throw GGUFError(file: path, tensor: name, "unknown tensor type \(rawType)")
                }
                guard dims[0] % type.blockSize == 0 else {
                    throw GGUFError(file: path, tensor: name,
                        "row length \(dims[0]) is not a multiple of the \(type) block size \(type.blockSize)")
                }
                guard offset % align == 0 else {
                    throw GGUFError(file: path, tensor: name, "data offset \(offset) is not aligned to \(align)")
                }
                let bytes = type.rowBytes(dims[0]) * dims.dropFirst().reduce(1, *)
                let start = dataStart + offset
                guard start + bytes <= size else {
                    throw GGUFError(file: path, tensor: name,
                        "truncated: needs bytes \(start)..<\(start + bytes) but the file has \(size)")
                }
                index[name] = list.count
                list.append(GGUFTensorInfo(name: name, dimensions: dims, type: type, fileOffset: start, byteCount: bytes))
            }
            tensors = list
            tensorIndex = index
        } catch {
            munmap(map, size)
            throw error
        }
    }

    deinit {
        munmap(UnsafeMutableRawPointer(mutating: base), fileSize)
    }

    /// The named tensor, or an error naming it as missing.
    public func tensor(_ name: String) throws(GGUFError) -> GGUFTensorInfo {
        guard let i = tensorIndex[name] else { throw GGUFError(file: path, tensor: name, "missing") }
        return tensors[i]
    }

    public func hasTensor(_ name: String) -> Bool { tensorIndex[name] != nil }

    /// Zero-copy pointer into the mapping; valid while this object lives.
    public func data(_ tensor: GGUFTensorInfo) -> UnsafeRawPointer { base + tensor.fileOffset }

    // MARK: Typed metadata access

    public func string(_ key: String) -> String? { metadata[key]?.string }
    public func int(_ key: String) -> Int? { metadata[key]?.int }
    public func double(_ key: String) -> Double? { metadata[key]?.double }
    public func bool(_ key: String) -> Bool? { metadata[key]?.bool }
    public func stringArray(_ key: String) -> [String]? { metadata[key]?.array?.compactMap(\.string) }
    public func doubleArray(_ key: String) -> [Double]? { metadata[key]?.array?.compactMap(\.double) }
    public func intArray(_ key: String) -> [Int]? { metadata[key]?.array?.compactMap(\.int) }

    /// A required metadata value, or an error naming the key.
    public func require<T>(_ key: String, _ get: (String) -> T?) throws(GGUFError) -> T {
        guard let v = get(key) else { throw GGUFError(file: path, "missing or mistyped metadata '\(key)'") }
        return v
    }
}

/// Bounds-checked little-endian reader over the mapped header.
private struct Cursor {
    let base: UnsafeRawPointer
    let size: Int
    let file: String
    var offset = 0

    mutating func take(_ n: Int) throws(GGUFError) -> UnsafeRawPointer {
        guard n >= 0, offset + n <= size else {
            throw GGUFError(file: file, "truncated: header needs \(n) bytes at offset \(offset), file has \(size)")
        }
        defer { offset += n }
        return base + offset
    }

    mutating func u8() throws(GGUFError) -> UInt8 { try take(1).load(as: UInt8.self) }
    mutating func u16() throws(GGUFError) -> UInt16 { UInt16(littleEndian: try take(2).loadUnaligned(as: UInt16.self)) }
    mutating func u32() throws(GGUFError) -> UInt32 { UInt32(littleEndian: try take(4).loadUnaligned(as: UInt32.self)) }
    mutating func u64() throws(GGUFError) -> UInt64 { UInt64(littleEndian: try take(8).loadUnaligned(as: UInt64.self)) }

    /// A u64 count that must be plausible for the bytes left, so a corrupt header can't ask for terabytes.
    mutating func count(_ what: String) throws(GGUFError) -> Int {
        let n = try u64()
        guard n <= UInt64(size - offset) else { throw GGUFError(file: file, "\(what) \(n) is impossible for the file size") }
        return Int(n)
    }

    mutating func string() throws(GGUFError) -> String {
        let n = try count("string length")
        let p = try take(n)
        return String(decoding: UnsafeRawBufferPointer(start: p, count: n), as: UTF8.self)
    }

    mutating func value(type: UInt32, key: String, depth: Int = 0) throws(GGUFError) -> GGUFValue {
        switch type {
        case 0: return .uint8(try u8())
        case 1: return .int8(Int8(bitPattern: try u8()))
        case 2: return .uint16(try u16())
        case 3: return .int16(Int16(bitPattern: try u16()))
        case 4: return .uint32(try u32())
        case 5: return .int32(Int32(bitPattern: try u32()))
        case 6: return .float32(Float(bitPattern: try u32()))
        case 7: return .bool(try u8() != 0)
        case 8: return .string(try string())
        case 9:
            guard depth < 4 else { throw GGUFError(file: file, "metadata '\(key)': arrays nested too deep") }
            let elementType = try u32()
            let n = try count("metadata '\(key)' array length")
            var items: [GGUFValue] = []
            items.reserveCapacity(n)
            for _ in 0..<n { items.append(try value(type: elementType, key: key, depth: depth + 1)) }
            return .array(items)
        case 10: return .uint64(try u64())
        case 11: return .int64(Int64(bitPattern: try u64()))
        case 12: return .float64(Double(bitPattern: try u64()))
        default: throw GGUFError(file: file, "metadata '\(key)' has unknown value type \(type)")
        }
    }
}
