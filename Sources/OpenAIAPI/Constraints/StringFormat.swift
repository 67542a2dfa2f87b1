// The `format` values structured outputs enforce, each written as an anchored pattern in the `RegexPattern` subset.

enum StringFormat {
    private static let year = "(?:000[1-9]|00[1-9]\\d|0[1-9]\\d\\d|[1-9]\\d{3})"
    /// Month and day with each month's own length; 29 February only in leap years.
    private static let date = "(?:" + year + "-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\\d|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]\\d|30)"
        + "|02-(?:0[1-9]|1\\d|2[0-8]))"
        + "|(?:\\d\\d(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)-02-29)"
    /// RFC 3339 full-time: the offset is required; no leap second, at most 6 fraction digits (what Python's and
    /// pydantic's parsers keep).
    private static let time = "(?:[01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(?:\\.\\d{1,6})?(?:Z|[+-](?:[01]\\d|2[0-3]):[0-5]\\d)"
    private static let label = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"

    /// Anchored patterns by format name.
    static let patterns: [String: String] = [
        "date": "^" + date + "$",
        "time": "^" + time + "$",
        "date-time": "^" + date + "T" + time + "$",
        "uuid": "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        // A practical subset: a dot-atom local part of common characters, a host name of at least two labels
        // whose last (the top-level domain) is letters only. No quoted local parts, IP literals or IDNs.
        "email": "^[A-Za-z0-9_%+-]+(?:\\.[A-Za-z0-9_%+-]+)*@(?:" + label + "\\.)+[A-Za-z]{2,24}$",
    ]

    static var names: [String] { patterns.keys.sorted() }

    /// Each format's automaton, built once per process.
    static let automata: [String: CharAutomaton] = patterns.mapValues { source in
        // The patterns above are in the subset and small, so neither step can fail.
        try! CharAutomaton(try! RegexPattern.parse(source))
    }
}
