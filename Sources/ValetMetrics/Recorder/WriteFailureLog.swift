// Turns the writer's stream of failed and successful writes into a few log lines: the first failure at once, then
// at most one summary a minute with a count, and one line when writes succeed again.

/// Writer-thread state; feed it every outcome and log what it returns.
struct WriteFailureLog {
    /// Least seconds between two lines about the same run of failures.
    let summaryInterval: Double
    /// When the current run of failures began; nil while writes succeed.
    private(set) var failingSince: Double?
    private var failuresInRun = 0
    private var unreported = 0
    private var lastLineAt = -Double.infinity

    init(summaryInterval: Double = 60) {
        self.summaryInterval = summaryInterval
    }

    /// A write failed with `message`; `bufferedJobs` job rows are waiting in memory.
    mutating func failed(_ message: String, now: Double, bufferedJobs: Int) -> String? {
        failuresInRun += 1
        guard let since = failingSince else {
            failingSince = now
            lastLineAt = now
            unreported = 0
            return "recorder: writing the database failed: \(message); job rows stay in memory and are retried "
                + "(further failures are summarised once a minute)"
        }
        unreported += 1
        guard now - lastLineAt >= summaryInterval else { return nil }
        defer {
            unreported = 0
            lastLineAt = now
        }
        return "recorder: \(unreported) more write failures in the last \(seconds(now - lastLineAt)), "
            + "failing for \(seconds(now - since)); \(bufferedJobs) job rows waiting in memory; last error: \(message)"
    }

    /// A write succeeded after `written` job rows were committed.
    mutating func succeeded(now: Double, written: Int) -> String? {
        guard let since = failingSince else { return nil }
        defer {
            failingSince = nil
            failuresInRun = 0
            unreported = 0
        }
        return "recorder: writes succeed again after \(failuresInRun) failures over \(seconds(now - since)); "
            + "\(written) waiting job rows written"
    }

    private func seconds(_ value: Double) -> String {
        "\(Int(value.rounded())) s"
    }
}
