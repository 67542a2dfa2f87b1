# The job record's faults and edges against a real `valet serve`: reading a job right after its response, the
# WAL checkpointed at shutdown, the database file deleted under the server, a full disk (a small tmpfs, root
# only) and a read-only database refused at startup.
import os
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import pytest
import requests

from conftest import ValetProcess, _binary, _model, free_port, wait_for


def complete(server, prompt="Say one word.", max_tokens=1):
    r = requests.post(server.base + "/v1/completions", headers=server.headers(), timeout=120,
                      json={"model": server.model_name, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0})
    assert r.status_code == 200, r.text
    return r.json()["id"]


def rows(db_path, ids):
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        marks = ",".join("?" * len(ids))
        return {r[0] for r in db.execute(f"SELECT id FROM jobs WHERE id IN ({marks})", list(ids))}
    finally:
        db.close()


def metric(server, name):
    for line in requests.get(server.base + "/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def recorder_state(server):
    r = requests.get(server.base + "/v1/metrics", headers=server.headers(), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["recorder"]


@pytest.fixture
def server():
    s = ValetProcess("--ctx-size", "512", "--shutdown-grace", "1")
    yield s
    s.stop()


def test_a_job_is_readable_right_after_its_response(server):
    for i in range(50):
        job_id = complete(server, f"Count to {i}:")
        r = requests.get(server.base + f"/v1/jobs/{job_id}", headers=server.headers(), timeout=30)
        assert r.status_code == 200, f"request {i}: {r.status_code} {r.text}"
        assert r.json()["id"] == job_id and r.json()["status"] == "completed"


def test_recorder_health_and_size_are_reported(server):
    complete(server)
    state = recorder_state(server)
    assert state["state"] == "ok" and state["write_errors"] == 0 and state["last_error"] is None
    db = Path(server.dir.name) / "valet.sqlite"
    size = wait_for("a database size on /metrics", lambda: metric(server, "valet_recorder_database_bytes"))
    assert size >= 4096
    wal = Path(str(db) + "-wal")
    on_disk = db.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    assert size <= on_disk + (1 << 20), (size, on_disk)
    assert metric(server, "valet_recorder_degraded") == 0
    assert metric(server, "valet_recorder_write_errors_total") == 0


def test_shutdown_checkpoints_so_a_copy_of_the_main_file_holds_everything(server):
    ids = [complete(server, f"Item {i}:") for i in range(5)]
    assert server.terminate() == 0
    copy = Path(tempfile.mkdtemp(prefix="valet-copy-")) / "copy.sqlite"
    try:
        shutil.copyfile(Path(server.dir.name) / "valet.sqlite", copy)
        assert rows(copy, ids) == set(ids)
        db = sqlite3.connect(copy)
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        db.close()
        assert {"jobs", "job_totals", "queue_samples", "lock_waits"} <= tables
    finally:
        shutil.rmtree(copy.parent)


def test_a_deleted_database_is_recreated_with_the_new_rows(server):
    db = Path(server.dir.name) / "valet.sqlite"
    first = complete(server)
    wait_for("the first row on disk", lambda: rows(db, [first]))
    db.unlink()
    ids = [complete(server, f"After {i}:") for i in range(3)]
    wait_for("the new rows in a recreated file", lambda: db.exists() and rows(db, ids) == set(ids))
    assert rows(db, [first]) == set()
    log = server.log_text()
    assert log.count("deleted or replaced") == 1, log
    assert recorder_state(server)["state"] == "ok"


def _mount_tmpfs(path, size):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")


def test_a_full_disk_degrades_the_recorder_and_every_job_is_written_once_space_returns():
    mount = Path(tempfile.mkdtemp(prefix="valet-full-"))
    _mount_tmpfs(mount, "1m")
    server = None
    try:
        server = ValetProcess("--ctx-size", "512", "--shutdown-grace", "1", "--db", str(mount / "valet.sqlite"))
        complete(server)
        # Fill what is left of the mount, to the last byte.
        filler = mount / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            for chunk in (65536, 4096, 1):
                try:
                    while os.write(fd, b"\0" * chunk) > 0:
                        pass
                except OSError:
                    pass
        finally:
            os.close(fd)
        ids = [complete(server, f"Full {i}:") for i in range(10)]
        state = wait_for("a degraded recorder", lambda: (s := recorder_state(server))["state"] == "degraded" and s)
        assert "full" in state["last_error"], state
        assert metric(server, "valet_recorder_degraded") == 1
        assert metric(server, "valet_recorder_write_errors_total") >= 1
        # Answered from memory while the disk refuses them.
        for job_id in ids:
            assert requests.get(server.base + f"/v1/jobs/{job_id}", headers=server.headers(), timeout=30).status_code == 200
        wait_for("a few failed attempts", lambda: metric(server, "valet_recorder_write_errors_total") >= 3)
        filler.unlink()
        wait_for("the recorder to recover", lambda: recorder_state(server)["state"] == "ok")
        assert metric(server, "valet_recorder_degraded") == 0
        log = server.log_text()
        assert log.count("writing the database failed") == 1, log
        assert log.count("more write failures") <= 1, log
        assert "succeed again" in log
        assert server.terminate() == 0
        assert rows(mount / "valet.sqlite", ids) == set(ids)
    finally:
        if server is not None:
            server.stop()
        subprocess.run(["umount", str(mount)])
        shutil.rmtree(mount, ignore_errors=True)


def _start_failing(db_path):
    args = [str(_binary()), "serve", "--model", str(_model()), "--host", "127.0.0.1", "--port", str(free_port()),
            "--db", str(db_path)]
    return subprocess.run(args, capture_output=True, text=True, timeout=300)


def test_a_read_only_database_is_a_one_line_startup_error():
    if not _binary().exists() or not _model().exists():
        pytest.skip("needs the valet binary and the test model")
    work = Path(tempfile.mkdtemp(prefix="valet-ro-"))
    mounted = False
    try:
        if os.geteuid() == 0:
            _mount_tmpfs(work, "4m")
            mounted = True
        existing = work / "valet.sqlite"
        made = sqlite3.connect(existing)
        made.execute("CREATE TABLE t (x)")
        made.commit()
        made.close()
        if mounted:
            subprocess.run(["mount", "-o", "remount,ro", str(work)], check=True)
        else:
            existing.chmod(0o444)
            work.chmod(0o555)
        for db in (existing, work / "new.sqlite"):
            r = _start_failing(db)
            assert r.returncode != 0, r.stderr
            errors = [line for line in (r.stdout + r.stderr).splitlines() if " error " in f" {line} "]
            assert len(errors) == 1, r.stdout + r.stderr
            assert "--db" in errors[0] and str(db) in errors[0] and "not writable" in errors[0], errors[0]
            assert "Error Domain" not in r.stderr
    finally:
        if mounted:
            subprocess.run(["umount", str(work)])
        else:
            work.chmod(0o755)
        shutil.rmtree(work, ignore_errors=True)
