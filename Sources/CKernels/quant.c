// Activation quantization to 16-bit blocks and the integer-dot matmuls against Q4_0 / Q4_1 / Q8_0 weights.
#include "CKernels.h"
#include "internal.h"
#include <math.h>
#include <string.h>

typedef struct { uint16_t d; uint8_t qs[16]; } blk_q4_0;
typedef struct { uint16_t d, m; uint8_t qs[16]; } blk_q4_1;
typedef struct { uint16_t d; int8_t qs[32]; } blk_q8_0;

#define QMAX 32767.0f

size_t valet_q16_row_bytes(int n) { return ((size_t)(n / VALET_QK) * 72 + 63) & ~(size_t)63; }

// The three parts of a quantized row (see CKernels.h).
static inline int16_t *row_codes(void *row) { return (int16_t *)row; }
static inline float *row_d(void *row, int nb) { return (float *)((uint8_t *)row + (size_t)nb * 64); }
static inline float *row_s(void *row, int nb) { return row_d(row, nb) + nb; }
#define CROW(x, c, bytes) ((void *)((const uint8_t *)(x) + (size_t)(c) * (bytes)))

// MARK: scalar reference

static void quantize_scalar(const float *x, void *row, int n) {
    int nb = n / VALET_QK;
    int16_t *qs = row_codes(row);
    float *ds = row_d(row, nb), *ss = row_s(row, nb);
    for (int b = 0; b < nb; b++) {
        const float *v = x + b * VALET_QK;
        float amax = 0;
        for (int i = 0; i < VALET_QK; i++) amax = fmaxf(amax, fabsf(v[i]));
        float d = amax / QMAX, id = amax > 0 ? QMAX / amax : 0.0f;
        int sum = 0;
        for (int i = 0; i < VALET_QK; i++) {
            int q = (int)nearbyintf(v[i] * id);
            qs[b * VALET_QK + i] = (int16_t)q;
            sum += q;
        }
        ds[b] = d;
        ss[b] = d * (float)sum;
    }
}

// Weight block j of a row against one activation block: d_w*d_x*Σ(code*q) + m_w*s_x, m_w being the value of
// code 0 (Q4_1's min, Q4_0's -8*d).
static float block_dot_scalar(int type, const uint8_t *row, int j, const int16_t *xq, float dx, float sx) {
    int64_t isum = 0;
    switch (type) {
    case VALET_TYPE_Q4_0: {
        const blk_q4_0 *b = (const blk_q4_0 *)row + j;
        for (int i = 0; i < 16; i++) isum += (b->qs[i] & 15) * xq[i] + (b->qs[i] >> 4) * xq[i + 16];
        float dw = valet_h2f(b->d);
        return dw * dx * (float)isum - 8.0f * dw * sx;
    }
    case VALET_TYPE_Q4_1: {
        const blk_q4_1 *b = (const blk_q4_1 *)row + j;
        for (int i = 0; i < 16; i++) isum += (b->qs[i] & 15) * xq[i] + (b->qs[i] >> 4) * xq[i + 16];
        return valet_h2f(b->d) * dx * (float)isum + valet_h2f(b->m) * sx;
    }
    default: {
        const blk_q8_0 *b = (const blk_q8_0 *)row + j;
        for (int i = 0; i < 32; i++) isum += b->qs[i] * xq[i];
        return valet_h2f(b->d) * dx * (float)isum;
    }
    }
}

static int known_type(int type) {
    return type == VALET_TYPE_Q4_0 || type == VALET_TYPE_Q4_1 || type == VALET_TYPE_Q8_0;
}

int valet_matmul_q16_scalar(int type, const void *w, size_t rowBytes, int nb, int r0, int r1,
                            const void *x, size_t xRowBytes, int cols, float *out, int ldo) {
    if (!known_type(type)) return 0;
    for (int r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * rowBytes;
        for (int c = 0; c < cols; c++) {
            void *xc = CROW(x, c, xRowBytes);
            const int16_t *xq = row_codes(xc);
            const float *dx = row_d(xc, nb), *sx = row_s(xc, nb);
            float acc = 0;
            for (int j = 0; j < nb; j++) acc += block_dot_scalar(type, row, j, xq + j * VALET_QK, dx[j], sx[j]);
            out[(size_t)c * ldo + r] = acc;
        }
    }
    return 1;
}

// MARK: AVX2

#define TILE 8       /* columns sharing one pass over a weight row */
#define MAX_NB 1024  /* rows up to 32768 values; longer rows take the scalar path */

#if defined(__x86_64__)
#include <immintrin.h>
#define AVX2 __attribute__((target("avx2,fma,f16c")))
#define INLINE __attribute__((always_inline)) inline

