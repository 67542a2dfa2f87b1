"""Same-hour baseline: llama.cpp (through llama-cpp-python) against `valet bench` on one model, interleaved.

The issue's llama.cpp figures were taken on another day, and this host's speed varies by the hour, so a ratio is
only fair inside one run. Not part of `make bench`: `pip install llama-cpp-python` compiles llama.cpp, about 17
minutes on this 2-core machine (CMAKE_ARGS="-DGGML_NATIVE=ON" for the host's SIMD).

    python3 bench/llamacpp_baseline.py [--model M] [--valet .build/release/valet] [--rounds 3]
"""
import argparse
import re
import statistics
import subprocess
import time

from llama_cpp import Llama


def llama_cpp(model, threads, prompt, gen):
    llm = Llama(model_path=model, n_ctx=prompt + gen + 16, n_batch=prompt, n_ubatch=prompt, n_threads=threads,
                n_threads_batch=threads, verbose=False)
    tokens = [(i * 7919) % 40000 + 100 for i in range(prompt + gen)]
    llm.reset()
    llm.eval(tokens[:prompt])  # warm-up: the first call builds the compute graph and faults the weights in
    llm.reset()
    start = time.perf_counter()
    llm.eval(tokens[:prompt])
    pp = prompt / (time.perf_counter() - start)
    llm.reset()
    llm.eval(tokens[:1])
    start = time.perf_counter()
    for i in range(gen):
        llm.eval([tokens[i + 1]])
    return pp, gen / (time.perf_counter() - start)


def valet(binary, model, threads, prompt, gen):
    run = subprocess.run([binary, "bench", "--model", model, "-t", str(threads), "-p", str(prompt), "-n", str(gen),
                          "-r", "1"], capture_output=True, text=True, check=True)
    out = run.stdout + run.stderr
    pp = float(re.search(rf"pp{prompt}: ([\d.]+)", out).group(1))
    tg = float(re.search(rf"tg{gen}: ([\d.]+)", out).group(1))
    return pp, tg


def spread(values):
    return f"{statistics.median(values):.1f} ({min(values):.1f}–{max(values):.1f})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/SmolLM2-135M-Instruct.Q4_1.gguf")
    parser.add_argument("--valet", default=".build/release/valet")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("-p", type=int, default=512)
    parser.add_argument("-n", type=int, default=128)
    args = parser.parse_args()
    sides = {"llama.cpp": lambda t: llama_cpp(args.model, t, args.p, args.n),
             "valet": lambda t: valet(args.valet, args.model, t, args.p, args.n)}
    print(f"| threads | engine | pp{args.p} tok/s | tg{args.n} tok/s |\n|---|---|---|---|")
    for threads in (1, 2):
        results = {name: [] for name in sides}
        for r in range(args.rounds):
            order = list(sides) if r % 2 == 0 else list(reversed(sides))  # A, B, B, A: drift hits both sides
            for name in order:
                results[name].append(sides[name](threads))
        for name, runs in results.items():
            print(f"| {threads} | {name} | {spread([r[0] for r in runs])} | {spread([r[1] for r in runs])} |",
                  flush=True)


if __name__ == "__main__":
    main()
