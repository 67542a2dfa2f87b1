// llama-server's tokenizer routes: /tokenize, /detokenize and /apply-template, so clients can count tokens and
// see the exact prompt text before they send a request.
import HTTPServer
import Inference

/// `{"tokens": [...]}`: ids alone, or `{"id", "piece"}` objects when `with_pieces` asks for them.
struct TokenizeResponse: Encodable {
    struct Piece: Encodable {
        var id: Int32
        /// The token's text, or its bytes when they are not valid UTF-8 on their own (part of a character).
        var piece: PieceText
    }

    enum PieceText: Encodable {
        case text(String)
        case bytes([UInt8])

        init(_ bytes: [UInt8]) {
            if let s = String(validating: bytes, as: UTF8.self) { self = .text(s) } else { self = .bytes(bytes) }
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.singleValueContainer()
            switch self {
            case .text(let s): try c.encode(s)
            case .bytes(let b): try c.encode(b.map(Int.init))
            }
        }
    }

    enum Tokens {
        case ids([Int32])
        case pieces([Piece])
    }

    var tokens: Tokens

    enum CodingKeys: String, CodingKey { case tokens }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch tokens {
        case .ids(let ids): try c.encode(ids, forKey: .tokens)
        case .pieces(let pieces): try c.encode(pieces, forKey: .tokens)
        }
    }
}

struct DetokenizeResponse: Encodable { var content: String }
struct ApplyTemplateResponse: Encodable { var prompt: String }

extension OpenAIService {
    /// These routes need no model field; one that names another model is still a 404, as elsewhere.
    private func tokenizerFields(_ request: HTTPRequest) throws -> (any CompletionBackend, FieldReader) {
        let backend = try readyBackend()
        let fields = FieldReader(object: try RequestDecoder.object(request.body))
        if let model = try fields.string("model"), model != settings.servedModelName { throw APIError.modelNotFound(model) }
        return (backend, fields)
    }

    func tokenize(_ request: HTTPRequest, _ sink: any ResponseSink) throws {
        let (backend, fields) = try tokenizerFields(request)
        guard let content = try fields.string("content") else {
            throw APIError.invalid("'content' is required: the text to tokenize.", param: "content")
        }
        // llama-server's defaults: no BOS unless asked, special tokens' text read as those tokens.
        let ids = backend.tokenize(text: content, addSpecial: try fields.bool("add_special") ?? false,
                                   parseSpecial: try fields.bool("parse_special") ?? true)
        let body: TokenizeResponse
        if try fields.bool("with_pieces") ?? false {
            body = TokenizeResponse(tokens: .pieces(ids.map {
                TokenizeResponse.Piece(id: $0, piece: .init(backend.tokenBytes($0)))
            }))
        } else {
            body = TokenizeResponse(tokens: .ids(ids))
        }
        sink.respond(.json(200, OpenAICodec.json(body)))
    }

    func detokenize(_ request: HTTPRequest, _ sink: any ResponseSink) throws {
        let (backend, fields) = try tokenizerFields(request)
        guard let value = fields.value("tokens") else {
            throw APIError.invalid("'tokens' is required: an array of token ids.", param: "tokens")
        }
        guard case .array(let items) = value else {
            throw APIError.invalid("'tokens' must be an array of token ids, got \(value.typeName).", param: "tokens")
        }
        var ids: [Int32] = []
        if let first = items.first {
            guard case .number = first else {
                throw APIError.invalid("'tokens[0]' must be a token id, got \(first.typeName).", param: "tokens[0]")
            }
            // The completions prompt's reading of an id array: every id checked, a bad one named by position.
            if case .tokens(let list)? = try PromptInput.list(value, field: "tokens", vocabularySize: backend.vocabularySize).first {
                ids = list
            }
        }
        sink.respond(.json(200, OpenAICodec.json(DetokenizeResponse(content: backend.detokenize(ids)))))
    }

    func applyTemplate(_ request: HTTPRequest, _ sink: any ResponseSink) throws {
        let (backend, fields) = try tokenizerFields(request)
        guard let value = fields.value("messages") else {
            throw APIError.invalid("'messages' is required.", param: "messages")
        }
        guard case .array(let items) = value, !items.isEmpty else {
            throw APIError.invalid("'messages' must be a non-empty array of messages.", param: "messages")
        }
        let messages = try items.enumerated().map { try RequestDecoder.message($0.element, index: $0.offset) }
        sink.respond(.json(200, OpenAICodec.json(ApplyTemplateResponse(prompt: try backend.render(chat: messages)))))
    }
}
