// The database as files on disk: which file its path names right now, and how many bytes it and its WAL take.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file's device and inode: two paths, or one path at two moments, name the same file exactly when these match.
struct FileIdentity: Equatable, Sendable {
    var device: UInt64
    var inode: UInt64

    /// The file `path` names now; nil when there is none or it cannot be examined.
    static func of(_ path: String) -> FileIdentity? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }
}

enum DatabaseFile {
    /// The main file plus its write-ahead log, in bytes (what the database takes on its volume).
    static func bytes(_ path: String) -> Int {
        size(path) + size(path + "-wal")
    }

    /// Removes the WAL and shared-memory files left at `path` once its database file is gone: a new file created
    /// there would otherwise replay the old database's log into itself.
    static func removeOrphanedSidecars(of path: String) {
        guard FileIdentity.of(path) == nil else { return }
        for suffix in ["-wal", "-shm"] { _ = unlink(path + suffix) }
    }

    /// Creates the directories leading to `path` that are missing.
    static func createParentDirectory(of path: String) throws(RecorderError) {
        guard let slash = path.lastIndex(of: "/") else { return }
        let directory = String(path[..<slash])
        guard !directory.isEmpty else { return }
        var prefix = directory.hasPrefix("/") ? "/" : ""
        for component in directory.split(separator: "/") {
            prefix += component
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                throw RecorderError.cannotCreateDirectory(path: prefix, errno: errno)
            }
            prefix += "/"
        }
    }

    /// Throws `notWritable` when this process could not write the database: the file itself, or its directory,
    /// where SQLite creates the write-ahead log and removes it on close. `access` also answers for root on a
    /// read-only mount, which plain permission bits would not stop.
    static func checkWritable(_ path: String) throws(RecorderError) {
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        if access(directory, W_OK | X_OK) != 0 {
            throw RecorderError.notWritable(path: path, reason: "its directory \(directory): \(describe(errno))")
        }
        if access(path, F_OK) == 0 && access(path, W_OK) != 0 {
            throw RecorderError.notWritable(path: path, reason: describe(errno))
        }
    }

    /// The identities of the WAL and shared-memory files now at `path`.
    static func sidecars(of path: String) -> [String: FileIdentity] {
        var found: [String: FileIdentity] = [:]
        for suffix in ["-wal", "-shm"] { found[suffix] = FileIdentity.of(path + suffix) }
        return found
    }

    /// Removes those of `path`'s WAL and shared-memory files that are still the ones in `previous`: they belonged
    /// to the database file that was replaced (SQLite keeps them when it closes a moved file), and the
    /// replacement would otherwise replay that log into itself.
    static func removeSidecars(of path: String, stillMatching previous: [String: FileIdentity]) {
        for (suffix, identity) in previous where FileIdentity.of(path + suffix) == identity {
            _ = unlink(path + suffix)
        }
    }

    private static func describe(_ code: Int32) -> String {
        String(cString: strerror(code))
    }

    private static func size(_ path: String) -> Int {
        var info = stat()
        guard stat(path, &info) == 0 else { return 0 }
        return Int(info.st_size)
    }
}
