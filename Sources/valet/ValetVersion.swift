// The version and git revision `valet` reports (--version, valet_build_info, system_fingerprint).

enum ValetVersion {
    static let string = "0.1.0"
    static let revision = BuildRevision.value
}
