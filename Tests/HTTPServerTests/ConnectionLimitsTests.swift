// The read deadline and the body budget on their own: which connections get cut and when, and that the budget
// is all-or-nothing and whole again after release.
import Foundation
import Testing
@testable import HTTPServer

@Suite struct ConnectionLimitsTests {
    /// A connected pair: the server's end goes to the deadlines, the client's end tells whether it was cut.
    private func socketPair() -> (server: Int32, client: Int32) {
        var fds: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        return (fds[0], fds[1])
    }

    private func isCut(_ client: Int32) -> Bool {
        var byte: UInt8 = 0
        return recv(client, &byte, 1, Int32(MSG_DONTWAIT)) == 0
    }

    private func connection(_ n: Int) -> OpaquePointer { OpaquePointer(bitPattern: 0x1000 * n)! }

    @Test func aRequestStillUnreadAtItsDeadlineIsCutAndOnlyThatOne() {
        let deadlines = ReadDeadlines(readTimeout: .seconds(10), idleTimeout: .seconds(60))
        let t0 = ContinuousClock.now
        let slow = socketPair(), done = socketPair()
        defer { for fd in [slow.server, slow.client, done.server, done.client] { close(fd) } }
        deadlines.opened(connection(1), fd: slow.server, now: t0)
        deadlines.opened(connection(2), fd: done.server, now: t0)
        deadlines.received(connection(2))

        #expect(deadlines.cutExpired(now: t0 + .seconds(9)) == 0)
        #expect(!isCut(slow.client))
        #expect(deadlines.cutExpired(now: t0 + .seconds(10)) == 1)
        #expect(isCut(slow.client))
        #expect(!isCut(done.client))
        // Cut once, however often the watchdog looks again before MHD reports the close.
        #expect(deadlines.cutExpired(now: t0 + .seconds(20)) == 0)
        #expect(deadlines.cut == 1)
    }

    @Test func aKeptAliveConnectionGetsTheIdleTimeoutPlusTheReadTimeoutForItsNextRequest() {
        let deadlines = ReadDeadlines(readTimeout: .seconds(10), idleTimeout: .seconds(60))
        let t0 = ContinuousClock.now
        let pair = socketPair()
        defer { close(pair.server); close(pair.client) }
        deadlines.opened(connection(1), fd: pair.server, now: t0)
        deadlines.received(connection(1))
        // Answering takes as long as it takes: no deadline runs meanwhile.
        #expect(deadlines.cutExpired(now: t0 + .seconds(500)) == 0)
        deadlines.answered(connection(1), now: t0 + .seconds(500))
        #expect(deadlines.cutExpired(now: t0 + .seconds(569)) == 0)
        #expect(deadlines.cutExpired(now: t0 + .seconds(570)) == 1)
        #expect(isCut(pair.client))
    }

    @Test func aClosedConnectionIsForgotten() {
        let deadlines = ReadDeadlines(readTimeout: .seconds(1), idleTimeout: .seconds(1))
        let t0 = ContinuousClock.now
        deadlines.opened(connection(1), fd: -1, now: t0)
        deadlines.closed(connection(1))
        #expect(deadlines.count == 0)
        #expect(deadlines.cutExpired(now: t0 + .seconds(5)) == 0)
        // A late answer for a connection already gone does not bring it back.
        deadlines.answered(connection(1), now: t0)
        #expect(deadlines.count == 0)
    }

    @Test func theBodyBudgetIsAllOrNothingAndWholeAfterRelease() async {
        let budget = BodyBudget(limit: 1000)
        #expect(budget.reserve(600))
        #expect(!budget.reserve(401))
        #expect(budget.inUse == 600)
        #expect(budget.reserve(400))
        #expect(!budget.reserve(1))
        budget.release(600)
        budget.release(400)
        #expect(budget.inUse == 0)
        // Concurrent takers never overshoot the limit.
        await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<64 { group.addTask { budget.reserve(100) } }
            var taken = 0
            for await ok in group where ok { taken += 1 }
            #expect(taken == 10)
        }
        #expect(budget.inUse == 1000)
    }
}
