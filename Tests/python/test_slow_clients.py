# Slow and abusive clients against a real `valet serve`: one address cannot fill the connection pool, a client that
# drips its request is cut off at the read deadline, uploads share a bounded body budget, and the probe listener
# answers while the API listener is full.
import json
import socket
import time

import pytest
import requests

from conftest import ValetProcess, free_port

ATTACKER = "127.0.0.2"


def _partial_request(source: str, port: int) -> socket.socket:
    s = socket.socket()
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: valet\r\nX-Drip: ")
    s.setblocking(False)
    return s


def _closed_by_server(s: socket.socket) -> bool:
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def _wait_until(predicate, timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


@pytest.fixture()
def guarded():
    server = ValetProcess("--ctx-size", "512", "--max-connections", "48", "--max-connections-per-ip", "16",
                          "--request-read-timeout", "3", "--connection-timeout", "60", "--shutdown-grace", "1",
                          api_key=None)
    yield server
    server.stop()


def test_one_address_cannot_fill_the_pool_and_drippers_are_cut_at_the_read_deadline(guarded):
    # More than --max-connections from one address: without the per-address limit they would take every slot.
    created = time.monotonic()
    socks = [_partial_request(ATTACKER, guarded.port) for _ in range(60)]
    # Surplus connections are closed at accept; let MHD get to them.
    assert _wait_until(lambda: sum(not _closed_by_server(s) for s in socks) <= 16, timeout=10)
    held = [s for s in socks if not _closed_by_server(s)]
    assert 1 <= len(held) <= 16

    # Every other address is still served, while the attacker's connections are open and dripping.
    for s in held:
        s.send(b"a")
    assert requests.get(guarded.base + "/health", timeout=10).status_code == 200
    r = requests.post(guarded.base + "/v1/chat/completions", timeout=60, json={
        "model": guarded.model_name, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2, "temperature": 0})
    assert r.status_code == 200, r.text
    assert r.json()["usage"]["completion_tokens"] >= 1

    # Dripping a byte every 0.3 s resets the idle timeout (60 s) but not the read deadline (3 s).

    def all_cut():
        for s in held:
            if not _closed_by_server(s):
                try:
                    s.send(b"b")
                except OSError:
                    pass
        return all(_closed_by_server(s) for s in held)

    assert _wait_until(all_cut, timeout=30, step=0.3), "a dripping client outlived --request-read-timeout"
    # Cut by the deadline, not before it (host load can only make the cut later).
    assert time.monotonic() - created >= 3.0
    for s in socks:
        s.close()
    assert requests.get(guarded.base + "/health", timeout=10).status_code == 200


def test_a_slow_request_that_completes_in_time_is_answered(guarded):
    s = socket.create_connection(("127.0.0.1", guarded.port))
    body = json.dumps({"model": guarded.model_name, "messages": [{"role": "user", "content": "Hi"}],
                       "max_tokens": 1}).encode()
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: valet\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    for i in range(0, len(head), 16):  # trickled, but well inside the deadline
        s.sendall(head[i:i + 16])
        time.sleep(0.02)
    s.sendall(body)
    s.settimeout(60)
    reply = b""
    while chunk := s.recv(65536):
        reply += chunk
    s.close()
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]


def test_uploads_share_a_bounded_body_budget():
    server = ValetProcess("--ctx-size", "512", "--max-body-bytes", "200000", "--max-buffered-body-bytes", "300000",
                          "--request-read-timeout", "60", "--shutdown-grace", "1", api_key=None)
    try:
        def start_upload(length: int) -> socket.socket:
            s = socket.create_connection(("127.0.0.1", server.port))
            s.sendall((f"POST /v1/completions HTTP/1.1\r\nHost: valet\r\nContent-Type: application/json\r\n"
                       f"Content-Length: {length}\r\n\r\n").encode() + b" " * 1000)
            return s

        def reply(s: socket.socket) -> bytes:
            s.settimeout(30)
            data = b""
            while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) == 0:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            return data

        a, b = start_upload(150_000), start_upload(150_000)
        time.sleep(0.5)  # both reservations are taken once their headers are in
        c = start_upload(150_000)
        answer = reply(c)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503"), head
        assert b"retry-after: 1" in head.lower()
        assert json.loads(body)["error"]["type"]
        c.close()

        # An upload that ends gives its share back; the next one is read and answered on its merits.
        a.close()
        assert _wait_until(lambda: b"HTTP/1.1 503" not in _one_upload(server.port, 150_000), timeout=20)
        b.close()
    finally:
        server.stop()


def _one_upload(port: int, length: int) -> bytes:
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall((f"POST /v1/completions HTTP/1.1\r\nHost: valet\r\nContent-Type: application/json\r\n"
               f"Content-Length: {length}\r\nConnection: close\r\n\r\n").encode() + b" " * length)
    s.settimeout(30)
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    return data.split(b"\r\n", 1)[0]


def test_probe_port_answers_while_the_api_listener_is_full():
    probe = free_port()
    server = ValetProcess("--ctx-size", "512", "--max-connections", "8", "--max-connections-per-ip", "0",
                          "--request-read-timeout", "120", "--probe-port", str(probe), "--shutdown-grace", "1",
                          api_key=None)
    try:
        socks = [_partial_request("127.0.0.1", server.port) for _ in range(12)]
        time.sleep(0.5)
        with pytest.raises(requests.RequestException):
            requests.get(server.base + "/health", timeout=2)
        assert requests.get(f"http://127.0.0.1:{probe}/health", timeout=10).status_code == 200
        metrics = requests.get(f"http://127.0.0.1:{probe}/metrics", timeout=10)
        assert metrics.status_code == 200
        assert "valet_requests_waiting" in metrics.text
        # Only probes there: the API is not reachable through the probe listener.
        assert requests.get(f"http://127.0.0.1:{probe}/v1/models", timeout=10).status_code == 404
        for s in socks:
            s.close()
    finally:
        server.stop()