AVX2 static void quantize_avx2(const float *x, void *row, int n) {
    const __m256 signBit = _mm256_set1_ps(-0.0f);
    int nb = n / VALET_QK;
    int16_t *qs = row_codes(row);
    float *ds = row_d(row, nb), *ss = row_s(row, nb);
    for (int b = 0; b < nb; b++) {
        const float *p = x + b * VALET_QK;
        __m256 v0 = _mm256_loadu_ps(p), v1 = _mm256_loadu_ps(p + 8);
        __m256 v2 = _mm256_loadu_ps(p + 16), v3 = _mm256_loadu_ps(p + 24);
        __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(signBit, v0), _mm256_andnot_ps(signBit, v1)),
                                 _mm256_max_ps(_mm256_andnot_ps(signBit, v2), _mm256_andnot_ps(signBit, v3)));
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        float amax = _mm_cvtss_f32(h);
        float d = amax / QMAX, id = amax > 0 ? QMAX / amax : 0.0f;
        __m256 s = _mm256_set1_ps(id);
#define ROUND_MODE (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
        __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v0, s), ROUND_MODE));
        __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v1, s), ROUND_MODE));
        __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v2, s), ROUND_MODE));
        __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v3, s), ROUND_MODE));
        __m256i t = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
        __m128i ts = _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
        ts = _mm_add_epi32(ts, _mm_shuffle_epi32(ts, 0x4E));
        ts = _mm_add_epi32(ts, _mm_shuffle_epi32(ts, 0xB1));
        int sum = _mm_cvtsi128_si32(ts);
        // packs works per 128-bit lane; the 64-bit permute restores element order.
        int16_t *q = qs + b * VALET_QK;
        _mm256_store_si256((__m256i *)q, _mm256_permute4x64_epi64(_mm256_packs_epi32(i0, i1), 0xD8));
        _mm256_store_si256((__m256i *)(q + 16), _mm256_permute4x64_epi64(_mm256_packs_epi32(i2, i3), 0xD8));
        ds[b] = d;
        ss[b] = d * (float)sum;
    }
}

// Weight block j's 32 codes as two vectors of 16-bit lanes (elements 0-15 and 16-31).
AVX2 static INLINE void unpack_block(const int type, const uint8_t *row, int j, __m256i *lo, __m256i *hi) {
    if (type == VALET_TYPE_Q8_0) {
        const blk_q8_0 *b = (const blk_q8_0 *)row + j;
        *lo = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)b->qs));
        *hi = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b->qs + 16)));
        return;
    }
    const uint8_t *qs = type == VALET_TYPE_Q4_1 ? ((const blk_q4_1 *)row + j)->qs : ((const blk_q4_0 *)row + j)->qs;
    // Byte i holds element i (low nibble) and element i + 16 (high nibble). One in-lane byte shuffle of the
    // doubled 16 bytes widens them to 16 bits (a single uop, where a zero-extending move takes two); a mask and a
    // shift then give both halves in element order.
    const __m256i widen = _mm256_setr_epi8(0, -1, 1, -1, 2, -1, 3, -1, 4, -1, 5, -1, 6, -1, 7, -1,
                                           8, -1, 9, -1, 10, -1, 11, -1, 12, -1, 13, -1, 14, -1, 15, -1);
    __m256i v = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qs)), widen);
    *lo = _mm256_and_si256(v, _mm256_set1_epi16(0x0F));
    *hi = _mm256_srli_epi16(v, 4);
}

// 32 bits into lane 0 of a zeroed vector. Written as a load the compiler keeps: it narrows anything else to a 16-bit
// insert into whichever register is free, which is the accumulator, chaining every block's scale to the previous
// block's FMA (twice the time per block).
AVX2 static INLINE __m128 load_halves(const void *p) {
    __m128i v;
    __asm__("vmovd %1, %0" : "=x"(v) : "m"(*(const uint32_t *)p));
    return _mm_cvtph_ps(v);
}

// Block j's weight scale d_w and the value of code 0 (Q4_1's min, Q4_0's -8*d_w; unused for Q8_0).
AVX2 static INLINE float block_scale(const int type, const uint8_t *row, int j, float *m) {
    if (type == VALET_TYPE_Q4_1) {
        // d and m are adjacent halves: one conversion for both.
        __m128 f = load_halves((const blk_q4_1 *)row + j);
        _mm_store_ss(m, _mm_movehdup_ps(f));
        return _mm_cvtss_f32(f);
    }
    // d and the first two code bytes; only lane 0 is used.
    float dw = _mm_cvtss_f32(load_halves(type == VALET_TYPE_Q4_0 ? (const void *)((const blk_q4_0 *)row + j)
                                                                 : (const void *)((const blk_q8_0 *)row + j)));
    if (type == VALET_TYPE_Q4_0) *m = -8.0f * dw;
    return dw;
}

