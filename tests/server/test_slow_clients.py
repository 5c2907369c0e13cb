"""Idle and slow clients against the default ``mwhost serve`` set-up (issue 11, item 9): normal
requests keep being answered while 100 such connections are open, and the server closes the
slow ones itself, within its documented timeouts."""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import socket
import time

import pytest

from mwhost import worker
from mwhost.server import gunicorn_options
from mwhost.settings import Settings
from tests.server.gunicorn_process import serve
from tests.server.test_swap import wait_for

pytestmark = pytest.mark.slow

#: generous bounds: the point is "answered", not a latency figure
ANSWER_WITHIN_S = 5.0
CLOSED_WITHIN_S = worker.HEAD_TIMEOUT_S + worker.IO_TIMEOUT_S + worker.LINGER_S + 10


def _connect(port: int, data: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    if data:
        sock.sendall(data)
    return sock


def _closed_by_server(sock: socket.socket) -> bool:
    """Whether the server has closed ``sock`` (EOF or reset; an answer first is fine)."""
    sock.setblocking(False)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def _timed_get(served, path: str = "/hello") -> float:
    started = time.monotonic()
    status, _, _ = served.request("GET", path)
    assert status == 200
    return time.monotonic() - started


@pytest.fixture
def clients():
    opened: list[socket.socket] = []
    yield opened
    for sock in opened:
        with contextlib.suppress(OSError):
            sock.close()


def test_normal_requests_are_answered_with_100_idle_and_slow_connections_open(tmp_path, clients):
    """GETs are answered within 5 s while 50 idle and 50 slow connections are open, and the server
    closes those itself."""
    with serve(tmp_path, workers=2) as served:
        port = served.port
        idle = [_connect(port) for _ in range(50)]
        partial_head = [_connect(port, b"GET /slow HTTP/1.1\r\nHost: x\r\nX-Slow: ") for _ in range(25)]
        partial_body = [_connect(port, b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
                                       + b"x" * 10) for _ in range(25)]
        clients.extend(idle + partial_head + partial_body)
        waits = [_timed_get(served) for _ in range(20)]
        print(f"GET with 100 idle and slow connections open: {max(waits):.3f} s at most")
        assert max(waits) < ANSWER_WITHIN_S, waits
        slow = partial_head + partial_body
        assert wait_for(lambda: all(_closed_by_server(sock) for sock in slow), timeout=CLOSED_WITHIN_S), \
            sum(not _closed_by_server(sock) for sock in slow)
        assert wait_for(lambda: all(_closed_by_server(sock) for sock in idle), timeout=CLOSED_WITHIN_S)
        assert max(_timed_get(served) for _ in range(5)) < ANSWER_WITHIN_S
        assert len(served.worker_pids()) == 2


def test_a_client_sending_its_head_byte_by_byte_within_the_deadline_is_served(tmp_path):
    """Reading heads in the main loop still serves a head that arrives in many small pieces."""
    with serve(tmp_path, workers=1) as served:
        with _connect(served.port) as sock:
            for byte in b"GET /piecewise HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n":
                sock.sendall(bytes([byte]))
            sock.settimeout(10)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200") and b'"/piecewise"' in answer


def test_keep_alive_requests_and_the_sync_worker_class_still_work(tmp_path):
    """Several requests on one kept-alive connection are answered; ``--worker-class sync`` still serves."""
    with serve(tmp_path, workers=1) as served:
        conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
        try:
            for i in range(5):
                conn.request("GET", f"/k{i}")
                response = conn.getresponse()
                assert response.status == 200 and f'"/k{i}"'.encode() in response.read()
        finally:
            conn.close()
    (tmp_path / "sync").mkdir()
    with serve(tmp_path / "sync", "--worker-class", "sync", workers=1) as served:
        assert _timed_get(served) < ANSWER_WITHIN_S


def test_the_default_set_up_is_the_hardened_gthread_worker_and_sync_stays_available():
    """``worker_class`` maps to host/worker.py's HostWorker by default and to gunicorn's sync on request."""
    defaults = Settings()
    assert (defaults.worker_class, defaults.threads) == ("gthread", 4)
    assert gunicorn_options(defaults)["worker_class"] == "mwhost.worker.HostWorker"
    assert gunicorn_options(dataclasses.replace(defaults, worker_class="sync"))["worker_class"] == "sync"
