# `valet serve --no-recorder` against a real server: no SQLite file, live metrics still served, and the
# routes that read the job record answer with a clear error instead of failing.
from pathlib import Path

import pytest
import requests

from conftest import ValetProcess


@pytest.fixture(scope="module")
def unrecorded():
    server = ValetProcess("--no-recorder", "--ctx-size", "1024", "--shutdown-grace", "1")
    yield server
    server.stop()


def test_no_database_file_is_created(unrecorded):
    r = requests.post(unrecorded.base + "/v1/completions", headers=unrecorded.headers(), timeout=60,
                      json={"model": unrecorded.model_name, "prompt": "Count: one, two,", "max_tokens": 3})
    assert r.status_code == 200, r.text
    assert r.json()["usage"]["completion_tokens"] == 3
    files = sorted(p.name for p in Path(unrecorded.dir.name).iterdir())
    assert files == ["valet.log"], files  # the --db path given by the fixture was never opened
    assert "recorder off" in unrecorded.log_text()


def test_prometheus_metrics_still_count(unrecorded):
    before = _counter(unrecorded, "valet_generation_tokens_total")
    r = requests.post(unrecorded.base + "/v1/completions", headers=unrecorded.headers(), timeout=60,
                      json={"model": unrecorded.model_name, "prompt": "Colours: red,", "max_tokens": 2})
    assert r.status_code == 200, r.text
    assert _counter(unrecorded, "valet_generation_tokens_total") == before + 2
    # Nothing is recorded, so nothing can be dropped either.
    assert _counter(unrecorded, "valet_recorder_dropped_total") == 0


def test_v1_metrics_gives_live_stats_only(unrecorded):
    r = requests.get(unrecorded.base + "/v1/metrics?window=60", headers=unrecorded.headers(), timeout=10)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["recorder_enabled"] is False
    assert report["totals"] is None
    assert report["history"] == []
    assert report["total_capacity"] > 0 and report["available_capacity"] == report["total_capacity"]
    assert report["scheduler_type"] == "parking-lot"


def test_job_lookup_says_the_recorder_is_disabled(unrecorded):
    r = requests.post(unrecorded.base + "/v1/completions", headers=unrecorded.headers(), timeout=60,
                      json={"model": unrecorded.model_name, "prompt": "Hello", "max_tokens": 1})
    job_id = r.json()["id"]
    assert requests.get(unrecorded.base + f"/v1/jobs/{job_id}", timeout=10).status_code == 401  # auth still first
    r = requests.get(unrecorded.base + f"/v1/jobs/{job_id}", headers=unrecorded.headers(), timeout=10)
    assert r.status_code == 404
    error = r.json()["error"]
    assert error["code"] == "recorder_disabled"
    assert "--no-recorder" in error["message"] and job_id in error["message"]


def test_clean_shutdown_without_a_recorder(unrecorded):
    assert unrecorded.terminate() == 0
    assert "stopped" in unrecorded.log_text()


def _counter(server, name):
    for line in requests.get(server.base + "/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")
