// A zero-copy view of one weight matrix in the mapped GGUF file: its type, shape and row layout.
import CKernels

public struct QuantizedMatrix: @unchecked Sendable {
    // The pointer aims into a read-only mapping owned by the GGUFFile, which outlives every model using it.
    public let name: String
    public let type: GGMLType
    public let base: UnsafeRawPointer
    /// Output rows (GGML dimension 1).
    public let rows: Int
    /// Values per row (GGML dimension 0): the input length.
    public let columns: Int
    public let rowBytes: Int

    /// How a matmul against this matrix consumes its input.
    public enum Path: Sendable {
        /// Integer dot against activations quantized to 16-bit blocks (Q4_0, Q4_1, Q8_0).
        case quantized
        /// Float dot against float activations (F32, F16).
        case float
        /// Each row dequantized to floats once per call, then float dots (BF16 and the K-quants): correct, not fast.
        case dequantized
    }

    public let path: Path

    public init(file: GGUFFile, name: String, rows expectedRows: Int? = nil, columns expectedColumns: Int? = nil)
        throws(GGUFError)
    {
        let info = try file.tensor(name)
        guard info.dimensions.count <= 2 else {
            throw GGUFError(file: file.path, tensor: name, "expected a matrix, found \(info.dimensions.count) dimensions")
        }
        let columns = info.rowLength, rows = info.rowCount
        if let expectedRows, let expectedColumns, rows != expectedRows || columns != expectedColumns {
            throw GGUFError(file: file.path, tensor: name,
                "shape \(columns)×\(rows) does not match the model's \(expectedColumns)×\(expectedRows)")
        }
        switch info.type {
        case .q4_0, .q4_1, .q8_0: path = .quantized
        case .f32, .f16: path = .float
        case .bf16, .q4_K, .q5_K, .q6_K: path = .dequantized
        default: throw GGUFError(file: file.path, tensor: name, "tensor type \(info.type) not supported")
        }
        self.name = name
        self.type = info.type
        self.base = file.data(info)
        self.rows = rows
        self.columns = columns
        self.rowBytes = info.type.rowBytes(columns)
    }

    /// A view of raw tensor bytes (tests); the caller keeps `base` alive.
    init(name: String, type: GGMLType, base: UnsafeRawPointer, rows: Int, columns: Int) {
        self.name = name
        self.type = type
        self.base = base
        self.rows = rows
        self.columns = columns
        self.rowBytes = type.rowBytes(columns)
        switch type {
        case .q4_0, .q4_1, .q8_0: path = .quantized
        case .f32, .f16: path = .float
        default: path = .dequantized
        }
    }

    /// Row `row` as floats (an embedding lookup).
    public func dequantizeRow(_ row: Int, into out: UnsafeMutablePointer<Float>) {
        Dequantize.row(type, base + row * rowBytes, out, count: columns)
    }
}
