# Bounded loopback load generator for `make bench`: N client threads stream OpenAI requests over raw
# http.client and time every SSE event (TTFT, inter-token gaps, end-to-end), per request and in aggregate.
"""Load generator used by bench/run.py (parts 2, 3 and 5); also runnable on its own:

    python3 bench/loadgen.py --url http://127.0.0.1:8080 --concurrency 4 --duration 10
"""
from __future__ import annotations

import argparse
import http.client
import json
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

# Words for synthetic prompts: plain English so the tokenizer sees ~1 token per word, varied per request so
# no prompt is ever repeated exactly (nothing may profit from a prompt cache the other side of an A/B lacks).
_WORDS = (
    "the river ran past the old mill where a miller kept bread and grain for the village each winter "
    "while children played near the bridge and traders came with salt cloth iron tools from the coast "
    "a story of weather ships harvest markets roads letters songs and lamps that burned through the night"
).split()

# The fixed prompt-length mix (approximate prompt words, share of requests). Same mix for every part so
# figures are comparable across runs.
PROMPT_MIX: tuple[tuple[int, int], ...] = ((16, 4), (64, 4), (256, 2))


def make_prompt(index: int, words: int) -> str:
    # A per-request prefix makes every prompt unique; the body is a deterministic walk through _WORDS.
    n = len(_WORDS)
    body = [_WORDS[(index * 7 + i * 13) % n] for i in range(words)]
    return f"Story {index}: " + " ".join(body)


def prompt_lengths_for(count: int, mix: tuple[tuple[int, int], ...] = PROMPT_MIX) -> list[int]:
    """Prompt word counts for request 0..count-1, cycling through the mix in a fixed interleaving."""
    cycle: list[int] = []
    for words, share in mix:
        cycle.extend([words] * share)
    # Interleave long and short so a short run still sees the whole mix.
    order = sorted(range(len(cycle)), key=lambda i: (i * 7) % len(cycle))
    cycle = [cycle[i] for i in order]
    return [cycle[i % len(cycle)] for i in range(count)]


@dataclass
class RequestResult:
    index: int
    priority: str | None
    status: int  # HTTP status, or 0 for a connection error
    start: float
    end: float
    ttft: float | None = None  # seconds from send to the first content token
    token_times: list[float] = field(default_factory=list)  # absolute arrival time of each content event
    completion_tokens: int = 0  # from usage when the server sends it, else the number of content events
    prompt_tokens: int = 0
    error: str | None = None
    aborted: bool = False  # cut off after the window's drain; not a server error

    @property
    def e2e(self) -> float:
        return self.end - self.start

    def gaps(self) -> list[float]:
        t = self.token_times
        return [b - a for a, b in zip(t, t[1:])]


@dataclass
class LoadConfig:
    url: str
    concurrency: int
    duration: float  # seconds of measurement; workers stop starting requests after it
    warmup: float = 0.0  # seconds before the measurement window; requests started in it are discarded
    max_tokens: int = 64
    endpoint: str = "/v1/completions"
    model: str | None = None
    stream: bool = True
    priority_every: int = 0  # every k-th request (k > 0) is sent with high priority
    fixed_prompt_words: int | None = None  # overrides prompt_mix
    prompt_mix: tuple[tuple[int, int], ...] = PROMPT_MIX  # (words, share) pairs
    timeout: float = 120.0
    max_requests: int = 100_000  # hard bound on requests per run
    warmup_requests: int | None = None  # completions before the window opens (default: concurrency)
    max_warmup: float = 60.0  # the window opens after this many seconds even if the load never settled
    drain: float = 5.0  # seconds in-flight requests may finish after the window before they are cut off
    same_prompt: str | None = None  # every request sends exactly this prompt (a workload a prefix cache can serve)


@dataclass
class LoadResult:
    config: LoadConfig
    window_start: float
    window_end: float
    requests: list[RequestResult]
    warmup_seconds: float = 0.0

    def summary(self) -> dict:
        return summarize(self)


