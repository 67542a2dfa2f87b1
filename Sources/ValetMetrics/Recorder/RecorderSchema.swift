// The SQLite schema as numbered migrations, applied at startup according to `PRAGMA user_version`.

enum RecorderSchema {
    /// Migration i brings the database from version i to i+1. Append only; never edit a shipped step.
    static let migrations: [String] = [
        """
        CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            model TEXT NOT NULL,
            priority TEXT NOT NULL,
            status TEXT NOT NULL,
            finish_reason TEXT,
            prompt_tokens INTEGER NOT NULL,
            completion_tokens INTEGER NOT NULL,
            cost_blocks INTEGER NOT NULL,
            enqueued_at REAL NOT NULL,
            admitted_at REAL,
            first_token_at REAL,
            finished_at REAL NOT NULL,
            error TEXT
        );
        CREATE INDEX jobs_finished_at ON jobs (finished_at);
        CREATE TABLE queue_samples (
            time REAL NOT NULL,
            queued INTEGER NOT NULL,
            running INTEGER NOT NULL,
            used_blocks INTEGER NOT NULL,
            total_blocks INTEGER NOT NULL
        );
        CREATE INDEX queue_samples_time ON queue_samples (time);
        CREATE TABLE lock_waits (
            time REAL NOT NULL,
            lock TEXT NOT NULL,
            wait_seconds REAL NOT NULL
        );
        CREATE INDEX lock_waits_time ON lock_waits (time);
        -- All-time totals, updated in the same transaction as the job rows; retention never touches it.
        CREATE TABLE job_totals (
            status TEXT NOT NULL,
            finish_reason TEXT NOT NULL,
            jobs INTEGER NOT NULL,
            prompt_tokens INTEGER NOT NULL,
            completion_tokens INTEGER NOT NULL,
            PRIMARY KEY (status, finish_reason)
        ) WITHOUT ROWID;
        """,
        // The prefix cache: prompt tokens each job found cached, and cached blocks in each queue sample. Rows from
        // before read as 0.
        """
        ALTER TABLE jobs ADD COLUMN cached_tokens INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE job_totals ADD COLUMN cached_tokens INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE queue_samples ADD COLUMN cached_blocks INTEGER NOT NULL DEFAULT 0;
        """,
        // Which endpoint each job served. Rows from before it were completions or chats; the id prefix tells which.
        """
        ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'completion';
        UPDATE jobs SET kind = 'chat' WHERE id LIKE 'chatcmpl-%';
        """,
        // What constrained each job's decoding: none, json_object, json_schema or tools. Rows from before had none.
        """
        ALTER TABLE jobs ADD COLUMN constraint_kind TEXT NOT NULL DEFAULT 'none';
        """,
    ]

    static var currentVersion: Int { migrations.count }

    /// Brings `db` to the current version inside one transaction per step.
    static func migrate(_ db: SQLiteConnection) throws(RecorderError) {
        let found = try db.scalarInt("PRAGMA user_version")
        guard found <= currentVersion else {
            throw RecorderError.unsupportedSchemaVersion(found: found, supported: currentVersion)
        }
        for version in found..<currentVersion {
            try db.execute("BEGIN IMMEDIATE")
            do {
                try db.execute(migrations[version])
                try db.execute("PRAGMA user_version = \(version + 1)")
                try db.execute("COMMIT")
            } catch {
                try? db.execute("ROLLBACK")
                throw error
            }
        }
    }
}
