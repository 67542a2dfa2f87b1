// Errors from building a tokenizer out of GGUF metadata; each is one line naming the file and the key at fault.

public struct TokenizerError: Error, CustomStringConvertible, Equatable {
    public var file: String?
    public var problem: String

    public init(file: String? = nil, _ problem: String) {
        self.file = file
        self.problem = problem
    }

    public var description: String {
        if let file { return "\(file): tokenizer: \(problem)" }
        return "tokenizer: \(problem)"
    }
}
