import Testing
@testable import Inference
@Test func inferencePlaceholder() { #expect(Bool(true)) }
