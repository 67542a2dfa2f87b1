// The `valet` executable's entry point.
import ArgumentParser

@main
struct Valet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "valet",
        abstract: "A Swift-native LLM inference microservice.",
        // `valet --help` shows serve's options too, so one command documents every setting and its default.
        discussion: "Run `valet serve` to serve a model. Its help follows.\n\n" + ServeCommand.helpMessage(columns: 78),
        version: ValetVersion.string,
        subcommands: [ServeCommand.self, GenerateCommand.self, BenchCommand.self, LoopBenchCommand.self, GrammarBenchCommand.self],
        defaultSubcommand: ServeCommand.self
    )
}
