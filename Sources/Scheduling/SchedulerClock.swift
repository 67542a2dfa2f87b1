// Time as the scheduler sees it: monotonic seconds for waits and durations, unix seconds for records; tests fake it.
import Inference
import Foundation

protocol SchedulerClock: Sendable {
    func monotonic() -> Double
    func unix() -> Double
}

struct SystemClock: SchedulerClock {
    func monotonic() -> Double { ProcessInfo.processInfo.systemUptime }
    func unix() -> Double { Date().timeIntervalSince1970 }
}