// One weight block's codes against one activation block: 8 lanes of int32 partial sums.
AVX2 static INLINE __m256i block_dot(__m256i lo, __m256i hi, const int16_t *q) {
    return _mm256_add_epi32(_mm256_madd_epi16(lo, _mm256_load_si256((const __m256i *)q)),
                            _mm256_madd_epi16(hi, _mm256_load_si256((const __m256i *)(q + 16))));
}

// The lane sums of up to eight accumulators as one vector (lane c = column c), by a tree of horizontal adds. Each
// column's lanes are added in the same pairs whatever the others hold; reduce1 repeats that order for one column.
AVX2 static INLINE __m256 reduce8(const __m256 *a, const int NC) {
    const __m256 z = _mm256_setzero_ps();
#define A(i) (i < NC ? a[i] : z)
    __m256 q0 = _mm256_hadd_ps(_mm256_hadd_ps(A(0), A(1)), _mm256_hadd_ps(A(2), A(3)));
    __m256 q1 = NC > 4 ? _mm256_hadd_ps(_mm256_hadd_ps(A(4), A(5)), _mm256_hadd_ps(A(6), A(7))) : z;
#undef A
    return _mm256_add_ps(_mm256_permute2f128_ps(q0, q1, 0x20), _mm256_permute2f128_ps(q0, q1, 0x31));
}

AVX2 static INLINE float reduce1(__m256 a) {
    __m256 q = _mm256_hadd_ps(_mm256_hadd_ps(a, a), _mm256_hadd_ps(a, a));
    return _mm_cvtss_f32(_mm_add_ps(_mm256_castps256_ps128(q), _mm256_extractf128_ps(q, 1)));
}

// One weight row against NC columns (NC and type are compile-time constants after inlining):
// Σ_j d_w*d_x*Σ(code*q) in one accumulator per column, blocks in order, plus the offset term Σ_j m_j*s_j (Q4_0 /
// Q4_1) as a chain of FMAs in the same order. Every tile width does the same operations in the same order, so a
// column's result does not depend on which other columns share its step (batched == alone, bit for bit).
// Per column and block the loop costs two madds, an add, a convert and an FMA. For more than one column the
// scales d_w*d_x are multiplied out for the whole row first (`sc`), to be read back as broadcast loads rather than
// built with register shuffles, which compete with the madds; the offset terms of all columns are one vector FMA
// per block there (`sT` holds the tile's s column-major).
AVX2 static INLINE void row_kernel(const int type, const int NC, const uint8_t *row, int nb, const void *x,
                                   size_t xRowBytes, const float *dxT, const float *sT, float *sc, float *out, int ldo) {
    __m256 acc[NC];
    for (int c = 0; c < NC; c++) acc[c] = _mm256_setzero_ps();
    const int16_t *xq[NC];
    for (int c = 0; c < NC; c++) xq[c] = row_codes(CROW(x, c, xRowBytes));
    if (NC == 1) {
        const float *dx = row_d(CROW(x, 0, xRowBytes), nb), *sx = row_s(CROW(x, 0, xRowBytes), nb);
        float off = 0;
        for (int j = 0; j < nb; j++) {
            __m256i lo, hi;
            float m;
            float dw = block_scale(type, row, j, &m);
            if (type != VALET_TYPE_Q8_0) off = fmaf(m, sx[j], off);
            unpack_block(type, row, j, &lo, &hi);
            const int16_t *q = xq[0] + j * VALET_QK;
            acc[0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(block_dot(lo, hi, q)), _mm256_set1_ps(dw * dx[j]), acc[0]);
        }
        out[0] = reduce1(acc[0]) + off;
        return;
    }
    __m256 off = _mm256_setzero_ps();
    for (int j = 0; j < nb; j++) {
        float m;
        float dw = block_scale(type, row, j, &m);
        _mm256_store_ps(sc + 8 * j, _mm256_mul_ps(_mm256_set1_ps(dw), _mm256_load_ps(dxT + 8 * j)));
        if (type != VALET_TYPE_Q8_0) off = _mm256_fmadd_ps(_mm256_set1_ps(m), _mm256_load_ps(sT + 8 * j), off);
    }
    for (int j = 0; j < nb; j++) {
        __m256i lo, hi;
        unpack_block(type, row, j, &lo, &hi);
        for (int c = 0; c < NC; c++) {
            const int16_t *q = xq[c] + j * VALET_QK;
            __m256i p = block_dot(lo, hi, q);
            __m256 s;
            // A load, kept as one: the compiler would otherwise rebuild it from the registers with shuffles.
            __asm__("vbroadcastss %1, %0" : "=x"(s) : "m"(sc[8 * j + c]));
            acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), s, acc[c]);
        }
    }
    float r[8] __attribute__((aligned(32)));
    _mm256_store_ps(r, _mm256_add_ps(reduce8(acc, NC), off));
    for (int c = 0; c < NC; c++) out[(size_t)c * ldo] = r[c];
}

