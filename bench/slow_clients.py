"""What the slow-client-safe default costs, and what it buys (issue 11, item 9).

Cost: requests/s of the demo pipeline (the embedded default of ``mwhost serve``, 2 workers)
with the old default (``sync``) and the new one (``gthread`` through host/worker.py, 4
threads), plus gthread with 1 and 2 threads; bench/throughput.py's method: a fresh server per
point, a warm-up, one bounded ``wrk`` run on 127.0.0.1 (4 connections, a new connection per
request), interleaved rounds (order reversed on odd rounds), medians over rounds.

Benefit: with 50 idle and 50 slow connections open (25 partial heads, 25 unfinished
Content-Length bodies), the longest of 10 sequential GETs (each capped at 35 s), per worker
class, once per round.

Usage: .venv/bin/python bench/slow_clients.py [--duration S] [--rounds N] [--smoke]
"""

from __future__ import annotations

import argparse
import contextlib
import pathlib
import socket
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from bench import harness  # noqa: E402
from bench.throughput import run_wrk, wrk_version  # noqa: E402
from tests.server.gunicorn_process import serve  # noqa: E402

WORKERS = 2
CONNECTIONS = 4
POINTS = (("sync", 1), ("gthread", 1), ("gthread", 2), ("gthread", 4))
PATH = "/bench/items?limit=10"
SLOW_GETS = 3
GET_CAP_S = 35.0


def label(worker_class: str, threads: int) -> str:
    return "sync (old default)" if worker_class == "sync" else \
        f"gthread, {threads} thread{'s' if threads > 1 else ''}" + (" (new default)" if threads == 4 else "")


@contextlib.contextmanager
def server(folder: pathlib.Path, worker_class: str, threads: int):
    folder.mkdir(parents=True, exist_ok=True)
    with serve(folder, "--worker-class", worker_class, "--threads", str(threads), workers=WORKERS) as served:
        yield served


def open_bad_clients(port: int) -> list[socket.socket]:
    """50 idle connections, 25 with half a head, 25 with a head and 10 of 100000 body bytes."""
    opened = []
    for data in [b""] * 50 + [b"GET /slow HTTP/1.1\r\nHost: x\r\nX-Slow: "] * 25 + \
            [b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"x" * 10] * 25:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        if data:
            sock.sendall(data)
        opened.append(sock)
    return opened


def longest_get(served) -> float:
    """The longest of ``SLOW_GETS`` sequential GETs with the bad clients open (capped)."""
    import http.client

    waits = []
    for _ in range(SLOW_GETS):
        started = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=GET_CAP_S)
        try:
            conn.request("GET", PATH)
            conn.getresponse().read()
        except OSError:
            pass  # a timeout counts as the cap
        finally:
            conn.close()
        waits.append(min(time.monotonic() - started, GET_CAP_S))
    return max(waits)


def measure(folder: pathlib.Path, worker_class: str, threads: int, duration_s: float, warmup_s: float) -> dict:
    with server(folder, worker_class, threads) as served:
        if warmup_s > 0:
            run_wrk(served.url + PATH, warmup_s, CONNECTIONS)
        result = run_wrk(served.url + PATH, duration_s, CONNECTIONS)
        bad = open_bad_clients(served.port)
        try:
            result["longest_get_s"] = longest_get(served)
        finally:
            for sock in bad:
                sock.close()
    return result


def run(duration_s: float, rounds: int, warmup_s: float) -> dict:
    raw: dict[str, list[dict]] = {label(*p): [] for p in POINTS}
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(rounds):
            order = POINTS if round_ % 2 == 0 else tuple(reversed(POINTS))
            for i, (worker_class, threads) in enumerate(order):
                where = pathlib.Path(folder) / f"r{round_}-{i}"
                raw[label(worker_class, threads)].append(measure(where, worker_class, threads, duration_s, warmup_s))
    points = {}
    for worker_class, threads in POINTS:
        runs = raw[label(worker_class, threads)]
        points[label(worker_class, threads)] = {
            "worker_class": worker_class, "threads": threads,
            **{key: statistics.median(r[key] for r in runs) for key in ("rps", "p50_ms", "p99_ms", "longest_get_s")},
            "errors": sum(r["socket_errors"] + r["non_2xx"] for r in runs), "runs": runs,
        }
    return {"workers": WORKERS, "connections": CONNECTIONS, "duration_s": duration_s, "warmup_s": warmup_s,
            "rounds": rounds, "wrk": wrk_version(), "points": points}


def report(data: dict) -> str:
    base = data["points"][label("sync", 1)]["rps"]
    rows = [f"| {name} | {p['rps']:.0f} | {p['rps'] / base * 100:.0f}% | {p['p50_ms']:.2f} | {p['p99_ms']:.2f} | "
            f"{p['errors']} | {p['longest_get_s']:.2f} |" for name, p in data["points"].items()]
    return f"""# Slow clients: the cost of the new default worker set-up (issue 11, item 9)

{{header}}The demo pipeline (embedded default of `mwhost serve`, 4 stages), {data['workers']} workers, wrk
{data['connections']} connections on 127.0.0.1 with a new connection per request, {data['duration_s']:g} s per point
after a {data['warmup_s']:g} s warm-up, {data['rounds']} interleaved rounds, medians. "longest GET" is the
longest of {SLOW_GETS} sequential GETs while 50 idle and 50 slow connections (25 partial heads, 25
unfinished Content-Length bodies) are open, capped at {GET_CAP_S:g} s.

| worker set-up | requests/s | vs sync | p50 ms | p99 ms | errors | longest GET s |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of measured load per point")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="1 s per point, one round; writes nothing")
    args = parser.parse_args()
    if args.smoke:
        print(report(run(1.0, 1, 0.0)).replace("{header}", ""))
        return
    data = run(args.duration, args.rounds, 1.0)
    path = harness.write("slow_clients", harness.argv_command(), data, report(data))
    print(path.read_text())


if __name__ == "__main__":
    main()
