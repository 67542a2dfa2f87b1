// A validated /v1/embeddings request: OpenAI's fields, each error naming the field.
import Scheduling

public struct EmbeddingRequest: Sendable {
    public enum Encoding: String, Sendable {
        /// A JSON array of numbers.
        case float
        /// The little-endian float32 bytes, base64-encoded (what the openai client asks for by default).
        case base64
    }

    public var model = ""
    public var inputs: [PromptInput] = []
    public var encoding = Encoding.float
    public var priority: Priority?
    public var queueTimeout: Double?

    /// OpenAI's own limit on inputs per request.
    public static let maxInputs = 2048

    public static func decode(_ body: [UInt8], limits: RequestDecoder.Limits, dimensions: Int) throws -> EmbeddingRequest {
        let fields = FieldReader(object: try RequestDecoder.object(body))
        var r = EmbeddingRequest()
        r.model = try fields.string("model") ?? ""
        guard let input = fields.value("input") else { throw APIError.invalid("'input' is required.", param: "input") }
        r.inputs = try PromptInput.list(input, field: "input", vocabularySize: limits.vocabularySize)
        guard r.inputs.count <= maxInputs else {
            throw APIError.invalid("'input' holds \(r.inputs.count) inputs; at most \(maxInputs) are allowed per request.",
                                   param: "input")
        }
        if let name = try fields.string("encoding_format") {
            guard let encoding = Encoding(rawValue: name) else {
                throw APIError.invalid("'encoding_format' must be 'float' or 'base64', got '\(name)'.", param: "encoding_format")
            }
            r.encoding = encoding
        }
        // The model's width is the only size there is: truncating a vector that was not trained for it
        // (Matryoshka-style) would silently give worse embeddings.
        if let wanted = try fields.integer("dimensions", 1...Int(Int32.max)), wanted != dimensions {
            throw APIError.unsupported("'dimensions' must be \(dimensions), this model's embedding size; got \(wanted).",
                                       param: "dimensions")
        }
        _ = try fields.string("user")
        if let name = try fields.string("priority") {
            guard let priority = Priority(name: name) else {
                throw APIError.invalid("'priority' must be one of low, normal, high, critical; got '\(name)'.", param: "priority")
            }
            r.priority = priority
        }
        if let timeout = try fields.number("queue_timeout", 0...86_400) {
            guard timeout > 0 else { throw APIError.invalid("'queue_timeout' must be greater than 0 seconds.", param: "queue_timeout") }
            r.queueTimeout = timeout
        }
        return r
    }
}
