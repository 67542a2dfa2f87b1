import Testing
@testable import Service
@Test func servicePlaceholder() { #expect(Bool(true)) }
