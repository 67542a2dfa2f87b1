// The scheduler A/B of `make bench` replayed against the real scheduler with a fake engine that sleeps for a modelled
// step time, so it can be read on a busy machine. Off by default (VALET_SCHED_SIM=1 runs it); it prints, asserts nothing timed.
import Foundation
import Locks
import Synchronization
import Testing
@testable import Scheduling
import Inference

private struct SimResult {
    var highTTFT: [Double] = []
    var normalTTFT: [Double] = []
    var highQueue: [Double] = []
    var highAdmitToFirst: [Double] = []
    var tokens = 0
    var seconds = 0.0
    var suspended = 0
    var preempted = 0
}

private func percentile(_ v: [Double], _ q: Double) -> Double {
    guard !v.isEmpty else { return .nan }
    let s = v.sorted()
    let pos = Double(s.count - 1) * q / 100
    let lo = Int(pos), hi = Swift.min(lo + 1, s.count - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - Double(lo))
}

/// Keeps each finished job's timings (seconds on the scheduler's clock).
private final class Timings: SchedulerObserver {
    let rows = Locked<[String: JobSnapshot]>([:])
    func jobFinished(_ job: JobSnapshot) { rows.withLock { $0[job.id] = job } }
}

/// 16 closed-loop clients, every fifth request high, prompts 20/70/266 tokens in the bench's 4:4:2 mix, 64 tokens
/// each, max batch 8. Step time: 15 ms + 2.5 ms per decode row + 4 ms per prompt token (fits fifo's ~100 tok/s).
private func simulate(_ kind: SchedulerConfig.Kind, seconds: Double, warmup: Double) -> SimResult {
    let cost: @Sendable ([Int]) -> Double = { fed in
        0.015 + fed.reduce(0.0) { $0 + ($1 == 1 ? 0.0025 : 0.004 * Double($1)) }
    }
    let engine = FakeEngine(blocks: 1024, stepSeconds: cost)
    let timings = Timings()
    let s = Scheduler(config: SchedulerConfig(kind: kind, maxBatch: 8), engine: engine, decoder: LetterDecoder(),
                      observer: timings)
    s.start()
    let mix = [20, 70, 20, 266, 70, 20, 70, 20, 266, 70]
    let next = Atomic<Int>(0)
    let start = Date()
    let results = Locked<[(id: String, high: Bool, sent: Double, ttft: Double?, tokens: [Double])]>([])
    let done = DispatchGroup()
    for _ in 0..<16 {
        done.enter()
        Thread {
            while Date().timeIntervalSince(start) < warmup + seconds {
                let i = next.add(1, ordering: .relaxed).newValue - 1
                let high = i % 5 == 0
                let id = "r\(i)"
                let req = request(id, prompt: mix[i % mix.count], max: 64, priority: high ? .high : .normal,
                                  seedTokens: Int32(i % 13))
                let sent = Date().timeIntervalSince(start)
                let finished = DispatchSemaphore(value: 0)
                let times = Locked<[Double]>([])
                s.submitTelling(req) { e in
                    switch e {
                    case .token: times.withLock { $0.append(Date().timeIntervalSince(start)) }
                    case .finished, .failed: finished.signal()
                    default: break
                    }
                }
                finished.wait()
                let t = times.withLock { $0 }
                results.withLock { $0.append((id, high, sent, t.first.map { $0 - sent }, t)) }
            }
            done.leave()
        }.start()
    }
    done.wait()
    let st = s.stats()
    s.shutdown(grace: 0)
    var out = SimResult()
    let rows = timings.rows.withLock { $0 }
    for r in results.withLock({ $0 }) {
        out.tokens += r.tokens.filter { $0 >= warmup && $0 < warmup + seconds }.count
        guard r.sent >= warmup, r.sent < warmup + seconds, let ttft = r.ttft else { continue }
        if r.high {
            out.highTTFT.append(ttft)
            if let j = rows[r.id], let a = j.admittedAt, let f = j.firstTokenAt {
                out.highQueue.append(a - j.enqueuedAt)
                out.highAdmitToFirst.append(f - a)
            }
        } else {
            out.normalTTFT.append(ttft)
        }
    }
    out.seconds = seconds
    out.suspended = st.counters.suspended
    out.preempted = st.counters.preempted
    return out
}

@Suite(.serialized) struct SchedulerLoadSimulation {
    @Test(.enabled(if: ProcessInfo.processInfo.environment["VALET_SCHED_SIM"] == "1"))
    func parkingLotVersusFifoUnderTheBenchLoad() {
        let seconds = Double(ProcessInfo.processInfo.environment["VALET_SCHED_SIM_SECONDS"] ?? "") ?? 30
        for kind in [SchedulerConfig.Kind.fifo, .parkingLot] {
            let r = simulate(kind, seconds: seconds, warmup: 8)
            func ms(_ v: [Double], _ q: Double) -> String { String(format: "%.0f", percentile(v, q) * 1000) }
            print("[sim] \(kind.rawValue): high TTFT p50 \(ms(r.highTTFT, 50)) p95 \(ms(r.highTTFT, 95)) ms "
                  + "(n=\(r.highTTFT.count); queue p50 \(ms(r.highQueue, 50)) p95 \(ms(r.highQueue, 95)), "
                  + "admit→first p50 \(ms(r.highAdmitToFirst, 50)) p95 \(ms(r.highAdmitToFirst, 95))), "
                  + "normal TTFT p95 \(ms(r.normalTTFT, 95)) ms, "
                  + String(format: "%.1f tok/s", Double(r.tokens) / r.seconds)
                  + ", suspended \(r.suspended), preempted \(r.preempted)")
        }
    }
}
