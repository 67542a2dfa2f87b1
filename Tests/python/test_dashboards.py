# Proves the shipped observability files against real tools: promtool on the Prometheus config and alert rules,
# and every Grafana panel's PromQL run through a real Prometheus that scraped a real `valet serve` under load.
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "grafana" / "dashboards" / "valet.json"
PROM_DIR = ROOT / "docker" / "prometheus"
PROVISIONING = ROOT / "grafana" / "provisioning"

PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool missing: `make deps` installs Debian's prometheus")

# What an operator must be able to see on the dashboard: panel title -> metric names its queries must use.
REQUIRED_PANELS = {
    "Replicas and HPA": ["up", "kube_horizontalpodautoscaler_status_desired_replicas"],
    "Autoscaling signals per pod": ["valet_requests_running", "valet_scheduler_max_batch"],
    "Request rate by status": ["valet_http_requests_total"],
    "Time to first token": ["valet_time_to_first_token_seconds_bucket"],
    "Inter-token latency": ["valet_inter_token_latency_seconds_bucket"],
    "End-to-end request latency": ["valet_e2e_request_latency_seconds_bucket"],
    "Prompt and generation tokens/s": ["valet_prompt_tokens_total", "valet_generation_tokens_total"],
    "Requests running and waiting by priority": ["valet_requests_running", "valet_requests_waiting"],
    "Capacity blocks: in use vs total": ["valet_capacity_blocks_in_use", "valet_capacity_blocks",
                                         "valet_prefix_cache_blocks"],
    "KV cache usage ratio": ["valet_kv_cache_usage_ratio"],
    "Admission rejections by reason": ["valet_admission_rejections_total"],
    "Queue time": ["valet_request_queue_time_seconds_bucket"],
    "Batch size": ["valet_batch_size"],
    "Lock wait p99 by lock": ["valet_lock_wait_seconds_bucket"],
    "Recorder drops": ["valet_recorder_dropped_total"],
    "Recorder health": ["valet_recorder_degraded", "valet_recorder_write_errors_total"],
    "Recorder database size": ["valet_recorder_database_bytes"],
    "Process CPU": ["process_cpu_seconds_total"],
    "Process memory": ["process_resident_memory_bytes"],
    "Prefix cache hit ratio": ["valet_prefix_cache_hits_total", "valet_prefix_cache_queries_total"],
    "Prefix cache blocks and evictions": ["valet_prefix_cache_blocks", "valet_prefix_cache_evictions_total"],
}
QUANTILE_PANELS = ["Time to first token", "Inter-token latency", "End-to-end request latency", "Queue time"]


def load_dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


def data_panels(dash):
    """Every panel that draws data, rows' children included (a collapsed row keeps its panels inside)."""
    out = []
    for p in dash["panels"]:
        if p["type"] == "row":
            out.extend(p.get("panels", []))
        else:
            out.append(p)
    return out


def panel_queries(dash):
    for p in data_panels(dash):
        for t in p.get("targets", []):
            yield p, t


def grafana_regex_escape(value):
    # What Grafana's Prometheus datasource writes for a multi-value / include-All variable in a regex matcher:
    # regex metacharacters get a backslash, itself escaped for the PromQL string literal.
    value = value.replace("\\", "\\\\\\\\")
    return re.sub(r"([$^*{}\[\]'+?.()|])", r"\\\\\1", value)


def substitute(expr, instance, model, rate_interval):
    """Replace the dashboard variables the way Grafana does for a single selected value."""
    values = {
        "__rate_interval": rate_interval,
        "instance": grafana_regex_escape(instance),
        "model": grafana_regex_escape(model),
        # The single job; namespace and pod left at All (allValue .*), which also matches their absence outside
        # Kubernetes, as here.
        "job": "valet",
        "namespace": ".*",
        "pod": ".*",
    }
    for name, value in values.items():
        expr = expr.replace("${%s}" % name, value).replace("[[%s]]" % name, value).replace("$" + name, value)
    assert "$" not in expr, f"unknown variable left in query: {expr}"
    return expr


