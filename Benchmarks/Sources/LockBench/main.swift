// The lock suite of `make bench`: Valet's InstrumentedLock against a bare Mutex, a pthread mutex, NSLock and a
// pthread rwlock, at several thread counts and workloads, in ns per operation; JSON for bench/run.py.
import Foundation
import Synchronization
import Locks

#if canImport(Glibc)
import Glibc
#endif

// MARK: What every lock guards

/// A counter and eight words: reads sum the words, writes bump them all, so a critical section touches one
/// cache line like the scheduler's and the stream registry's short sections do.
struct Guarded {
    var counter: UInt64 = 0
    var words = SIMD8<UInt64>(repeating: 1)
}

protocol BenchLock: AnyObject, Sendable {
    static var label: String { get }
    init()
    func increment()
    func read() -> UInt64
    func write()
}

final class InstrumentedBox: BenchLock {
    static let label = "InstrumentedLock"
    let lock = InstrumentedLock(name: "bench", Guarded())
    init() {}
    @inline(__always) func increment() { lock.withLock { $0.counter &+= 1 } }
    @inline(__always) func read() -> UInt64 { lock.withLock { $0.words.wrappedSum() } }
    @inline(__always) func write() { lock.withLock { $0.words &+= 1 } }
}

final class MutexBox: BenchLock {
    static let label = "Mutex"
    let lock = Mutex(Guarded())
    init() {}
    @inline(__always) func increment() { lock.withLock { $0.counter &+= 1 } }
    @inline(__always) func read() -> UInt64 { lock.withLock { $0.words.wrappedSum() } }
    @inline(__always) func write() { lock.withLock { $0.words &+= 1 } }
}

/// The C-style locks guard state behind a pointer shared across threads; each box says only how to lock, and the
/// three operations are written once here.
protocol PointerLockBox: BenchLock {
    var state: UnsafeMutablePointer<Guarded> { get }
    func lockExclusive()
    /// Shared mode where the lock has one (the rwlock's readers); exclusive otherwise.
    func lockShared()
    func unlock()
}

extension PointerLockBox {
    func lockShared() { lockExclusive() }
    @inline(__always) func increment() {
        lockExclusive()
        state.pointee.counter &+= 1
        unlock()
    }
    @inline(__always) func read() -> UInt64 {
        lockShared()
        let s = state.pointee.words.wrappedSum()
        unlock()
        return s
    }
    @inline(__always) func write() {
        lockExclusive()
        state.pointee.words &+= 1
        unlock()
    }
}

final class PthreadMutexBox: PointerLockBox, @unchecked Sendable {
    static let label = "pthread_mutex"
    let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    let state = UnsafeMutablePointer<Guarded>.allocate(capacity: 1)
    init() {
        pthread_mutex_init(mutex, nil)
        state.initialize(to: Guarded())
    }
    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        state.deallocate()
    }
    @inline(__always) func lockExclusive() { pthread_mutex_lock(mutex) }
    @inline(__always) func unlock() { pthread_mutex_unlock(mutex) }
}

final class NSLockBox: PointerLockBox, @unchecked Sendable {
    static let label = "NSLock"
    let lock = NSLock()
    let state = UnsafeMutablePointer<Guarded>.allocate(capacity: 1)
    init() { state.initialize(to: Guarded()) }
    deinit { state.deallocate() }
    @inline(__always) func lockExclusive() { lock.lock() }
    @inline(__always) func unlock() { lock.unlock() }
}

/// The reader-writer lock: readers share, writers (and increments) are exclusive.
final class RWLockBox: PointerLockBox, @unchecked Sendable {
    static let label = "pthread_rwlock"
    let rw = UnsafeMutablePointer<pthread_rwlock_t>.allocate(capacity: 1)
    let state = UnsafeMutablePointer<Guarded>.allocate(capacity: 1)
    init() {
        pthread_rwlock_init(rw, nil)
        state.initialize(to: Guarded())
    }
    deinit {
        pthread_rwlock_destroy(rw)
        rw.deallocate()
        state.deallocate()
    }
    @inline(__always) func lockExclusive() { pthread_rwlock_wrlock(rw) }
    @inline(__always) func lockShared() { pthread_rwlock_rdlock(rw) }
    @inline(__always) func unlock() { pthread_rwlock_unlock(rw) }
}

