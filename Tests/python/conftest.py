# Starts real `valet serve` processes on free loopback ports for the API suite (env VALET_BIN, VALET_TEST_MODEL).
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "test-key-7f3a91"


def _binary():
    return Path(os.environ.get("VALET_BIN", ROOT / ".build" / "release" / "valet"))


def _model():
    return Path(os.environ.get("VALET_TEST_MODEL", ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, check, timeout=120, interval=0.1):
    """Polls `check` until it returns something truthy, and returns that; fails naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def sse_events(lines):
    """An SSE body's data lines (bytes or str) as JSON events; the terminating [DONE] becomes the string 'DONE'."""
    events = []
    for line in lines:
        if isinstance(line, bytes):
            line = line.decode()
        if not line:
            continue
        assert line.startswith("data: "), line
        payload = line[len("data: "):]
        events.append("DONE" if payload == "[DONE]" else json.loads(payload))
    return events


class ValetProcess:
    """One `valet serve` with its own port, database and log file."""

    def __init__(self, *extra_args, api_key=API_KEY):
        binary, model = _binary(), _model()
        if not binary.exists():
            pytest.skip(f"valet binary not found at {binary}; build it or set VALET_BIN")
        if not model.exists():
            pytest.skip(f"test model not found at {model}; run `make model` or set VALET_TEST_MODEL")
        self.dir = tempfile.TemporaryDirectory(prefix="valet-py-")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.api_key = api_key
        self.model_name = model.name[: -len(".gguf")]
        self.log_path = Path(self.dir.name) / "valet.log"
        args = [str(binary), "serve", "--model", str(model), "--host", "127.0.0.1", "--port", str(self.port),
                "--db", str(Path(self.dir.name) / "valet.sqlite"), *extra_args]
        if api_key:
            args += ["--api-key", api_key]
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT)
        self._wait_healthy()

    def _wait_healthy(self, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"valet exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                if requests.get(self.base + "/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"valet did not become healthy in {timeout}s:\n{self.log_text()}")

    def headers(self, **extra):
        h = {"Content-Type": "application/json"}
        if self.api_key:
            h["Authorization"] = f"Bearer {self.api_key}"
        h.update(extra)
        return h

    def client(self, **kwargs):
        import openai

        return openai.OpenAI(base_url=self.base + "/v1", api_key=self.api_key or "none", max_retries=0,
                             timeout=kwargs.pop("timeout", 120), **kwargs)

    def log_text(self):
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def terminate(self, sig=signal.SIGTERM, timeout=60):
        """Send a signal and return the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def stop(self):
        self.terminate()
        self.log.close()
        self.dir.cleanup()


@pytest.fixture(scope="session")
def valet():
    """The main server: default scheduler settings, API key on."""
    server = ValetProcess("--ctx-size", "2048", "--shutdown-grace", "2")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def small_valet():
    """A server with room for one long job and a queue of one, for overload and disconnect cases."""
    server = ValetProcess("--ctx-size", "1024", "--kv-cache-tokens", "1024", "--max-queue", "1",
                          "--queue-timeout", "5", "--shutdown-grace", "1")
    yield server
    server.stop()
