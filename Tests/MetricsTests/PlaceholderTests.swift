import Testing
@testable import ValetMetrics
@Test func placeholder() { #expect(Bool(true)) }
