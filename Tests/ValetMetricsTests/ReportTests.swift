// JSON shapes for `/v1/metrics` and `/v1/jobs/{id}`: the field names clients read, and explicit nulls.
import Foundation
import Testing
@testable import ValetMetrics

@Suite("JSON reports")
struct ReportTests {
    private func object(_ value: some Encodable) throws -> [String: Any] {
        let data = try JSONEncoder().encode(value)
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test func v1MetricsCarriesThePromisedFields() throws {
        var totals = JobTotals()
        totals.jobs = 3
        totals.byStatus = ["completed": 2, "queue_full": 1]
        let report = V1MetricsReport(
            activeWorkers: 2, waiting: WaitingCounts(low: 1, high: 3), availableCapacity: 40, totalCapacity: 64, batchSize: 2,
            totals: totals, recorderDroppedTotal: 0, windowSeconds: 300,
            history: [QueueSample(time: 1.5, queued: 4, running: 2, usedBlocks: 24, totalBlocks: 64, cachedBlocks: 8)])
        let json = try object(report)
        #expect(json["scheduler_type"] as? String == "parking_lot")
        #expect(json["active_workers"] as? Int == 2)
        #expect(json["queued_tasks"] as? Int == 4)
        #expect(json["available_capacity"] as? Int == 40)
        #expect(json["total_capacity"] as? Int == 64)
        #expect(json["batch_size"] as? Int == 2)
        #expect(json["queued_by_priority"] as? [String: Int] == ["low": 1, "normal": 0, "high": 3, "critical": 0])
        let t = try #require(json["totals"] as? [String: Any])
        #expect(t["jobs"] as? Int == 3)
        #expect(t["by_status"] as? [String: Int] == ["completed": 2, "queue_full": 1])
        let history = try #require(json["history"] as? [[String: Any]])
        #expect(history.first?["used_blocks"] as? Int == 24)
        #expect(history.first?["cached_blocks"] as? Int == 8)
        #expect(V1MetricsReport.window(fromQuery: nil) == 300)
        #expect(V1MetricsReport.window(fromQuery: "60") == 60)
        #expect(V1MetricsReport.window(fromQuery: "-5") == 300)
        #expect(V1MetricsReport.window(fromQuery: "abc") == 300)
    }

    @Test func v1MetricsWithoutARecordSaysSo() throws {
        let report = V1MetricsReport(
            activeWorkers: 1, waiting: WaitingCounts(normal: 2), availableCapacity: 10, totalCapacity: 16, batchSize: 1,
            totals: nil, recorderDroppedTotal: 0, windowSeconds: 60, history: [], recorderEnabled: false)
        let json = try object(report)
        #expect(json["recorder_enabled"] as? Bool == false)
        #expect(json["totals"] is NSNull)
        #expect((json["history"] as? [Any])?.isEmpty == true)
        #expect(json["queued_tasks"] as? Int == 2)
        #expect((json["prefix_cache"] as? [String: Any])?["enabled"] as? Bool == false)
    }

    @Test func v1MetricsCarriesTheCacheFiguresBesideCapacity() throws {
        let report = V1MetricsReport(
            activeWorkers: 0, waiting: WaitingCounts(), availableCapacity: 16, totalCapacity: 16, batchSize: 0,
            totals: nil, recorderDroppedTotal: 0, windowSeconds: 60, history: [],
            prefixCache: PrefixCacheReport(enabled: true, cachedBlocks: 5, queryTokens: 400, hitTokens: 100, evictions: 3))
        let json = try object(report)
        #expect(json["cached_capacity"] as? Int == 5)
        let cache = json["prefix_cache"] as? [String: Any]
        #expect(cache?["enabled"] as? Bool == true && cache?["cached_blocks"] as? Int == 5)
        #expect(cache?["query_tokens"] as? Int == 400 && cache?["hit_tokens"] as? Int == 100)
        #expect(cache?["hit_ratio"] as? Double == 0.25 && cache?["evictions"] as? Int == 3)
    }

    @Test func jobRecordJSONHasEveryColumnAndRoundTrips() throws {
        let record = JobRecord(
            id: "chatcmpl-9", model: "m", priority: "high", status: .queueTimeout, promptTokens: 5,
            completionTokens: 0, costBlocks: 1, enqueuedAt: 10, finishedAt: 15, error: "waited 5 s", kind: "chat")
        let json = try object(record)
        #expect(Set(json.keys) == [
            "id", "model", "priority", "status", "finish_reason", "prompt_tokens", "completion_tokens", "cached_tokens", "cost_blocks",
            "enqueued_at", "admitted_at", "first_token_at", "finished_at", "error", "kind", "constraint",
        ])
        #expect(json["status"] as? String == "queue_timeout")
        #expect(json["kind"] as? String == "chat")
        #expect(json["admitted_at"] is NSNull)
        let decoded = try JSONDecoder().decode(JobRecord.self, from: JSONEncoder().encode(record))
        #expect(decoded == record)
    }
}
