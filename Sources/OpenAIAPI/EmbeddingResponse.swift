// The /v1/embeddings answer in OpenAI's shape: a list of embedding objects and the prompt tokens they cost.
import Foundation

struct EmbeddingItem: Encodable {
    var index: Int
    var vector: [Float]
    var encoding: EmbeddingRequest.Encoding

    enum CodingKeys: String, CodingKey { case object, index, embedding }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode("embedding", forKey: .object)
        try c.encode(index, forKey: .index)
        switch encoding {
        case .float: try c.encode(vector, forKey: .embedding)
        case .base64: try c.encode(Self.base64(vector), forKey: .embedding)
        }
    }

    /// float32 values, little-endian, as numpy's `frombuffer(..., dtype="<f4")` reads them.
    static func base64(_ vector: [Float]) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(vector.count * 4)
        for x in vector {
            let bits = x.bitPattern.littleEndian
            bytes.append(contentsOf: [UInt8(bits & 0xFF), UInt8((bits >> 8) & 0xFF), UInt8((bits >> 16) & 0xFF),
                                      UInt8(bits >> 24)])
        }
        return Data(bytes).base64EncodedString()
    }
}

struct EmbeddingList: Encodable {
    var data: [EmbeddingItem]
    var model: String
    var promptTokens: Int

    enum CodingKeys: String, CodingKey { case object, data, model, usage }
    enum UsageKeys: String, CodingKey { case promptTokens = "prompt_tokens", totalTokens = "total_tokens" }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode("list", forKey: .object)
        try c.encode(data, forKey: .data)
        try c.encode(model, forKey: .model)
        var usage = c.nestedContainer(keyedBy: UsageKeys.self, forKey: .usage)
        try usage.encode(promptTokens, forKey: .promptTokens)
        try usage.encode(promptTokens, forKey: .totalTokens)
    }
}
