# The structured-outputs bench part's workload: a pydantic model of about 20 fields (nested model, enums, optional
# fields, lists, a date), one valid answer in the grammar's member order, and a streaming client for paired rounds.
from __future__ import annotations

import datetime as _dt
import enum
import http.client
import json
import threading
import time
import uuid
from typing import Optional

import pydantic


class Priority(str, enum.Enum):
    low = "low"
    normal = "normal"
    high = "high"


class Status(str, enum.Enum):
    open = "open"
    closed = "closed"
    pending = "pending"


class Address(pydantic.BaseModel):
    street: str
    city: str
    postcode: str = pydantic.Field(pattern=r"^\d{5}$")
    country: str = pydantic.Field(max_length=40)


class Ticket(pydantic.BaseModel):
    id: uuid.UUID
    title: str = pydantic.Field(max_length=80)
    summary: str
    priority: Priority
    status: Status
    created: _dt.date
    due: Optional[_dt.date] = None
    reporter: str
    assignee: Optional[str] = None
    tags: list[str]
    watchers: list[str] = pydantic.Field(max_length=5)
    estimate_hours: float = pydantic.Field(ge=0, le=1000)
    story_points: int = pydantic.Field(ge=1, le=13)
    billable: bool
    customer: Address
    related_ids: list[int]
    severity: Optional[int] = pydantic.Field(default=None, ge=1, le=5)
    component: str
    resolution: Optional[str] = None
    reopened: bool = False


SCHEMA = Ticket.model_json_schema()

PROMPT = ("File a support ticket as JSON for this report: the invoice page of customer Ada Lovelace in Berlin "
          "shows the wrong total since yesterday; it should be fixed this week.")

# Free text for the unconstrained rows: a request that keeps the model writing.
FREE_PROMPT = "Write a long, detailed story about a lighthouse keeper and a storm."


def _ordered(value, schema: dict, defs: dict):
    """`value` with object members in the order the grammar writes them: required ones as `required` lists them,
    then the optional ones by name."""
    if "$ref" in schema:
        schema = defs[schema["$ref"].split("/")[-1]]
    if isinstance(value, dict):
        props = schema.get("properties", {})
        required = schema.get("required", [])
        keys = [k for k in required if k in value] + sorted(k for k in value if k not in required)
        return {k: _ordered(value[k], _pick(props.get(k, {}), value[k]), defs) for k in keys}
    if isinstance(value, list):
        item = schema.get("items", {})
        return [_ordered(v, item, defs) for v in value]
    return value


def _pick(schema: dict, value) -> dict:
    for alt in schema.get("anyOf", []):
        if (value is None) == (alt.get("type") == "null"):
            return alt
    return schema


def answer_text() -> str:
    """One valid answer, compact, in the grammar's member order."""
    t = Ticket(
        id=uuid.UUID("3f2b8c1e-9a4d-4e6f-8b7a-1c2d3e4f5a6b"), title="Invoice page shows the wrong total",
        summary="Since yesterday the invoice page of customer Ada Lovelace shows a total that does not match the items.",
        priority=Priority.high, status=Status.open, created=_dt.date(2026, 12, 1), due=_dt.date(2026, 12, 4),
        reporter="support desk", assignee="billing team", tags=["billing", "invoice", "regression"],
        watchers=["ada", "grace"], estimate_hours=3.5, story_points=3, billable=False,
        customer=Address(street="Unter den Linden 1", city="Berlin", postcode="10117", country="Germany"),
        related_ids=[1042, 1043], severity=2, component="billing", resolution=None, reopened=False)
    doc = json.loads(t.model_dump_json())
    return json.dumps(_ordered(doc, SCHEMA, SCHEMA.get("$defs", {})), separators=(",", ":"), ensure_ascii=False)


def stream_chat(host: str, port: int, body: dict, timeout: float = 300.0) -> dict:
    """One streamed chat completion: status, completion tokens, and each content event's arrival time."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    out = {"status": 0, "tokens": 0, "times": [], "text": "", "finish": None, "start": time.perf_counter()}
    try:
        conn.request("POST", "/v1/chat/completions", body=json.dumps({**body, "stream": True,
                                                                       "stream_options": {"include_usage": True}}),
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        out["status"] = resp.status
        if resp.status != 200:
            out["error"] = resp.read(2000).decode(errors="replace")
            return out
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
            event = json.loads(data)
            if event.get("usage"):
                out["tokens"] = event["usage"]["completion_tokens"]
            for c in event.get("choices") or []:
                if c.get("finish_reason"):
                    out["finish"] = c["finish_reason"]
                content = (c.get("delta") or {}).get("content")
                if content:
                    out["times"].append(time.perf_counter())
                    out["text"] += content
    finally:
        conn.close()
        out["end"] = time.perf_counter()
    return out


def decode_rate(r: dict) -> float | None:
    """Tokens per second after the first one: the decode steps alone, without the prompt's prefill."""
    t = r["times"]
    if r["status"] != 200 or len(t) < 2 or r["tokens"] < 2:
        return None
    return (r["tokens"] - 1) / (t[-1] - t[0])


def closed_loop(host: str, port: int, bodies: list[dict], seconds: float, warmup: float) -> dict:
    """One client per body, each sending its body again as soon as an answer ends; counts the content events that
    arrive inside the window after `warmup` (every event is one token here) across all clients."""
    start = time.perf_counter()
    window = (start + warmup, start + warmup + seconds)
    counts = [0] * len(bodies)
    errors: list[str] = []
    finished = [0] * len(bodies)

    def client(i: int) -> None:
        while time.perf_counter() < window[1]:
            r = stream_chat(host, port, bodies[i])
            if r["status"] != 200:
                errors.append(r.get("error", "")[:200])
                return
            counts[i] += sum(1 for t in r["times"] if window[0] <= t < window[1])
            finished[i] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"tok_s": sum(counts) / seconds, "per_client": counts, "requests": finished, "errors": errors[:3]}
