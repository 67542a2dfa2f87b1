"""`valet bench` end to end with the default model: the llama-bench style table bench/run.py reads, the paired
batch ratio, the memory bound line, and one-line errors for bad counts."""
import os
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import run as bench_run  # noqa: E402

VALET = os.environ.get("VALET_BIN", ".build/release/valet")
MODEL = os.environ.get("VALET_TEST_MODEL", "models/SmolLM2-135M-Instruct.Q4_1.gguf")


def bench(*args):
    return subprocess.run([VALET, "bench", "--model", MODEL, *args], capture_output=True, text=True, timeout=600)


def test_table_rates_and_paired_ratio():
    out = bench("-t", "1", "-p", "32", "-n", "8", "-r", "3", "--batch", "4")
    assert out.returncode == 0, out.stderr
    parsed = bench_run.parse_valet_bench(out.stdout)
    tests = {row["test"]: row for row in parsed["rows"]}
    assert set(tests) == {"pp32", "tg8", "tg8 ×4 aggregate"}
    for row in tests.values():
        assert 0 < row["min"] <= row["tok_s"] <= row["max"]
    # The paired ratio is the median of per-repetition ratios, so it lies within what the two rows allow.
    ratio = parsed["paired_ratio"]
    assert ratio["batch"] == 4
    single, batched = tests["tg8"], tests["tg8 ×4 aggregate"]
    assert batched["min"] / single["max"] <= ratio["median"] <= batched["max"] / single["min"]
    m = re.search(r"min – max ([\d.]+) – ([\d.]+)", next(l for l in out.stdout.splitlines() if "paired" in l))
    assert float(m.group(1)) <= ratio["median"] <= float(m.group(2))
    assert parsed["peak_rss_mib"] <= parsed["rss_limit_mib"]


def test_single_width_prints_no_ratio():
    out = bench("-t", "1", "-p", "0", "-n", "4", "-r", "1")
    assert out.returncode == 0, out.stderr
    assert "paired" not in out.stdout and "paired_ratio" not in bench_run.parse_valet_bench(out.stdout)


def test_bad_counts_are_one_line_errors():
    out = bench("-r", "0")
    assert out.returncode != 0
    lines = [l for l in out.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and "repetitions" in lines[0]


def test_loop_bench_times_the_loop_with_the_cache_on_and_off():
    out = subprocess.run([VALET, "loop-bench", "-n", "256", "-r", "2", "--cached-blocks", "128"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    m = re.fullmatch(r"loop µs/step: cache on ([\d.]+), off ([\d.]+), difference (-?[\d.]+)\n", out.stdout)
    assert m, out.stdout
    on, off, diff = (float(g) for g in m.groups())
    assert on > 0 and off > 0 and abs(diff - (on - off)) < 0.02


def test_loop_bench_rejects_a_bad_count_in_one_line():
    out = subprocess.run([VALET, "loop-bench", "--tokens", "0"], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "--tokens" in out.stderr and len(out.stderr.strip().splitlines()) <= 3