class _Counter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = 0

    def take(self) -> int:
        with self._lock:
            n = self._next
            self._next += 1
            return n


def _body(cfg: LoadConfig, index: int, words: int, priority: str | None) -> dict:
    prompt = cfg.same_prompt if cfg.same_prompt is not None else make_prompt(index, words)
    body: dict = {"max_tokens": cfg.max_tokens, "temperature": 0, "stream": cfg.stream}
    if cfg.model:
        body["model"] = cfg.model
    if cfg.stream:
        body["stream_options"] = {"include_usage": True}
    if "chat" in cfg.endpoint:
        body["messages"] = [{"role": "user", "content": prompt}]
    else:
        body["prompt"] = prompt
    if priority:
        body["priority"] = priority
    return body


def _content_of(event: dict) -> str | None:
    choices = event.get("choices") or []
    if not choices:
        return None
    c = choices[0]
    if "text" in c:
        return c.get("text") or None
    delta = c.get("delta") or {}
    return delta.get("content") or None


def one_request(host: str, port: int, cfg: LoadConfig, index: int, words: int, priority: str | None,
                run: "_Run | None" = None) -> RequestResult:
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream" if cfg.stream else "application/json"}
    if priority:
        headers["X-Valet-Priority"] = priority
    payload = json.dumps(_body(cfg, index, words, priority)).encode()
    start = time.perf_counter()
    res = RequestResult(index=index, priority=priority, status=0, start=start, end=start)
    conn = http.client.HTTPConnection(host, port, timeout=cfg.timeout)
    try:
        conn.connect()
        if run is not None and not run.register(index, conn):
            res.aborted = True
            return res
        conn.request("POST", cfg.endpoint, body=payload, headers=headers)
        resp = conn.getresponse()
        res.status = resp.status
        if resp.status != 200:
            res.error = resp.read(2000).decode(errors="replace")
        elif not cfg.stream:
            doc = json.loads(resp.read())
            now = time.perf_counter()
            usage = doc.get("usage") or {}
            res.completion_tokens = int(usage.get("completion_tokens", 0))
            res.prompt_tokens = int(usage.get("prompt_tokens", 0))
            res.ttft = now - start
            res.token_times = [now]
        else:
            events = 0
            usage_tokens = None
            # SSE: events are separated by blank lines; every line we need starts with "data: ".
            while True:
                line = resp.readline()
                if not line:
                    break
                line = line.strip()
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    break
                now = time.perf_counter()
                try:
                    event = json.loads(data)
                except ValueError:
                    continue
                if "error" in event:
                    res.error = json.dumps(event["error"])[:500]
                    continue
                if event.get("usage"):
                    usage_tokens = int(event["usage"].get("completion_tokens", 0))
                    res.prompt_tokens = int(event["usage"].get("prompt_tokens", 0))
                if _content_of(event) is not None:
                    events += 1
                    if res.ttft is None:
                        res.ttft = now - start
                    res.token_times.append(now)
            res.completion_tokens = usage_tokens if usage_tokens is not None else events
    except (OSError, http.client.HTTPException, ValueError) as exc:
        res.error = f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()
        res.end = time.perf_counter()
        if run is not None:
            if run.aborting:
                res.aborted = True
            run.finish(index)
    return res


def served_model(host: str, port: int) -> str | None:
    """The first model id /v1/models lists (OpenAI requests must name one)."""
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("GET", "/v1/models")
        resp = conn.getresponse()
        data = json.loads(resp.read()).get("data") or [] if resp.status == 200 else []
        return data[0].get("id") if data else None
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        conn.close()


