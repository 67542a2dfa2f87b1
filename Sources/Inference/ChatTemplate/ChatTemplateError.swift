// Why a conversation cannot be rendered into a prompt; one line, fit for a 400 response.

public struct ChatTemplateError: Error, CustomStringConvertible, Equatable {
    public var problem: String

    public init(_ problem: String) { self.problem = problem }

    public var description: String { problem }
}
