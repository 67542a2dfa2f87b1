// A prompt as OpenAI lets a client send it: text, or token ids already made by the client's own tokenizer.

public enum PromptInput: Sendable, Equatable {
    case text(String)
    /// Fed exactly as sent: no BOS is added.
    case tokens([Int32])

    /// `field` as OpenAI's completions `prompt` and embeddings `input` accept it: a string, an array of strings,
    /// an array of token ids (one prompt), or an array of such arrays. Every id is checked against the
    /// vocabulary, and an error names the element's position (`prompt[1][3]`).
    static func list(_ value: JSONValue, field: String, vocabularySize: Int) throws -> [PromptInput] {
        let shapes = "a string, an array of strings, an array of token ids or an array of token-id arrays"
        guard case .array(let items) = value else {
            if case .string(let s) = value { return [.text(s)] }
            throw APIError.invalid("'\(field)' must be \(shapes), got \(value.typeName).", param: field)
        }
        guard let first = items.first else {
            throw APIError.invalid("'\(field)' must not be an empty array.", param: field)
        }
        switch first {
        case .number:
            return [.tokens(try tokens(items, field: field, vocabularySize: vocabularySize))]
        case .string:
            return try items.enumerated().map { i, item in
                guard case .string(let s) = item else {
                    throw APIError.invalid("'\(field)[\(i)]' is \(item.typeName); an array of strings must hold only strings.",
                                           param: "\(field)[\(i)]")
                }
                return .text(s)
            }
        case .array:
            return try items.enumerated().map { i, item in
                guard case .array(let ids) = item else {
                    throw APIError.invalid("'\(field)[\(i)]' is \(item.typeName); an array of token-id arrays must hold only arrays.",
                                           param: "\(field)[\(i)]")
                }
                guard !ids.isEmpty else {
                    throw APIError.invalid("'\(field)[\(i)]' must not be an empty array.", param: "\(field)[\(i)]")
                }
                return .tokens(try tokens(ids, field: "\(field)[\(i)]", vocabularySize: vocabularySize))
            }
        default:
            throw APIError.invalid("'\(field)' must be \(shapes); its first element is \(first.typeName).", param: field)
        }
    }

    private static func tokens(_ items: [JSONValue], field: String, vocabularySize: Int) throws -> [Int32] {
        try items.enumerated().map { i, item in
            let param = "\(field)[\(i)]"
            guard case .number(let x) = item, x.rounded() == x else {
                throw APIError.invalid("'\(param)' must be an integer token id, got \(item.typeName == "a number" ? "a fraction" : item.typeName).",
                                       param: param)
            }
            guard x >= 0, x < Double(vocabularySize) else {
                throw APIError.invalid("'\(param)' is \(FieldReader.format(x)), which is not a token id of this model (0..<\(vocabularySize)).",
                                       param: param, code: "invalid_token_id")
            }
            return Int32(x)
        }
    }
}
