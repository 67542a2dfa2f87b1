# What an operator meets in the first week, against a real `valet serve`: the access log (JSON, one line per
# request, never keys or prompts), CORS, an optional `model`, liveness, the default max_tokens capped by the KV
# cache, the shutdown (readiness off, waiting jobs 503 at once, a second signal ending the grace) and the command
# line's one-line errors that leave no files behind.
import json
import os
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

import requests

from conftest import API_KEY, ValetProcess, _binary, _model, free_port, sse_events, wait_for
from test_openai_api import NO_EOS


def _json_lines(server):
    return [json.loads(line) for line in server.log_text().splitlines() if line.strip()]


def _requests_logged(server, path):
    return [e for e in _json_lines(server) if e.get("msg") == "request" and e.get("path") == path]


def test_json_access_log_cors_optional_model_and_liveness():
    server = ValetProcess("--log-format", "json", "--log-level", "debug", "--allowed-origins", "https://app.example",
                          "--shutdown-grace", "1")
    secret_prompt = "quokka-sentinel-9931"
    try:
        # No `model`: the one served model answers.
        body = {"messages": [{"role": "user", "content": secret_prompt}], "max_tokens": 4, "temperature": 0}
        r = requests.post(server.base + "/v1/chat/completions", json=body, headers=server.headers(), timeout=120)
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["model"] == server.model_name
        streamed = requests.post(server.base + "/v1/completions", headers=server.headers(), timeout=120,
                                 json={"prompt": "Hello", "max_tokens": 3, "stream": True})
        assert streamed.status_code == 200 and streamed.text.rstrip().endswith("data: [DONE]")
        stream_id = streamed.headers["X-Request-Id"]
        assert requests.post(server.base + "/v1/chat/completions", json=body, timeout=60).status_code == 401
        wrong = dict(body, model="no-such-model")
        assert requests.post(server.base + "/v1/chat/completions", json=wrong, headers=server.headers(),
                             timeout=60).status_code == 404
        resp = requests.post(server.base + "/v1/responses", headers=server.headers(), timeout=120,
                             json={"input": "Say hi.", "max_output_tokens": 4, "temperature": 0})
        assert resp.status_code == 200, resp.text
        emb = requests.post(server.base + "/v1/embeddings", headers=server.headers(), timeout=120,
                            json={"input": ["first input", "a second, longer input"]})
        assert emb.status_code == 200, emb.text
        assert requests.get(server.base + "/health/live", timeout=10).json() == {"status": "alive"}

        # A line is written when its response has been handed to the socket, which on a busy host can be after
        # later requests' lines: wait for all three by status, not by count.
        chat_lines = wait_for("the 200, 401 and 404 chat access-log lines", lambda: {"200", "401", "404"} <= {
            e["status"] for e in _requests_logged(server, "/v1/chat/completions")}
            and _requests_logged(server, "/v1/chat/completions"))
        ok = [e for e in chat_lines if e["status"] == "200"]
        assert len(ok) == 1
        line = ok[0]
        assert line["level"] == "info" and line["method"] == "POST" and line["route"] == "/v1/chat/completions"
        assert line["id"] == answer["id"]
        assert int(line["prompt_tokens"]) == answer["usage"]["prompt_tokens"]
        assert int(line["completion_tokens"]) == answer["usage"]["completion_tokens"]
        assert float(line["queue_ms"]) >= 0 and float(line["total_ms"]) >= float(line["queue_ms"])
        # Client errors are visible, at warning.
        assert sorted((e["status"], e["level"]) for e in chat_lines if e["status"] != "200") == \
            [("401", "warning"), ("404", "warning")]
        completion = wait_for("the completion's line", lambda: _requests_logged(server, "/v1/completions"))[0]
        assert completion["id"] == stream_id and int(completion["completion_tokens"]) == 3
        responded = wait_for("the response's line", lambda: _requests_logged(server, "/v1/responses"))[0]
        assert responded["id"] == resp.json()["id"] and responded["status"] == "200"
        assert int(responded["prompt_tokens"]) == resp.json()["usage"]["input_tokens"]
        assert int(responded["completion_tokens"]) == resp.json()["usage"]["output_tokens"] > 0
        assert 0 <= float(responded["queue_ms"]) <= float(responded["total_ms"])
        embedded = wait_for("the embeddings line", lambda: _requests_logged(server, "/v1/embeddings"))[0]
        assert embedded["id"] == emb.headers["X-Request-Id"] and embedded["status"] == "200"
        assert int(embedded["prompt_tokens"]) == emb.json()["usage"]["prompt_tokens"] > 0
        assert embedded["completion_tokens"] == "0"
        assert 0 <= float(embedded["queue_ms"]) <= float(embedded["total_ms"])
        # Every line, the startup line and the rest, is one JSON object with a time and a level.
        entries = _json_lines(server)
        assert all({"ts", "level", "msg"} <= set(e) for e in entries)
        assert any("kernels " in e["msg"] and server.model_name in e["msg"] for e in entries)
        text = server.log_text()
        assert API_KEY not in text and secret_prompt not in text

        # CORS: a preflight needs no key; answers to an allowed origin carry the header, errors included.
        origin = {"Origin": "https://app.example"}
        pre = requests.options(server.base + "/v1/chat/completions", timeout=10, headers={
            **origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"})
        assert pre.status_code == 204
        assert pre.headers["Access-Control-Allow-Origin"] == "https://app.example"
        assert "POST" in pre.headers["Access-Control-Allow-Methods"]
        assert pre.headers["Access-Control-Allow-Headers"] == "authorization, content-type"
        models = requests.get(server.base + "/v1/models", headers=server.headers(**origin), timeout=10)
        assert models.status_code == 200 and models.headers["Access-Control-Allow-Origin"] == "https://app.example"
        denied = requests.get(server.base + "/v1/models", headers=origin, timeout=10)
        assert denied.status_code == 401 and denied.headers["Access-Control-Allow-Origin"] == "https://app.example"
        other = requests.get(server.base + "/v1/models", headers=server.headers(Origin="https://evil.example"), timeout=10)
        assert other.status_code == 200 and "Access-Control-Allow-Origin" not in other.headers
        metrics = requests.get(server.base + "/metrics", timeout=10).text
        info = [line for line in metrics.splitlines() if line.startswith("valet_build_info{")]
        assert len(info) == 1 and ('kernel="avx2"' in info[0] or 'kernel="scalar"' in info[0])
        assert "valet_scheduler_max_batch 8" in metrics and "valet_scheduler_max_queue 64" in metrics
    finally:
        server.stop()


def test_default_max_tokens_is_capped_by_the_kv_cache():
    # 256 tokens of cache against a 2048 context and a default of 512: without the cap every request that sends no
    # max_tokens would be refused as too large for the cache.
    server = ValetProcess("--kv-cache-tokens", "256", "--ctx-size", "2048", "--default-max-tokens", "512",
                          "--shutdown-grace", "1")
    try:
        body = {"model": server.model_name, "temperature": 0, "logit_bias": NO_EOS,
                "messages": [{"role": "user", "content": "Tell me a long story."}]}
        r = requests.post(server.base + "/v1/chat/completions", json=body, headers=server.headers(), timeout=300)
        assert r.status_code == 200, r.text
        usage = r.json()["usage"]
        # EOS is banned, so it runs to the cap: exactly the cache's capacity.
        assert usage["prompt_tokens"] + usage["completion_tokens"] == 256
        assert r.json()["choices"][0]["finish_reason"] == "length"
        # A number the client did send is still refused when it cannot fit.
        r = requests.post(server.base + "/v1/chat/completions", json=dict(body, max_tokens=512),
                          headers=server.headers(), timeout=60)
        assert r.status_code == 400 and r.json()["error"]["param"] == "max_tokens"
    finally:
        server.stop()


def test_shutdown_fails_readiness_ends_waiting_jobs_at_once_and_a_second_signal_ends_the_grace():
    probe = free_port()
    # One decode row, so a second request waits in the lot; a grace far longer than this test may take.
    server = ValetProcess("--max-batch", "1", "--ctx-size", "2048", "--shutdown-grace", "600", "--queue-timeout", "600",
                          "--probe-port", str(probe))
    try:
        long = {"model": server.model_name, "messages": [{"role": "user", "content": "Tell me a very long story."}],
                "max_tokens": 1900, "temperature": 0, "logit_bias": NO_EOS, "stream": True}
        running = requests.post(server.base + "/v1/chat/completions", json=long, headers=server.headers(),
                                stream=True, timeout=300)
        assert running.status_code == 200
        lines = running.iter_lines()
        assert next(lines).startswith(b"data: ")
        waiting = {}

        def wait_in_lot():
            short = dict(long, stream=False, max_tokens=4)
            waiting["r"] = requests.post(server.base + "/v1/chat/completions", json=short, headers=server.headers(),
                                         timeout=300)

        import threading
        t = threading.Thread(target=wait_in_lot)
        t.start()
        wait_for("the second request to park", lambda: requests.get(
            server.base + "/v1/metrics", headers=server.headers(), timeout=10).json()["queued_tasks"] == 1)

        server.proc.send_signal(signal.SIGTERM)
        # The parked request gets its answer during the 600 s grace: a 503 a gateway can retry elsewhere.
        t.join(timeout=300)
        assert not t.is_alive()
        r = waiting["r"]
        assert r.status_code == 503 and r.json()["error"]["code"] == "shutting_down" and r.headers["Retry-After"] == "1"
        health = requests.get(f"http://127.0.0.1:{probe}/health", timeout=10)
        assert health.status_code == 503 and health.json() == {"status": "shutting_down"}
        assert requests.get(f"http://127.0.0.1:{probe}/health/live", timeout=10).status_code == 200
        assert server.proc.poll() is None  # still draining the running stream

        server.proc.send_signal(signal.SIGTERM)
        events = sse_events(lines)
        assert events[-1] == "DONE"
        assert events[-2]["error"]["code"] == "shutting_down"
        assert server.proc.wait(timeout=300) == 0
        assert "again; ending the grace period now" in server.log_text()
    finally:
        server.stop()


def _run(args, cwd, env=None):
    return subprocess.run([str(_binary()), *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_cli_errors_are_one_line_naming_the_flag_and_leave_no_files():
    with tempfile.TemporaryDirectory(prefix="valet-cli-") as tmp:
        cwd = Path(tmp)
        model = str(_model())
        (cwd / "a-file").write_text("x")
        cases = [
            (["serve", "--model", model, "--port", "-1"], {}, "--port"),
            (["serve", "--model", model, "--temperature", "-1"], {}, "--temperature"),
            (["serve", "--model", tmp], {}, "--model"),
            (["serve", "--model", model, "--db", "a-file/valet.sqlite"], {}, "--db"),
            (["serve", "--model", model, "--kv-cache-tokens", "1024", "--kv-cache-mib", "8"], {}, "--kv-cache-tokens"),
            (["serve", "--model", model, "--served-model-name", ""], {}, "--served-model-name"),
            (["serve", "--model", model, "--api-key", ""], {}, "--api-key"),
            (["serve", "--model", model], {"VALET_API_KEY": ""}, "VALET_API_KEY"),
        ]
        for args, env, flag in cases:
            result = _run(args, cwd, env)
            message = result.stderr.strip()
            assert result.returncode != 0, (args, message)
            assert len(message.splitlines()) == 1, (args, message)
            assert flag in message, (args, message)
            assert not (cwd / "data").exists(), args
        # A start that fails after the record was opened (the port is taken) removes what it created.
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen(1)
            port = taken.getsockname()[1]
            result = _run(["serve", "--model", model, "--port", str(port)], cwd)
            assert result.returncode != 0
            assert not (cwd / "data").exists(), result.stderr
