// Reads GGUF files written by the `gguf` PyPI package (v2, v3, custom alignment, every metadata value type,
// an unknown tensor type) and checks the reader against what that package wrote and reads back.
import Foundation
import Testing
@testable import Inference

private struct ManifestTensor: Decodable {
    var name: String
    var type: UInt32
    var dims: [Int]
    var offset: Int
    var values: [Double]
}

private final class ReaderFixtures: Sendable {
    let dir: URL
    let manifest: [String: [ManifestTensor]]

    init() throws {
        dir = try PythonFixture.tempDir("reader")
        try PythonFixture.run(["reader", dir.path])
        manifest = try JSONDecoder().decode([String: [ManifestTensor]].self,
                                            from: Data(contentsOf: dir.appendingPathComponent("manifest.json")))
    }

    deinit { try? FileManager.default.removeItem(at: dir) }

    func path(_ name: String) -> String { dir.appendingPathComponent("\(name).gguf").path }
}

@Test func readsEveryMetadataValueTypeInV2AndV3() throws {
    let fx = try ReaderFixtures()
    for (name, version) in [("v3", UInt32(3)), ("v2", 2), ("aligned", 3)] {
        let f = try GGUFFile(path: fx.path(name))
        #expect(f.version == version)
        #expect(f.string("general.architecture") == "valet-fixture")
        let m = f.metadata
        #expect(m["t.u8"] == .uint8(200))
        #expect(m["t.i8"] == .int8(-100))
        #expect(m["t.u16"] == .uint16(60000))
        #expect(m["t.i16"] == .int16(-30000))
        #expect(m["t.u32"] == .uint32(4_000_000_000))
        #expect(m["t.i32"] == .int32(-2_000_000_000))
        #expect(m["t.f32"] == .float32(1.5))
        #expect(m["t.bool"] == .bool(true))
        #expect(m["t.str"] == .string("h\u{e9}llo \u{2713}"))
        #expect(m["t.u64"] == .uint64(1 << 63 + 5))
        #expect(m["t.i64"] == .int64(-(1 << 62) - 7))
        #expect(m["t.f64"] == .float64(3.141592653589793))
        #expect(m["t.arr.u8"] == .array([.uint8(1), .uint8(2), .uint8(255)]))
        #expect(m["t.arr.i16"] == .array([.int16(-1), .int16(0), .int16(7)]))
        #expect(m["t.arr.f32"] == .array([.float32(0.5), .float32(-2.25)]))
        #expect(f.stringArray("t.arr.str") == ["a", "bc", ""])
        #expect(m["t.arr.bool"] == .array([.bool(true), .bool(false), .bool(true)]))
        #expect(m["t.arr.u64"] == .array([.uint64(.max), .uint64(0)]))
        #expect(m["t.arr.f64"] == .array([.float64(1e300), .float64(-0.125)]))
        #expect(m["t.nested"] == .array([.array([.int32(1), .int32(2)]), .array([.int32(3)]),
                                         .array([.int32(4), .int32(5), .int32(6)])]))
        #expect(m["t.nested.str"] == .array([.array([.string("x")]), .array([.string("y"), .string("z")])]))
        #expect(m["t.nested3"] == .array([.array([.array([.int32(7)])]), .array([.array([.int32(8), .int32(9)])])]))
        // Typed accessors widen where the value fits and refuse where it doesn't.
        #expect(f.int("t.u32") == 4_000_000_000)
        #expect(f.int("t.arr.u64") == nil)
        #expect(f.double("t.f32") == 1.5)
        #expect(f.intArray("t.arr.i16") == [-1, 0, 7])
        #expect(f.doubleArray("t.arr.f32") == [0.5, -2.25])
    }
}

@Test func tensorOffsetsAndDataAgreeWithTheGGUFPackage() throws {
    let fx = try ReaderFixtures()
    for (name, alignment) in [("v3", 32), ("v2", 32), ("aligned", 256)] {
        let f = try GGUFFile(path: fx.path(name))
        #expect(f.alignment == alignment, "\(name)")
        let want = try #require(fx.manifest[name])
        #expect(f.tensors.map(\.name) == want.map(\.name))
        for w in want {
            let t = try f.tensor(w.name)
            #expect(t.type.rawValue == w.type)
            #expect(t.dimensions == w.dims)
            #expect(t.fileOffset == w.offset, "\(name) \(w.name): offset \(t.fileOffset), gguf reads \(w.offset)")
            #expect(t.fileOffset % alignment == 0)
            #expect(Dequantize.tensor(f, t).map(Double.init) == w.values, "\(name) \(w.name)")
        }
    }
    // The 256-byte alignment really moved the data, so an offset computed with the default would read wrong bytes.
    let a = try GGUFFile(path: fx.path("aligned")), b = try GGUFFile(path: fx.path("v3"))
    #expect(try a.tensor("b").fileOffset - a.tensor("a").fileOffset == 256)
    #expect(try b.tensor("b").fileOffset - b.tensor("a").fileOffset == 32)
}

@Test func unknownTensorTypeIsAOneLineErrorNamingTheTensor() throws {
    let fx = try ReaderFixtures()
    let path = fx.path("unknown_type")
    do {
        _ = try GGUFFile(path: path)
        Issue.record("expected an unknown tensor type error")
    } catch {
        #expect(error.tensor == "blk.0.mystery")
        #expect(error.description.hasPrefix(path))
        #expect(error.description.contains("'blk.0.mystery'"))
        #expect(error.description.contains("unknown tensor type 99"))
        #expect(!error.description.contains("\n"))
    }
}
