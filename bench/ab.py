#!/usr/bin/env python3
# Two `valet` binaries side by side in one run (say, main before and after a change): engine pp/tg/batch and served
# tok/s at 1 and 16 clients, the two sides interleaved round by round, each figure quoted as a paired ratio.
"""Paired A/B of two valet builds.

    python3 bench/ab.py --base /path/to/old/valet [--candidate .build/release/valet] [--rounds 3]

Each round runs, for the base and then the candidate (the order alternates by round), `valet bench -t 2 -p 512
-n 128 --batch 8` and a served load at concurrency 1 and 16 (the server part's mixed prompts, 64 tokens). The ratio
of each round is candidate ÷ base measured minutes apart at most; the report gives their median and range, since
the host's own drift over a run is larger than the differences worth finding.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
spec = importlib.util.spec_from_file_location("valet_bench_run", HERE / "run.py")
run = importlib.util.module_from_spec(spec)
sys.path.insert(0, str(HERE))
spec.loader.exec_module(run)


def side(args: argparse.Namespace, valet: str) -> "run.Ctx":
    ns = argparse.Namespace(quick=False, valet=valet, model=args.model)
    return run.Ctx(ns)


def engine(ctx: "run.Ctx") -> dict:
    cmd = [ctx.valet, "bench", "--model", ctx.model, "--threads", "2", "-p", "512", "-n", "128", "--batch", "8",
           "--repetitions", "2"]
    rc, out, err, _ = run.run_measured(cmd, timeout=900)
    if rc != 0:
        raise RuntimeError(f"valet bench failed ({rc}): {(err or out)[-800:]}")
    parsed = run.parse_valet_bench(out)
    got: dict = {}
    for row in parsed["rows"]:
        if row["batch"] == 1:
            got[row["kind"]] = row["tok_s"]
        elif row["batch"] == 8:
            got["tg_x8"] = row["tok_s"]
    if parsed.get("paired_ratio"):
        got["batch_ratio"] = parsed["paired_ratio"]["median"]
    return got


def served(ctx: "run.Ctx", duration: float) -> dict:
    srv = ctx.server([])
    got = {}
    for c in (1, 16):
        s = run.load(ctx, srv, concurrency=c, duration=duration, warmup=1.0, warmup_requests=run._warm(c, None))
        got[f"c{c}_tok_s"] = s["all"]["gen_tok_s"]
        got[f"c{c}_ttft_p50_ms"] = s["all"]["ttft_p50_ms"]
    ctx.stop_servers()
    return got


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="the valet binary to compare against")
    ap.add_argument("--candidate", default=str(run.ROOT / ".build" / "release" / "valet"))
    ap.add_argument("--model", default=os.environ.get("VALET_TEST_MODEL",
                                                      str(run.ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf")))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds of served load per level")
    args = ap.parse_args()
    sides = {"base": side(args, args.base), "candidate": side(args, args.candidate)}
    rounds: list[dict] = []
    for r in range(args.rounds):
        order = ["base", "candidate"] if r % 2 == 0 else ["candidate", "base"]
        figures = {}
        for name in order:
            figures[name] = {**engine(sides[name]), **served(sides[name], args.duration)}
            run.log(f"round {r + 1} {name}: " + ", ".join(f"{k} {v:.1f}" for k, v in figures[name].items() if v))
        rounds.append(figures)
    m = run.machine_info()
    print(f"\n{m['cpu_model']}, {m['cores']} cores, SIMD {' '.join(m['simd'])}; {args.rounds} rounds")
    print("| figure | base (median) | candidate (median) | candidate ÷ base, paired: median (min–max) |")
    print("|---|---|---|---|")
    for key in rounds[0]["base"]:
        b = [x["base"].get(key) for x in rounds]
        c = [x["candidate"].get(key) for x in rounds]
        ratios = [ci / bi for bi, ci in zip(b, c) if bi and ci]
        if not ratios:
            continue
        print(f"| {key} | {statistics.median([v for v in b if v]):.1f} | {statistics.median([v for v in c if v]):.1f} | "
              f"{statistics.median(ratios):.3f} ({min(ratios):.3f}–{max(ratios):.3f}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
