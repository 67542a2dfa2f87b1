// A one-line error from building or stepping the engine (bad input, not a crash).

public struct EngineError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