# ----------------------------------------------------------------------------------------------------------------
# Static checks: promtool and the dashboard's structure.

@needs_promtool
def test_promtool_check_config():
    r = subprocess.run([PROMTOOL, "check", "config", str(PROM_DIR / "prometheus.yml")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


@needs_promtool
def test_promtool_check_rules():
    r = subprocess.run([PROMTOOL, "check", "rules", str(PROM_DIR / "alerts.yml")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS: 10 rules found" in r.stdout


@needs_promtool
def test_alert_rules_fire_on_their_unit_tests():
    r = subprocess.run([PROMTOOL, "test", "rules", str(PROM_DIR / "alerts_test.yml")],
                       capture_output=True, text=True, timeout=60, cwd=PROM_DIR)
    assert r.returncode == 0, r.stdout + r.stderr


def test_alerts_cover_what_operators_page_on():
    import yaml
    with open(PROM_DIR / "alerts.yml") as f:
        rules = [r for g in yaml.safe_load(f)["groups"] for r in g["rules"]]
    names = {r["alert"] for r in rules}
    assert names == {"ValetInstanceDown", "ValetAllInstancesDown", "ValetQueueBacklog", "ValetHighTimeToFirstToken",
                     "ValetHighRejectionRate", "ValetQueueTimeouts", "ValetEngineErrors", "ValetRecorderDropping",
                     "ValetRecorderDegraded", "ValetScalarKernels"}
    runbooks = (PROM_DIR.parent / "README.md").read_text()
    for r in rules:
        assert r["labels"]["severity"] in ("warning", "critical"), r["alert"]
        assert r["annotations"]["summary"] and r["annotations"]["description"], r["alert"]
        # Static summaries group alerts by name; the numbers go in the description.
        assert "{{" not in r["annotations"]["summary"], r["alert"]
        anchor = r["annotations"]["runbook_url"].split("#")[1]
        assert f'<a id="{anchor}"></a>' in runbooks, f"no runbook for {r['alert']} in docker/README.md"
        # Per-pod alerts keep namespace and pod, so they route to whoever owns the pod.
        if r["alert"] not in ("ValetInstanceDown", "ValetAllInstancesDown"):
            assert "by (namespace, pod" in r["expr"], r["alert"]
    # The single-pod alert is not the page: the whole job down is.
    severity = {r["alert"]: r["labels"]["severity"] for r in rules}
    assert severity["ValetInstanceDown"] == "warning" and severity["ValetAllInstancesDown"] == "critical"
    assert all("for" in r for r in rules)


@needs_promtool
def test_autoscaler_arithmetic_holds_a_steady_load():
    r = subprocess.run([PROMTOOL, "test", "rules", str(PROM_DIR / "hpa_rules_test.yml")],
                       capture_output=True, text=True, timeout=60, cwd=PROM_DIR)
    assert r.returncode == 0, r.stdout + r.stderr


def test_dashboard_structure():
    dash = load_dashboard()
    assert dash["schemaVersion"] >= 39
    assert dash["uid"] and dash["title"]
    assert dash.get("id") is None, "an exported dashboard must not carry a database id"
    assert [i["name"] for i in dash["__inputs"]] == ["DS_PROMETHEUS"]
    assert dash["__inputs"][0]["pluginId"] == "prometheus"

    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    for name in ("instance", "model", "namespace", "pod"):
        assert variables[name]["type"] == "query"
        assert variables[name]["datasource"]["uid"] == "${DS_PROMETHEUS}"
        assert variables[name]["includeAll"] and variables[name]["multi"]
        # All must match a missing label too (compose has no namespace or pod).
        assert variables[name]["allValue"] == ".*"
    assert variables["job"]["type"] == "query" and variables["job"]["current"]["value"] == "valet"

    ids = [p["id"] for p in dash["panels"]] + [c["id"] for p in dash["panels"] for c in p.get("panels", [])]
    assert len(ids) == len(set(ids)), "panel ids must be unique"

    occupied = set()
    for p in dash["panels"]:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, p["title"]
        cells = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & occupied, f"panel {p['title']!r} overlaps another"
        occupied |= cells

    for p in data_panels(dash):
        assert p["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, p["title"]
        unit = p["fieldConfig"]["defaults"].get("unit")
        assert unit, f"panel {p['title']!r} has no unit"
        assert p["targets"], f"panel {p['title']!r} has no query"
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${DS_PROMETHEUS}", p["title"]
            if "kube_" in t["expr"]:
                # kube-state-metrics series name the HPA's namespace, not a Valet target.
                assert 'namespace=~"$namespace"' in t["expr"], p["title"]
                continue
            assert 'job=~"$job", namespace=~"$namespace", pod=~"$pod", instance=~"$instance"' in t["expr"], \
                f"panel {p['title']!r} ignores the job, namespace, pod or instance variable"
            legend = t.get("legendFormat", "")
            assert "{{instance}}" not in legend or "{{pod}}" in legend, f"panel {p['title']!r}: pod names in legends"


def test_dashboard_has_every_panel_the_issue_lists():
    dash = load_dashboard()
    by_title = {p["title"]: " ".join(t["expr"] for t in p["targets"]) for p in data_panels(dash)}
    for title, metrics in REQUIRED_PANELS.items():
        assert title in by_title, f"missing panel {title!r}"
        for m in metrics:
            assert re.search(r"\b%s\b" % re.escape(m), by_title[title]), f"panel {title!r} does not query {m}"
    for title in QUANTILE_PANELS:
        for q in ("0.5", "0.95", "0.99"):
            assert f"histogram_quantile({q}," in by_title[title], f"panel {title!r} lacks the {q} quantile"
    assert "sum by (handler, status)" in by_title["Request rate by status"]
    assert "by (priority)" in by_title["Requests running and waiting by priority"]
    assert "by (reason)" in by_title["Admission rejections by reason"]
    assert "by (le, lock)" in by_title["Lock wait p99 by lock"]


@needs_promtool
def test_every_panel_query_parses(tmp_path):
    # promtool parses rule expressions with Prometheus's own parser: a syntax check that needs no server.
    dash = load_dashboard()
    rules = []
    for i, (p, t) in enumerate(panel_queries(dash)):
        expr = substitute(t["expr"], "127.0.0.1:8080", "SmolLM2-135M-Instruct.Q4_1", "1m")
        rules.append({"record": f"panel_{p['id']}_{t['refId']}", "expr": expr})
    import yaml
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    r = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_grafana_provisioning_points_at_prometheus_and_the_dashboard():
    import yaml
    ds = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    (source,) = ds["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090" and source["isDefault"]
    prom = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text())
    # $__rate_interval is only right when Grafana knows the real scrape interval.
    assert source["jsonData"]["timeInterval"] == prom["global"]["scrape_interval"]

    dashboards = yaml.safe_load((PROVISIONING / "dashboards" / "valet.yml").read_text())
    (provider,) = dashboards["providers"]
    assert provider["type"] == "file"
    compose = yaml.safe_load((ROOT / "docker" / "compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"../grafana/dashboards:{provider['options']['path']}:ro" in mounts
    assert "../grafana/provisioning:/etc/grafana/provisioning:ro" in mounts


# ----------------------------------------------------------------------------------------------------------------
# End to end: a real valet under a short real load, a real Prometheus scraping it every second, every panel queried.

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def valet_binary():
    path = os.environ.get("VALET_BIN") or str(ROOT / ".build" / "release" / "valet")
    return path if os.access(path, os.X_OK) else None


def test_model():
    path = os.environ.get("VALET_TEST_MODEL") or str(ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf")
    return path if os.path.exists(path) else None


test_model.__test__ = False  # a helper, not a test


def stop(proc, grace=20):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def tail(path, n=40):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def wait_until(what, check, timeout, interval=0.25):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (requests.RequestException, ValueError, KeyError) as e:
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last})")


class Stack:
    """A valet and a Prometheus on loopback, both children of this test, both stopped whatever happens."""

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.valet = self.prometheus = self.ksm = None

    def start_valet(self, binary, model):
        self.valet_port = free_port()
        self.valet_url = f"http://127.0.0.1:{self.valet_port}"
        self.valet_log = self.workdir / "valet.log"
        cmd = [binary, "serve", "--model", model, "--host", "127.0.0.1", "--port", str(self.valet_port),
               "--db", str(self.workdir / "valet.sqlite")]
        env = {k: v for k, v in os.environ.items() if not k.startswith("VALET_")}
        self.valet = subprocess.Popen(cmd, stdout=open(self.valet_log, "w"), stderr=subprocess.STDOUT, env=env)

        def healthy():
            if self.valet.poll() is not None:
                raise AssertionError(f"valet exited with {self.valet.returncode}:\n{tail(self.valet_log)}")
            return requests.get(self.valet_url + "/health", timeout=2).status_code == 200
        wait_until("valet /health", healthy, timeout=120)

    # kube-state-metrics runs only in a cluster. A stand-in serves the two HPA series the dashboard reads, named and
    # labelled as kube-state-metrics v2 exports them (namespace, horizontalpodautoscaler), for the HPA in
    # docker/k8s/hpa.yaml, so the replicas panel's queries are checked against data too.
    KSM_SERIES = {"kube_horizontalpodautoscaler_status_current_replicas": 2,
                  "kube_horizontalpodautoscaler_status_desired_replicas": 3}

    def start_kube_state_metrics(self):
        body = "".join(f"# TYPE {name} gauge\n{name}{{namespace=\"valet\",horizontalpodautoscaler=\"valet\"}} {value}\n"
                       for name, value in self.KSM_SERIES.items()).encode()

        class Exposition(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.ksm = ThreadingHTTPServer(("127.0.0.1", 0), Exposition)
        self.ksm_port = self.ksm.server_address[1]
        threading.Thread(target=self.ksm.serve_forever, daemon=True).start()

    def start_prometheus(self):
        self.prom_port = free_port()
        self.prom_url = f"http://127.0.0.1:{self.prom_port}"
        config = self.workdir / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: valet\n    static_configs:\n"
            f"      - targets: ['127.0.0.1:{self.valet_port}']\n"
            # As kube-prometheus scrapes it: honor_labels keeps the exported namespace over the target's.
            "  - job_name: kube-state-metrics\n    honor_labels: true\n    static_configs:\n"
            f"      - targets: ['127.0.0.1:{self.ksm_port}']\n")
        self.prom_log = self.workdir / "prometheus.log"
        self.prometheus = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={self.workdir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.prom_port}", "--storage.tsdb.retention.time=1h"],
            stdout=open(self.prom_log, "w"), stderr=subprocess.STDOUT)
        self.prom_started = time.time()

        def ready():
            if self.prometheus.poll() is not None:
                raise AssertionError(f"prometheus exited:\n{tail(self.prom_log)}")
            return requests.get(self.prom_url + "/-/ready", timeout=2).status_code == 200
        wait_until("prometheus ready", ready, timeout=60)
        # The load must start after a first scrape: a counter whose first sample already holds the whole load
        # has no increase for rate() to see.
        wait_until("a first successful scrape of valet",
                   lambda: self.instant('up{job="valet"} == 1'), timeout=30)

    def query(self, path, **params):
        r = requests.get(self.prom_url + path, params=params, timeout=30)
        body = r.json()
        if body.get("status") != "success":
            raise AssertionError(f"{body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def instant(self, expr):
        return self.query("/api/v1/query", query=expr)["result"]

    def close(self):
        if self.ksm is not None:
            self.ksm.shutdown()
        stop(self.prometheus)
        stop(self.valet)


@pytest.fixture
def stack(tmp_path):
    if PROMETHEUS is None:
        pytest.skip("prometheus missing: `make deps` installs Debian's prometheus")
    binary, model = valet_binary(), test_model()
    if binary is None:
        pytest.skip("no valet binary: set VALET_BIN or run `make build`")
    if model is None:
        pytest.skip("no model: set VALET_TEST_MODEL or run `make model`")
    s = Stack(tmp_path)
    try:
        s.start_valet(binary, model)
        s.start_kube_state_metrics()
        s.start_prometheus()
        yield s
    finally:
        s.close()


# Sent with every load request, so later requests hit the prefix cache and its hit ratio has something to show.
SYSTEM = ("You are the help desk of a small bicycle shop. Answer in a few words, be friendly, and never make up "
          "opening hours, prices or stock; say you will check instead.")


def chat(url, model, content, stream=False, **extra):
    body = {"model": model, "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": content}],
            "max_tokens": 8, "temperature": 0, "stream": stream, **extra}
    r = requests.post(url + "/v1/chat/completions", json=body, timeout=120, stream=stream)
    if stream and r.status_code == 200:
        events = [line for line in r.iter_lines() if line.startswith(b"data: ")]
        assert events[-1] == b"data: [DONE]", events[-3:]
    return r


def run_load(url):
    """A short real load: plain and streamed completions, two at once so batches form, and two failures."""
    (served,) = requests.get(url + "/v1/models", timeout=10).json()["data"]
    model = served["id"]
    ok = []

    def client(i):
        extra = {"stream_options": {"include_usage": True}} if i % 2 == 1 else {}
        r = chat(url, model, f"Name a colour. ({i})", stream=(i % 2 == 1), **extra)
        ok.append((r.status_code, "" if r.status_code == 200 else r.text[:200]))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(6)]
    for pair in range(0, len(threads), 2):
        for t in threads[pair:pair + 2]:
            t.start()
        for t in threads[pair:pair + 2]:
            t.join()
    assert [code for code, _ in ok] == [200] * 6, ok
    # An unknown model is refused before the scheduler (404); a job larger than the whole context is refused
    # at admission (400). Both must leave the server serving.
    assert chat(url, "no-such-model", "hi").status_code == 404
    assert chat(url, model, "hi", max_tokens=10_000_000).status_code == 400
    # The other API routes, so the request-rate panel has them to show.
    for path, body in NEW_ROUTE_REQUESTS:
        r = requests.post(url + path, json={"model": model, **body}, timeout=120)
        assert r.status_code == 200, (path, r.text[:200])
    assert requests.get(url + "/health", timeout=5).status_code == 200


NEW_ROUTE_REQUESTS = [
    ("/v1/embeddings", {"input": "a colour"}),
    ("/v1/responses", {"input": "Name a colour.", "max_output_tokens": 4, "temperature": 0}),
    ("/tokenize", {"content": "a colour"}),
    ("/detokenize", {"tokens": [28, 29]}),
    ("/apply-template", {"messages": [{"role": "user", "content": "hi"}]}),
]


def test_request_rate_panel_keeps_every_api_route():
    # The panel leaves scrapes and health checks out by a handler regex; no API route may fall under it.
    dash = load_dashboard()
    (expr,) = [t["expr"] for p in data_panels(dash) if p["title"] == "Request rate by status" for t in p["targets"]]
    pattern = re.search(r'handler!~"(.*?)"', expr).group(1)
    routes = ["/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/embeddings", "/tokenize",
              "/v1/tokenize", "/detokenize", "/apply-template", "/v1/models"]
    assert [r for r in routes if re.fullmatch(pattern, r)] == []
    assert re.fullmatch(pattern, "/metrics") and re.fullmatch(pattern, "/health")


def test_every_panel_query_returns_data(stack):
    dash = load_dashboard()
    load_started = time.time()
    run_load(stack.valet_url)
    load_ended = time.time()

    # Wait for scrapes after the load, so the final counter values and gauges are stored. Two would do for
    # series that existed before the load; a label set first created by the load (a status code, say) has its
    # first sample only then, and a graph's 4 s windows at 1 s steps need two more scrapes to see two of its samples.
    def scrapes_after_load():
        (series,) = stack.query("/api/v1/query", query='up{job="valet"}[30s]')["result"]
        return sum(1 for ts, _ in series["values"] if float(ts) > load_ended) >= 4
    wait_until("four scrapes after the load", scrapes_after_load, timeout=30)

    # The dashboard's variables, resolved as Grafana resolves them (label_values queries).
    models = stack.query("/api/v1/label/model/values", **{"match[]": "valet_model_info"})
    assert len(models) == 1, models
    model = models[0]
    instances = stack.query("/api/v1/label/instance/values",
                            **{"match[]": f'valet_model_info{{model=~"{grafana_regex_escape(model)}"}}'})
    assert instances == [f"127.0.0.1:{stack.valet_port}"], instances
    instance = instances[0]

    # Instant queries (what a stat panel or the right edge of a graph shows): the rate window must reach back
    # over the whole load, and hold at least two samples, so it spans from before the first scrape to now.
    wide = f"{math.ceil(time.time() - stack.prom_started) + 5}s"
    # Range queries (what a graph draws): Grafana's $__rate_interval at a 1 s scrape interval is
    # max(4 x scrape interval, step + scrape interval) = 4 s with a 1 s step.
    start, end = load_started - 2, time.time()

    failures = []
    ran = 0
    for p, t in panel_queries(dash):
        label = f"panel {p['id']} {p['title']!r} query {t['refId']}"
        for mode in ("instant", "range"):
            if mode == "instant":
                expr = substitute(t["expr"], instance, model, wide)
                try:
                    data = stack.query("/api/v1/query", query=expr)
                except AssertionError as e:
                    failures.append(f"{label} ({mode}): error {e}\n    {expr}")
                    continue
                values = [s["value"][1] for s in data["result"]]
            else:
                expr = substitute(t["expr"], instance, model, "4s")
                try:
                    data = stack.query("/api/v1/query_range", query=expr, start=start, end=end, step=1)
                except AssertionError as e:
                    failures.append(f"{label} ({mode}): error {e}\n    {expr}")
                    continue
                values = [v for s in data["result"] for _, v in s["values"]]
            ran += 1
            if not data["result"]:
                failures.append(f"{label} ({mode}): no series\n    {expr}")
            elif all(v in ("NaN", "+Inf", "-Inf") for v in values):
                failures.append(f"{label} ({mode}): only NaN/Inf, i.e. no data in the window\n    {expr}")
    assert not failures, f"{len(failures)} of {ran} panel queries failed:\n" + "\n".join(failures)
    assert ran == 2 * sum(1 for _ in panel_queries(dash))

    # The HPA's own view, next to the replicas Prometheus sees up.
    (hpa,) = [p for p in data_panels(dash) if p["title"] == "Replicas and HPA"]
    shown = {t["legendFormat"]: stack.query("/api/v1/query", query=substitute(t["expr"], instance, model, wide))["result"]
             for t in hpa["targets"]}
    assert [float(r["value"][1]) for r in shown["HPA current"]] == [2.0]
    assert [float(r["value"][1]) for r in shown["HPA desired"]] == [3.0]
    assert [float(r["value"][1]) for r in shown["replicas up"]] == [1.0]

    # The request-rate panel draws one series per route: the new ones included.
    (rate,) = [t["expr"] for p in data_panels(dash) if p["title"] == "Request rate by status" for t in p["targets"]]
    shown = {r["metric"].get("handler") for r in stack.query("/api/v1/query", query=substitute(rate, instance, model, wide))["result"]}
    assert {path for path, _ in NEW_ROUTE_REQUESTS} <= shown, shown