// MARK: Workloads

enum Workload: String, CaseIterable {
    case increment = "contended increments"
    case readHeavy = "read-heavy"
    case writeHeavy = "write-heavy"
    case mixed = "mixed 90/10"

    var definition: String {
        switch self {
        case .increment: "every operation takes the lock and adds 1 to one counter"
        case .readHeavy: "every operation reads (sums 8 words) — shared mode on the rwlock"
        case .writeHeavy: "9 in 10 operations write (add 1 to 8 words), 1 in 10 reads"
        case .mixed: "9 in 10 operations read, 1 in 10 write"
        }
    }

    /// Of every 10 operations, how many are reads (the rest are writes); nil for plain increments.
    var readsPerTen: Int? {
        switch self {
        case .increment: nil
        case .readHeavy: 10
        case .writeHeavy: 1
        case .mixed: 9
        }
    }
}

/// Runs operations until `stop`; returns how many it did. Generic so each lock type gets its own
/// specialized loop with the lock calls inlined.
@inline(never)
func hammer<L: BenchLock>(_ lock: L, _ workload: Workload, stop: borrowing Atomic<Bool>) -> (ops: Int, sink: UInt64) {
    var ops = 0
    var sink: UInt64 = 0
    let reads = workload.readsPerTen
    var phase = 0
    while !stop.load(ordering: .relaxed) {
        for _ in 0..<64 {
            if let reads {
                if phase < reads { sink &+= lock.read() } else { lock.write() }
                phase = phase == 9 ? 0 : phase + 1
            } else {
                lock.increment()
            }
        }
        ops += 64
    }
    return (ops, sink)
}

final class CellControl: Sendable {
    let ready = Atomic<Int>(0)
    let go = Atomic<Bool>(false)
    let stop = Atomic<Bool>(false)
    let totalOps = Atomic<Int>(0)
    let sink = Atomic<UInt64>(0)
    let done = DispatchSemaphore(value: 0)
}

/// ns per operation with `threads` threads on one lock for about `milliseconds`.
func runCell<L: BenchLock>(_: L.Type, _ workload: Workload, threads: Int, milliseconds: Int) -> Double {
    let lock = L()
    let control = CellControl()
    for _ in 0..<threads {
        let thread = Thread {
            control.ready.add(1, ordering: .relaxed)
            while !control.go.load(ordering: .acquiring) { sched_yield() }
            let (ops, sink) = hammer(lock, workload, stop: control.stop)
            control.totalOps.add(ops, ordering: .relaxed)
            control.sink.add(sink, ordering: .relaxed)
            control.done.signal()
        }
        thread.stackSize = 256 * 1024
        thread.start()
    }
    while control.ready.load(ordering: .relaxed) < threads { usleep(100) }
    let start = DispatchTime.now().uptimeNanoseconds
    control.go.store(true, ordering: .releasing)
    usleep(UInt32(milliseconds * 1000))
    control.stop.store(true, ordering: .relaxed)
    for _ in 0..<threads { control.done.wait() }
    let elapsed = DispatchTime.now().uptimeNanoseconds - start
    return Double(elapsed) / Double(max(control.totalOps.load(ordering: .relaxed), 1))
}

/// ns per uncontended increment on one thread.
@inline(never)
func uncontended<L: BenchLock>(_: L.Type, iterations: Int) -> Double {
    let lock = L()
    for _ in 0..<10_000 { lock.increment() }
    let start = DispatchTime.now().uptimeNanoseconds
    for _ in 0..<iterations { lock.increment() }
    let elapsed = DispatchTime.now().uptimeNanoseconds - start
    return Double(elapsed) / Double(iterations)
}

// MARK: Command line

struct Options {
    var rounds = 3
    var milliseconds = 150
    var threads = [2, 8, 16, 32]
    var iterations = 5_000_000
    var json = false
}

