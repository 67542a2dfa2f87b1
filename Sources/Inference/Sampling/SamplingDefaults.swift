// What a request that leaves a sampling field out gets: the serve flags, else the model's own recommendation
// (GGUF `general.sampling.*`), else llama.cpp's defaults, which keep small models on topic.

public struct SamplingDefaults: Sendable, Equatable {
    public var temperature: Float
    /// 0 means disabled.
    public var topK: Int
    public var topP: Float
    public var minP: Float
    /// 1 means disabled.
    public var repetitionPenalty: Float

    public init(temperature: Float, topK: Int, topP: Float, minP: Float, repetitionPenalty: Float) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repetitionPenalty = repetitionPenalty
    }

    /// llama.cpp's `common_params_sampling` values. OpenAI's temperature 1 with no truncation suits large models;
    /// a 135M model given it wanders off topic within a sentence.
    public static let llamaCpp = SamplingDefaults(temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05, repetitionPenalty: 1.0)

    /// One setting per field, each optional: a layer of the precedence (serve flags, or the model file).
    public struct Overrides: Sendable, Equatable {
        public var temperature: Float?
        public var topK: Int?
        public var topP: Float?
        public var minP: Float?
        public var repetitionPenalty: Float?

        public init(temperature: Float? = nil, topK: Int? = nil, topP: Float? = nil, minP: Float? = nil,
                    repetitionPenalty: Float? = nil) {
            self.temperature = temperature
            self.topK = topK
            self.topP = topP
            self.minP = minP
            self.repetitionPenalty = repetitionPenalty
        }

        /// The model file's recommendation; `number` reads a numeric metadata key. Values outside what the API
        /// accepts are ignored rather than trusted, since they come from whoever converted the file.
        public init(modelMetadata number: (String) -> Double?) {
            func read(_ key: String, _ valid: (Double) -> Bool) -> Double? {
                guard let x = number("general.sampling.\(key)"), x.isFinite, valid(x) else { return nil }
                return x
            }
            temperature = read("temp") { (0...2).contains($0) }.map(Float.init)
            topK = read("top_k") { $0 >= 0 && $0 <= Double(Int32.max) && $0.rounded() == $0 }.map { Int($0) }
            topP = read("top_p") { $0 > 0 && $0 <= 1 }.map(Float.init)
            minP = read("min_p") { (0...1).contains($0) }.map(Float.init)
            repetitionPenalty = read("penalty_repeat") { $0 > 0 && $0 <= 2 }.map(Float.init)
        }

        public var isEmpty: Bool { self == Overrides() }
    }

    /// These defaults with every field the layer sets replaced.
    public func overridden(by layer: Overrides) -> SamplingDefaults {
        SamplingDefaults(temperature: layer.temperature ?? temperature, topK: layer.topK ?? topK,
                         topP: layer.topP ?? topP, minP: layer.minP ?? minP,
                         repetitionPenalty: layer.repetitionPenalty ?? repetitionPenalty)
    }

    /// Flags over the model's recommendation over llama.cpp's values.
    public static func resolve(flags: Overrides, model: Overrides) -> SamplingDefaults {
        llamaCpp.overridden(by: model).overridden(by: flags)
    }

    /// The starting point of a request's sampling parameters, before its own fields.
    public var parameters: SamplingParameters {
        var p = SamplingParameters()
        p.temperature = temperature
        p.topK = topK
        p.topP = topP
        p.minP = minP
        p.repetitionPenalty = repetitionPenalty
        return p
    }

    /// For the startup line: `temperature 0.8, top_k 40, …`.
    public var summary: String {
        "temperature \(temperature), top_k \(topK), top_p \(topP), min_p \(minP), repeat_penalty \(repetitionPenalty)"
    }
}
