// Reads the default model's GGUF header and checks what the spec and the model card say it holds.
import Foundation
import TestSupport
import Testing
@testable import Inference

@Test func readsDefaultModelHeader() throws {
    guard let path = TestModel.path else { Issue.record("default model missing: run `make model`"); return }
    let f = try GGUFFile(path: path)
    #expect(f.version == 3)
    #expect(f.string("general.architecture") == "llama")
    #expect(f.int("llama.block_count") == 30)
    #expect(f.int("llama.embedding_length") == 576)
    #expect(f.stringArray("tokenizer.ggml.tokens")?.count == 49152)
    #expect(f.tensors.count == 272)
    let emb = try f.tensor("token_embd.weight")
    #expect(emb.type == .q8_0)
    #expect(emb.dimensions == [576, 49152])
    #expect(emb.byteCount == 576 / 32 * 34 * 49152)
    #expect(try f.tensor("blk.0.attn_q.weight").type == .q4_1)
    #expect(throws: GGUFError.self) { try f.tensor("blk.99.attn_q.weight") }
}

@Test func rejectsBadFilesWithOneLineErrors() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("valet-gguf-\(getpid())")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    func expectError(_ bytes: [UInt8], contains fragment: String) throws {
        let p = dir.appendingPathComponent("f\(fragment.hashValue).gguf").path
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        do {
            _ = try GGUFFile(path: p)
            Issue.record("expected an error containing '\(fragment)'")
        } catch {
            #expect(error.description.contains(fragment), "\(error.description)")
            #expect(error.description.hasPrefix(p))
            #expect(!error.description.contains("\n"))
        }
    }
    var header: [UInt8] = Array("GGUF".utf8) + [3, 0, 0, 0] + [UInt8](repeating: 0, count: 16)
    try expectError(Array("GGML".utf8) + [UInt8](repeating: 0, count: 20), contains: "not a GGUF file")
    try expectError(Array("GGUF".utf8) + [9, 0, 0, 0] + [UInt8](repeating: 0, count: 16), contains: "unsupported GGUF version 9")
    header[8] = 1 // one tensor promised, none present
    try expectError(header, contains: "truncated")
    if let path = TestModel.path {
        let whole = try Data(contentsOf: URL(fileURLWithPath: path))
        try expectError(Array(whole.prefix(2_000_000)), contains: "truncated")
    }
}
