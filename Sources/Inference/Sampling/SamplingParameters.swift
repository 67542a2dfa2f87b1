// What a request asks of the sampler; validated by the API layer before it reaches the engine.

public struct SamplingParameters: Sendable, Equatable {
    /// 0 means greedy.
    public var temperature: Float = 1.0
    /// 0 means disabled.
    public var topK: Int = 0
    public var topP: Float = 1.0
    public var minP: Float = 0.0
    /// 1 means disabled.
    public var repetitionPenalty: Float = 1.0
    public var presencePenalty: Float = 0.0
    public var frequencyPenalty: Float = 0.0
    public var logitBias: [Int32: Float] = [:]
    /// nil draws a seed from the system generator.
    public var seed: UInt64? = nil

    public init() {}
}