class _Run:
    """State shared by the client threads: the window (opened by the main thread once the load is steady) and
    the open connections, so requests still running after the drain can be cut off like a client that leaves."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stop_at = float("inf")
        self.completed = 0
        self.open: dict[int, http.client.HTTPConnection] = {}
        self.aborting = False

    def register(self, index: int, conn: http.client.HTTPConnection) -> bool:
        with self.lock:
            if self.aborting:
                return False
            self.open[index] = conn
            return True

    def finish(self, index: int) -> None:
        with self.lock:
            self.open.pop(index, None)
            self.completed += 1

    def abort_all(self) -> int:
        with self.lock:
            self.aborting = True
            conns = list(self.open.values())
        for c in conns:
            try:
                if c.sock is not None:
                    c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return len(conns)


def run_load(cfg: LoadConfig) -> LoadResult:
    """Runs cfg.concurrency closed-loop clients and returns every request. The measurement window opens after
    `warmup` seconds and once `warmup_requests` requests (default: one per client) have completed, so it sees
    the steady state rather than the first wave of prefills; it lasts `duration` seconds. Requests still running
    `drain` seconds after it closes are cut off (and left out of the latency figures)."""
    u = urllib.parse.urlparse(cfg.url)
    host, port = u.hostname or "127.0.0.1", u.port or 80
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("the load generator only talks to loopback")
    if not cfg.model:
        cfg.model = served_model(host, port)
    counter = _Counter()
    results: list[RequestResult] = []
    results_lock = threading.Lock()
    lengths = prompt_lengths_for(cfg.max_requests, cfg.prompt_mix)
    run = _Run()

    def worker() -> None:
        while time.perf_counter() < run.stop_at:
            i = counter.take()
            if i >= cfg.max_requests:
                return
            words = cfg.fixed_prompt_words or lengths[i]
            prio = "high" if cfg.priority_every and i % cfg.priority_every == 0 else (
                "normal" if cfg.priority_every else None)
            r = one_request(host, port, cfg, i, words, prio, run)
            with results_lock:
                results.append(r)
            if r.aborted:
                return

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(cfg.concurrency)]
    for t in threads:
        t.start()
    warm_n = cfg.concurrency if cfg.warmup_requests is None else cfg.warmup_requests
    while True:
        now = time.perf_counter()
        if now - t0 >= cfg.warmup and (run.completed >= warm_n or now - t0 >= cfg.max_warmup):
            break
        time.sleep(0.02)
    window_start = time.perf_counter()
    stop_at = window_start + cfg.duration
    run.stop_at = stop_at
    deadline = stop_at + cfg.drain
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.perf_counter()))
    if any(t.is_alive() for t in threads):
        run.abort_all()
        for t in threads:
            t.join(timeout=cfg.timeout)
    return LoadResult(cfg, window_start, stop_at, sorted(results, key=lambda r: r.index),
                      warmup_seconds=window_start - t0)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    # Linear interpolation between closest ranks (numpy's default), without needing numpy here.
    pos = (len(v) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def summarize(result: LoadResult, priority: str | None = None) -> dict:
    """Aggregate figures over the measurement window. Tokens are counted by arrival time inside the window
    (so requests straddling its edges count only what arrived in it); latencies come from requests that
    started inside the window."""
    ws, we = result.window_start, result.window_end
    reqs = [r for r in result.requests if priority is None or r.priority == priority]
    in_window = [r for r in reqs if ws <= r.start < we and not r.aborted]
    aborted = sum(1 for r in reqs if ws <= r.start < we and r.aborted)
    statuses: dict[str, int] = {}
    for r in in_window:
        key = str(r.status) if r.status else "conn_error"
        statuses[key] = statuses.get(key, 0) + 1
    tokens = 0.0
    for r in reqs:
        if not r.token_times:
            continue
        # Scale content events to tokens when usage says they differ (held-back UTF-8 merges events).
        scale = r.completion_tokens / len(r.token_times) if r.completion_tokens else 1.0
        tokens += scale * sum(1 for t in r.token_times if ws <= t < we)
    ok = [r for r in in_window if r.status == 200 and r.error is None]
    ttfts = [r.ttft for r in ok if r.ttft is not None]
    gaps = [g for r in ok for g in r.gaps()]
    e2e = [r.e2e for r in ok]
    span = we - ws
    completed_in_window = sum(1 for r in reqs if r.status == 200 and not r.aborted and ws <= r.end < we)
    return {
        "requests": len(in_window),
        "ok": len(ok),
        "status_counts": dict(sorted(statuses.items())),
        "gen_tok_s": tokens / span if span > 0 else None,
        "req_s": completed_in_window / span if span > 0 else None,
        "ttft_p50_ms": _ms(percentile(ttfts, 50)),
        "ttft_p95_ms": _ms(percentile(ttfts, 95)),
        "itl_p50_ms": _ms(percentile(gaps, 50)),
        "itl_p95_ms": _ms(percentile(gaps, 95)),
        "e2e_p95_ms": _ms(percentile(e2e, 95)),
        "mean_completion_tokens": (sum(r.completion_tokens for r in ok) / len(ok)) if ok else None,
        "mean_prompt_tokens": (sum(r.prompt_tokens for r in ok) / len(ok)) if ok else None,
        "errors": [r.error for r in in_window if r.error][:3],
        "aborted_after_window": aborted,
        "warmup_s": result.warmup_seconds,
        # Every content token any request of the run received, warm-up and drain included (for per-token costs).
        "run_tokens": sum(r.completion_tokens if r.completion_tokens else len(r.token_times) for r in reqs),
    }


def _ms(v: float | None) -> float | None:
    return None if v is None else v * 1000.0


# ---------------------------------------------------------------------------------------------- chat sessions

@dataclass
class ChatConfig:
    """U users, each holding a T-turn conversation that starts from one shared system prompt; every turn re-sends
    the whole history, streamed, as OpenAI clients do."""
    url: str
    users: int = 8
    turns: int = 6
    system_words: int = 280  # about 300 tokens with the chat template
    max_tokens: int = 32
    model: str | None = None
    nonce: str = ""  # leads the system prompt: a new nonce is a cold cache, so paired rounds start equal
    timeout: float = 180.0
    extra_body: dict = field(default_factory=dict)  # e.g. {"cache_prompt": False} for llama-server


@dataclass
class TurnResult:
    user: int
    turn: int
    status: int
    start: float
    end: float
    ttft: float | None = None
    completion_tokens: int = 0
    prompt_tokens: int = 0
    cached_tokens: int | None = None
    text: str = ""
    error: str | None = None


def system_prompt(words: int, nonce: str) -> str:
    n = len(_WORDS)
    body = " ".join(_WORDS[(i * 11) % n] for i in range(words))
    return f"[{nonce}] You are the archivist of a river village. Stay in character and use this record: {body}"


def _chat_turn(host: str, port: int, cfg: ChatConfig, messages: list[dict], user: int, turn: int) -> TurnResult:
    body = {"messages": messages, "max_tokens": cfg.max_tokens, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}, **cfg.extra_body}
    if cfg.model:
        body["model"] = cfg.model
    start = time.perf_counter()
    res = TurnResult(user=user, turn=turn, status=0, start=start, end=start)
    conn = http.client.HTTPConnection(host, port, timeout=cfg.timeout)
    pieces: list[str] = []
    events = 0
    try:
        conn.request("POST", "/v1/chat/completions", body=json.dumps(body).encode(),
                     headers={"Content-Type": "application/json", "Accept": "text/event-stream"})
        resp = conn.getresponse()
        res.status = resp.status
        if resp.status != 200:
            res.error = resp.read(2000).decode(errors="replace")
            return res
        while True:
            line = resp.readline()
            if not line:
                break
            line = line.strip()
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                break
            try:
                event = json.loads(data)
            except ValueError:
                continue
            if "error" in event:
                res.error = json.dumps(event["error"])[:500]
                continue
            usage = event.get("usage")
            if usage:
                res.completion_tokens = int(usage.get("completion_tokens", 0))
                res.prompt_tokens = int(usage.get("prompt_tokens", 0))
                details = usage.get("prompt_tokens_details") or {}
                if "cached_tokens" in details:
                    res.cached_tokens = int(details["cached_tokens"])
            content = _content_of(event)
            if content is not None:
                events += 1
                pieces.append(content)
                if res.ttft is None:
                    res.ttft = time.perf_counter() - start
        if not res.completion_tokens:
            res.completion_tokens = events
        res.text = "".join(pieces)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        res.error = f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()
        res.end = time.perf_counter()
    return res


def run_chat_sessions(cfg: ChatConfig) -> dict:
    """Runs every user's conversation at once (one thread each, turns back to back) and summarizes over the run's
    wall time: TTFT quantiles, requests/s and generated tokens/s, and the share of prompt tokens served cached."""
    u = urllib.parse.urlparse(cfg.url)
    host, port = u.hostname or "127.0.0.1", u.port or 80
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("the load generator only talks to loopback")
    if not cfg.model:
        cfg.model = served_model(host, port)
    system = system_prompt(cfg.system_words, cfg.nonce)
    results: list[TurnResult] = []
    lock = threading.Lock()

    def user(i: int) -> None:
        messages = [{"role": "system", "content": system}]
        for t in range(cfg.turns):
            word = _WORDS[(i * 5 + t * 3) % len(_WORDS)]
            messages.append({"role": "user", "content": f"User {i}, turn {t}: what does the record say about {word}?"})
            r = _chat_turn(host, port, cfg, messages, i, t)
            with lock:
                results.append(r)
            if r.status != 200 or r.error:
                return
            messages.append({"role": "assistant", "content": r.text})

    t0 = time.perf_counter()
    threads = [threading.Thread(target=user, args=(i,), daemon=True) for i in range(cfg.users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=cfg.timeout * cfg.turns)
    wall = time.perf_counter() - t0
    ok = [r for r in results if r.status == 200 and r.error is None]
    ttfts = [r.ttft for r in ok if r.ttft is not None]
    prompt = sum(r.prompt_tokens for r in ok)
    cached = [r.cached_tokens for r in ok if r.cached_tokens is not None]
    return {
        "users": cfg.users, "turns": cfg.turns, "max_tokens": cfg.max_tokens,
        "requests": len(results), "ok": len(ok),
        "ttft_p50_ms": _ms(percentile(ttfts, 50)),
        "ttft_p95_ms": _ms(percentile(ttfts, 95)),
        "req_s": len(ok) / wall if wall > 0 else None,
        "gen_tok_s": sum(r.completion_tokens for r in ok) / wall if wall > 0 else None,
        "wall_s": wall,
        "mean_prompt_tokens": prompt / len(ok) if ok else None,
        "cached_share": (sum(cached) / prompt) if cached and prompt else None,
        "errors": [r.error for r in results if r.error][:3],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--warmup", type=float, default=1)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--endpoint", default="/v1/completions")
    ap.add_argument("--no-stream", action="store_true")
    ap.add_argument("--priority-every", type=int, default=0)
    ap.add_argument("--prompt-words", type=int, default=None)
    ap.add_argument("--model", default=None, help="model id to send (default: the first /v1/models lists)")
    ap.add_argument("--chat-sessions", metavar="UxT", default=None,
                    help="run the chat-session workload instead: U users x T turns, e.g. 8x6")
    a = ap.parse_args()
    if a.chat_sessions:
        users, turns = (int(x) for x in a.chat_sessions.lower().split("x"))
        cfg = ChatConfig(url=a.url, users=users, turns=turns, max_tokens=a.max_tokens, model=a.model,
                         nonce=str(time.time_ns()))
        print(json.dumps(run_chat_sessions(cfg), indent=2))
        return
    cfg = LoadConfig(url=a.url, concurrency=a.concurrency, duration=a.duration, warmup=a.warmup,
                     max_tokens=a.max_tokens, endpoint=a.endpoint, stream=not a.no_stream,
                     priority_every=a.priority_every, fixed_prompt_words=a.prompt_words, model=a.model)
    res = run_load(cfg)
    out = {"all": summarize(res)}
    if a.priority_every:
        out["high"] = summarize(res, "high")
        out["normal"] = summarize(res, "normal")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
