// The `valet` executable's entry point.
import ArgumentParser

@main
struct Valet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "valet",
        abstract: "A Swift-native LLM inference microservice.",
        version: ValetVersion.string,
        subcommands: [ServeCommand.self]
    )
}
