// Where one tensor lives in a GGUF file and what shape and type it has.

public struct GGUFTensorInfo: Sendable, Equatable {
    public var name: String
    /// GGML order: dimensions[0] is the row length (contiguous), the rest count rows.
    public var dimensions: [Int]
    public var type: GGMLType
    /// Offset from the start of the file (the data section's offset already added).
    public var fileOffset: Int
    public var byteCount: Int

    public var elementCount: Int { dimensions.reduce(1, *) }
    public var rowLength: Int { dimensions.first ?? 1 }
    public var rowCount: Int { elementCount / max(rowLength, 1) }
}
