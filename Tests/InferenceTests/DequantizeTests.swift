// Checks Dequantize against values the `gguf` PyPI package computes (Tests/python/make_quant_fixture.py),
// for every supported tensor type and for real rows of the default model.
import Foundation
import TestSupport
import Testing
@testable import Inference

/// Runs the fixture scripts in Tests/python with python3 from PATH.
enum PythonFixture {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("python")

    struct Failed: Error, CustomStringConvertible { var description: String }

    static func tempDir(_ tag: String) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("valet-\(tag)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    static func run(_ arguments: [String], script: String = "make_quant_fixture.py") throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", directory.appendingPathComponent(script).path] + arguments
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let message = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw Failed(description: "\(script) \(arguments.joined(separator: " ")) exited \(p.terminationStatus) "
                + "(needs python3 with numpy and gguf; `make deps` installs them): \(String(decoding: message, as: UTF8.self))")
        }
    }
}

/// Positions where two float arrays differ bit for bit (NaN matches any NaN), reporting the first few.
func mismatches(_ got: [Float], _ want: [Float], label: String) -> Int {
    #expect(got.count == want.count, "\(label): \(got.count) values, expected \(want.count)")
    var bad = 0
    for i in 0..<min(got.count, want.count) where !(got[i].bitPattern == want[i].bitPattern || (got[i].isNaN && want[i].isNaN)) {
        if bad < 3 { Issue.record("\(label)[\(i)] = \(got[i]), gguf says \(want[i])") }
        bad += 1
    }
    return bad
}

@Test func dequantizeMatchesGGUFPackageForEveryType() throws {
    let dir = try PythonFixture.tempDir("quant")
    defer { try? FileManager.default.removeItem(at: dir) }
    let path = dir.appendingPathComponent("quant.gguf").path
    try PythonFixture.run(["quant", path])
    let f = try GGUFFile(path: path)
    let types: [GGMLType] = [.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1, .q4_K, .q5_K, .q6_K]
    #expect(types.allSatisfy { $0.isSupported })
    for type in types {
        let q = try f.tensor("q.\(type)")
        let expect = try f.tensor("expect.\(type)")
        #expect(q.type == type)
        #expect(q.rowCount == 4 && q.rowLength == 512)
        let want = Dequantize.tensor(f, expect)
        // Row by row (each row spans several blocks, so block strides matter) and as a whole tensor.
        var rows: [Float] = []
        for r in 0..<q.rowCount { rows += Dequantize.row(f, q, r) }
        #expect(mismatches(rows, want, label: "\(type) rows") == 0)
        #expect(mismatches(Dequantize.tensor(f, q), want, label: "\(type) tensor") == 0)
    }
}

@Test func halfConversionIsExactForAllBitPatterns() {
    // Float(Float16) is the platform's conversion; ours avoids it for speed, so compare all 65536 inputs.
    var bad = 0
    for bits in 0...UInt16.max {
        let want = Float(Float16(bitPattern: bits)), got = Dequantize.half(bits)
        if !(got.bitPattern == want.bitPattern || (got.isNaN && want.isNaN)) { bad += 1 }
    }
    #expect(bad == 0)
}

@Test func dequantizesRealRowsOfTheDefaultModel() throws {
    guard let model = TestModel.path else {
        print("skipping dequantizesRealRowsOfTheDefaultModel: default model missing (run `make model` or set VALET_TEST_MODEL)")
        return
    }
    let dir = try PythonFixture.tempDir("rows")
    defer { try? FileManager.default.removeItem(at: dir) }
    let path = dir.appendingPathComponent("rows.gguf").path
    try PythonFixture.run(["model-rows", model, path])
    let m = try GGUFFile(path: model)
    let expected = try GGUFFile(path: path)
    #expect(expected.tensors.count == 13)
    var seenTypes = Set<GGMLType>()
    for e in expected.tensors {
        let parts = e.name.split(separator: "#")
        let t = try m.tensor(String(parts[0]))
        seenTypes.insert(t.type)
        let row = try #require(Int(parts[1]))
        #expect(mismatches(Dequantize.row(m, t, row), Dequantize.tensor(expected, e), label: e.name) == 0)
    }
    #expect(seenTypes == [.q8_0, .q4_1, .f32])
}

@Test func dequantizesEveryTensorOfTheTinyLlama() throws {
    // make_tiny_llama.py packs K-quant blocks from real-looking weights (not random bytes), another path to the layout.
    let dir = try PythonFixture.tempDir("tiny")
    defer { try? FileManager.default.removeItem(at: dir) }
    let model = dir.appendingPathComponent("tiny.gguf").path, path = dir.appendingPathComponent("expect.gguf").path
    try PythonFixture.run([model], script: "make_tiny_llama.py")
    try PythonFixture.run(["model-all", model, path])
    let m = try GGUFFile(path: model), expected = try GGUFFile(path: path)
    #expect(Set(m.tensors.map(\.type)) == [.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1, .q4_K, .q5_K, .q6_K])
    #expect(expected.tensors.map(\.name) == m.tensors.map(\.name))
    for t in m.tensors {
        #expect(mismatches(Dequantize.tensor(m, t), Dequantize.tensor(expected, try expected.tensor(t.name)), label: t.name) == 0)
    }
}
