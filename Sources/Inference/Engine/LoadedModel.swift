// A model file opened for serving: the mapped GGUF, its engine, tokenizer and chat template, built together.

public struct LoadedModel: Sendable {
    public let file: GGUFFile
    public let engine: LlamaEngine
    public let tokenizer: Tokenizer
    public let template: ChatTemplate

    /// Any failure (bad file, unsupported architecture or type, tokenizer metadata) comes back as one line.
    public init(path: String, threads: Int, kvCacheTokens: Int) throws(LoadError) {
        do {
            file = try GGUFFile(path: path)
            tokenizer = try Tokenizer(gguf: file)
            template = ChatTemplate(gguf: file)
            engine = try LlamaEngine(model: file, threads: threads, kvCacheTokens: kvCacheTokens)
        } catch {
            throw LoadError(description: "\(error)")
        }
    }

    public struct LoadError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Quantization named by the file's dominant matrix type, e.g. "Q4_1".
    public var quantization: String {
        var counts: [GGMLType: Int] = [:]
        for t in file.tensors where t.dimensions.count == 2 { counts[t.type, default: 0] += 1 }
        return counts.max { $0.value < $1.value }.map { "\($0.key)" } ?? "unknown"
    }
}