AVX2 static INLINE void matmul_typed(const int type, const void *w, size_t rowBytes, int nb, int r0, int r1,
                                     const void *x, size_t xRowBytes, int cols, float *out, int ldo) {
    float dxT[MAX_NB * 8] __attribute__((aligned(32)));
    float sT[MAX_NB * 8] __attribute__((aligned(32)));
    float sc[MAX_NB * 8] __attribute__((aligned(32)));
    // Rows in chunks that stay in L2 while every column tile passes over them.
    int chunk = (int)(65536 / rowBytes);
    if (chunk < 1) chunk = 1;
    for (int rc = r0; rc < r1; rc += chunk) {
        int re = rc + chunk < r1 ? rc + chunk : r1;
        for (int c0 = 0; c0 < cols; c0 += TILE) {
            int nc = cols - c0 < TILE ? cols - c0 : TILE;
            const void *xc = CROW(x, c0, xRowBytes);
            // The tile's activation scales and sums column-major, for one vector operation per block.
            for (int j = 0; j < nb; j++)
                for (int c = 0; c < 8; c++) {
                    void *xr = CROW(xc, c, xRowBytes);
                    dxT[8 * j + c] = c < nc ? row_d(xr, nb)[j] : 0;
                    sT[8 * j + c] = c < nc ? row_s(xr, nb)[j] : 0;
                }
            float *oc = out + (size_t)c0 * ldo;
            for (int r = rc; r < re; r++) {
                const uint8_t *row = (const uint8_t *)w + (size_t)r * rowBytes;
                // The hardware prefetcher alone leaves the first blocks of each row waiting on memory (measured: a
                // tenth to a fifth of a step); two rows ahead covers the latency at any column count.
                if (r + 2 < r1)
                    for (size_t o = 0; o < rowBytes; o += 64) _mm_prefetch((const char *)row + 2 * rowBytes + o, _MM_HINT_T0);
#define ROW(n) row_kernel(type, n, row, nb, xc, xRowBytes, dxT, sT, sc, oc + r, ldo)
                switch (nc) {
                case 8: ROW(8); break;
                case 7: ROW(7); break;
                case 6: ROW(6); break;
                case 5: ROW(5); break;
                case 4: ROW(4); break;
                case 3: ROW(3); break;
                case 2: ROW(2); break;
                default: ROW(1); break;
                }
#undef ROW
            }
        }
    }
}

// Specialized per type so the per-block branches fold away.
AVX2 static void matmul_q4_1_avx2(const void *w, size_t rb, int nb, int r0, int r1, const void *x, size_t xrb,
                                  int cols, float *out, int ldo) {
    matmul_typed(VALET_TYPE_Q4_1, w, rb, nb, r0, r1, x, xrb, cols, out, ldo);
}
AVX2 static void matmul_q4_0_avx2(const void *w, size_t rb, int nb, int r0, int r1, const void *x, size_t xrb,
                                  int cols, float *out, int ldo) {
    matmul_typed(VALET_TYPE_Q4_0, w, rb, nb, r0, r1, x, xrb, cols, out, ldo);
}
AVX2 static void matmul_q8_0_avx2(const void *w, size_t rb, int nb, int r0, int r1, const void *x, size_t xrb,
                                  int cols, float *out, int ldo) {
    matmul_typed(VALET_TYPE_Q8_0, w, rb, nb, r0, r1, x, xrb, cols, out, ldo);
}
#endif

// MARK: dispatch

void valet_quantize_q16(const float *x, void *row, int n) {
#if defined(__x86_64__)
    if (valet_use_avx2() && ((uintptr_t)row & 63) == 0) { quantize_avx2(x, row, n); return; }
#endif
    quantize_scalar(x, row, n);
}

int valet_matmul_q16(int type, const void *w, size_t rowBytes, int nb, int r0, int r1,
                     const void *x, size_t xRowBytes, int cols, float *out, int ldo) {
#if defined(__x86_64__)
    if (valet_use_avx2() && nb <= MAX_NB && ((uintptr_t)x & 63) == 0 && (xRowBytes & 63) == 0) {
        switch (type) {
        case VALET_TYPE_Q4_1: matmul_q4_1_avx2(w, rowBytes, nb, r0, r1, x, xRowBytes, cols, out, ldo); return 1;
        case VALET_TYPE_Q4_0: matmul_q4_0_avx2(w, rowBytes, nb, r0, r1, x, xRowBytes, cols, out, ldo); return 1;
        case VALET_TYPE_Q8_0: matmul_q8_0_avx2(w, rowBytes, nb, r0, r1, x, xRowBytes, cols, out, ldo); return 1;
        default: return 0;
        }
    }
#endif
    return valet_matmul_q16_scalar(type, w, rowBytes, nb, r0, r1, x, xRowBytes, cols, out, ldo);
}
