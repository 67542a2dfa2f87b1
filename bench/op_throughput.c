// Issue rate of the 256-bit AVX2 ops the quantized matmul uses, alone and in pairs: 12 independent ops per loop
// iteration (no dependency chains), cycles measured against a chain of dependent integer adds. Backs the README's
// batch-ceiling figures.   cc -O1 bench/op_throughput.c -o /tmp/op_throughput && /tmp/op_throughput
#include <stdio.h>
#include <string.h>
#include <time.h>

#define N 20000000L

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

// Each op writes ymm<n> from ymm14/ymm15 (or memory), so the 12 in a row are independent.
#define MADD(n) "vpmaddwd %%ymm14, %%ymm15, %%ymm" #n "\n"
#define MUBS(n) "vpmaddubsw %%ymm14, %%ymm15, %%ymm" #n "\n"
#define FMA(n) "vfmadd231ps %%ymm14, %%ymm15, %%ymm" #n "\n"
#define CVT(n) "vcvtdq2ps %%ymm15, %%ymm" #n "\n"
#define PADD(n) "vpaddd %%ymm14, %%ymm15, %%ymm" #n "\n"
#define SHUF(n) "vpshufb %%ymm14, %%ymm15, %%ymm" #n "\n"
#define BCAST(n) "vbroadcastss (%0), %%ymm" #n "\n"
#define TWELVE(A, B) A(0) B(1) A(2) B(3) A(4) B(5) A(6) B(7) A(8) B(9) A(10) B(11)
#define CLOBBERS "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11"

static double cycle;
static float slot[8] __attribute__((aligned(32)));

static void report(const char *name, double seconds) {
    double cycles = seconds / N / cycle;
    printf("%-16s %5.2f cycles per 12 ops = %.2f ops/cycle\n", name, cycles, 12 / cycles);
}

#define RUN(name, A, B)                                                                                            \
    do {                                                                                                           \
        double best = 1e9;                                                                                         \
        for (int r = 0; r < 3; r++) {                                                                              \
            double t0 = now();                                                                                     \
            for (long i = 0; i < N; i++) __asm__ volatile(TWELVE(A, B) : : "r"(slot) : CLOBBERS, "memory");         \
            if (now() - t0 < best) best = now() - t0;                                                              \
        }                                                                                                          \
        report(name, best);                                                                                        \
    } while (0)

int main(void) {
    double t0 = now();
    long x = 0;
    for (long i = 0; i < 4 * N; i++)
        __asm__ volatile("add $1, %0\n add $1, %0\n add $1, %0\n add $1, %0\n"
                         "add $1, %0\n add $1, %0\n add $1, %0\n add $1, %0" : "+r"(x));
    cycle = (now() - t0) / (4.0 * N * 8);
    printf("clock ≈ %.2f GHz (dependent integer adds)\n", 1e-9 / cycle);
    __asm__ volatile("vpcmpeqd %%ymm15, %%ymm15, %%ymm15\n vpxor %%ymm14, %%ymm14, %%ymm14" : : : "xmm14", "xmm15");
    RUN("vpmaddwd", MADD, MADD);
    RUN("vpmaddubsw", MUBS, MUBS);
    RUN("vfmadd231ps", FMA, FMA);
    RUN("vcvtdq2ps", CVT, CVT);
    RUN("vpaddd", PADD, PADD);
    RUN("vpshufb", SHUF, SHUF);
    RUN("madd + fma", MADD, FMA);
    RUN("madd + cvt", MADD, CVT);
    RUN("madd + add", MADD, PADD);
    RUN("fma + cvt", FMA, CVT);
    RUN("madd + shuffle", MADD, SHUF);
    RUN("madd + bcast load", MADD, BCAST);
    return 0;
}
