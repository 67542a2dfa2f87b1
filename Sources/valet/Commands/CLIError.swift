// A failure reported by a subcommand as one line on stderr (no usage text, exit status 1).

struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
