// Batched matrix multiplication: one or more weight matrices sharing an input, rows split across the pool.
import CKernels

public enum MatMul {
    /// One matrix's output: `out[c * stride + r]` for input column c and matrix row r.
    public struct Target {
        public let matrix: QuantizedMatrix
        public let out: UnsafeMutablePointer<Float>
        public let stride: Int

        public init(_ matrix: QuantizedMatrix, out: UnsafeMutablePointer<Float>, stride: Int) {
            self.matrix = matrix
            self.out = out
            self.stride = stride
        }
    }

    /// Multiplies every target matrix by the first `columns` rows of `input` in one pool dispatch. The rows of all
    /// targets are shared out across threads, so every weight row is read once per call whatever `columns` is.
    /// Quantized-path matrices need `input` quantized beforehand.
    public static func run(_ targets: [Target], input: Activations, columns: Int, pool: ThreadPool) {
        let total = targets.reduce(0) { $0 + $1.matrix.rows }
        // About eight ranges per thread, on multiples of 4 rows so threads stay off each other's output lines.
        let rowsPerUnit = max(16, (total / (pool.threadCount * 8) + 3) & ~3)
        let units = (total + rowsPerUnit - 1) / rowsPerUnit
        pool.parallelFor(units) { unitRange in
            let lo = unitRange.lowerBound * rowsPerUnit, hi = min(total, unitRange.upperBound * rowsPerUnit)
            var start = 0
            for target in targets {
                let m = target.matrix
                let a = max(lo, start) - start, b = min(hi, start + m.rows) - start
                if a < b { multiply(m, rows: a..<b, input: input, columns: columns, out: target.out, stride: target.stride) }
                start += m.rows
            }
        }
    }

    /// Rows `rows` of `m` times the input columns, on the calling thread.
    public static func multiply(_ m: QuantizedMatrix, rows: Range<Int>, input: Activations, columns: Int,
                                out: UnsafeMutablePointer<Float>, stride: Int)
    {
        precondition(m.columns == input.width, "\(m.name): input width \(input.width) ≠ \(m.columns)")
        let type = Int32(m.type.rawValue)
        switch m.path {
        case .quantized:
            _ = valet_matmul_q16(type, m.base, m.rowBytes, Int32(m.columns / 32), Int32(rows.lowerBound),
                                Int32(rows.upperBound), input.quantized, input.quantizedRowBytes, Int32(columns),
                                out, Int32(stride))
        case .float:
            _ = valet_matmul_float(type, m.base, m.rowBytes, Int32(m.columns), Int32(rows.lowerBound),
                                   Int32(rows.upperBound), input.floats, Int32(input.width), Int32(columns),
                                   out, Int32(stride))
        case .dequantized:
            withUnsafeTemporaryAllocation(of: Float.self, capacity: m.columns) { row in
                for r in rows {
                    m.dequantizeRow(r, into: row.baseAddress!)
                    for c in 0..<columns {
                        out[c * stride + r] = valet_dot_f32(row.baseAddress!, input.floats + c * input.width, Int32(m.columns))
                    }
                }
            }
        }
    }
}