func parseOptions() -> Options {
    var o = Options()
    var args = CommandLine.arguments.dropFirst()
    func value(_ flag: String) -> String {
        guard let v = args.popFirst() else {
            FileHandle.standardError.write(Data("valet-lockbench: \(flag) needs a value\n".utf8))
            exit(2)
        }
        return v
    }
    while let arg = args.popFirst() {
        switch arg {
        case "--rounds": o.rounds = max(1, Int(value(arg)) ?? 3)
        case "--duration-ms": o.milliseconds = max(1, Int(value(arg)) ?? 150)
        case "--threads": o.threads = value(arg).split(separator: ",").compactMap { Int($0) }.filter { $0 > 0 }
        case "--iterations": o.iterations = max(1000, Int(value(arg)) ?? 5_000_000)
        case "--json": o.json = true
        case "-h", "--help":
            print("""
                usage: valet-lockbench [--rounds R] [--duration-ms MS] [--threads 2,8,16,32] [--iterations N] [--json]
                Lock suite: ns/op for each lock type, workload and thread count (interleaved per cell), plus the
                uncontended cost per acquire and InstrumentedLock's overhead over a bare Mutex.
                """)
            exit(0)
        default:
            FileHandle.standardError.write(Data("valet-lockbench: unknown argument \(arg)\n".utf8))
            exit(2)
        }
    }
    return o
}

let options = parseOptions()
let lockTypes: [any BenchLock.Type] = [InstrumentedBox.self, MutexBox.self, PthreadMutexBox.self, NSLockBox.self,
                                       RWLockBox.self]

func cell(_ type: any BenchLock.Type, _ workload: Workload, _ threads: Int, _ ms: Int) -> Double {
    func open<L: BenchLock>(_ t: L.Type) -> Double { runCell(t, workload, threads: threads, milliseconds: ms) }
    return open(type)
}

func measureUncontended(_ type: any BenchLock.Type, _ iterations: Int) -> Double {
    func open<L: BenchLock>(_ t: L.Type) -> Double { uncontended(t, iterations: iterations) }
    return open(type)
}

var cells: [[String: Any]] = []
for workload in Workload.allCases {
    for threads in options.threads {
        var samples: [String: [Double]] = [:]
        for round in 0..<options.rounds {
            // Rotate the starting lock each round so no lock always runs first (or last) in a cell.
            for i in 0..<lockTypes.count {
                let type = lockTypes[(i + round) % lockTypes.count]
                samples[type.label, default: []].append(cell(type, workload, threads, options.milliseconds))
            }
        }
        for type in lockTypes {
            cells.append(["workload": workload.rawValue, "threads": threads, "lock": type.label,
                          "ns_per_op": samples[type.label] ?? []])
        }
        if !options.json {
            let line = lockTypes.map { t in
                let v = (samples[t.label] ?? []).sorted()
                return "\(t.label) \(String(format: "%.1f", v[v.count / 2]))"
            }.joined(separator: "  ")
            print("\(workload.rawValue) × \(threads): \(line) ns/op")
        }
    }
}

var uncontendedSamples: [String: [Double]] = [:]
var overhead: [Double] = []
for _ in 0..<max(options.rounds, 5) {
    var round: [String: Double] = [:]
    for type in lockTypes {
        round[type.label] = measureUncontended(type, options.iterations)
        uncontendedSamples[type.label, default: []].append(round[type.label]!)
    }
    overhead.append(round[InstrumentedBox.label]! - round[MutexBox.label]!)
}

if options.json {
    let doc: [String: Any] = [
        "locks": lockTypes.map { $0.label },
        "workloads": Workload.allCases.map(\.rawValue),
        "definitions": Dictionary(uniqueKeysWithValues: Workload.allCases.map { ($0.rawValue, $0.definition) }),
        "threads": options.threads,
        "duration_ms": options.milliseconds,
        "cells": cells,
        "uncontended": uncontendedSamples,
        "overhead_ns": overhead,
    ]
    let data = try JSONSerialization.data(withJSONObject: doc, options: [.sortedKeys])
    FileHandle.standardOutput.write(data)
    FileHandle.standardOutput.write(Data("\n".utf8))
} else {
    for type in lockTypes {
        let v = (uncontendedSamples[type.label] ?? []).sorted()
        print("uncontended \(type.label): \(String(format: "%.2f", v[v.count / 2])) ns/op")
    }
    let o = overhead.sorted()
    print("InstrumentedLock overhead over Mutex: \(String(format: "%.2f", o[o.count / 2])) ns")
}
