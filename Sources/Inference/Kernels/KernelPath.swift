// Which CPU kernel path the quantized matmuls take on this machine, so operators can see a silent scalar fallback.
import CKernels

public enum KernelPath {
    /// `avx2` (AVX2 + FMA + F16C found) or `scalar` (another CPU, or VALET_FORCE_SCALAR=1).
    public static var name: String { valet_use_avx2() != 0 ? "avx2" : "scalar" }
}
