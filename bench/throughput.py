"""Requests/s and latency through gunicorn with wrk (loopback, bounded duration).

Points: 0, 1, 3 and 5 Rust add_header stages under ``mwhost serve``, and 3 native Python
Falcon middlewares doing the same job in the same host app (bench/native_app.py); each
with sync workers and with gthread workers. Each point gets a fresh server, a warm-up
and then one bounded ``wrk --latency`` run; rounds repeat every point (order reversed on
odd rounds) and the report gives medians over rounds. Every request is on a new
connection (``Connection: close``), so the load spreads over the workers as it does with
many clients.

Besides requests/s, each run reads the workers' CPU time per request (utime + stime of
every worker thread from /proc, before and after the run). On a shared 2-core machine
requests/s of one run moves by up to +-30% (wrk, the workers and other jobs share the
cores); the CPU a request costs the workers moves much less and is what a stage adds.

Usage: .venv/bin/python bench/throughput.py [--duration S] [--rounds N] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from bench import servers  # noqa: E402

WORKERS = 2
THREADS = 2  # per gthread worker
CONNECTIONS = 4
RUST_STAGES = (0, 1, 3, 5)
NATIVE_MIDDLEWARES = 3
WORKER_CLASSES = ("sync", "gthread")
PATH = "/bench/items?limit=10"


def points(smoke: bool = False) -> list[dict]:
    """Every (server, worker class) point; the smoke run keeps one of each code path."""
    stages = (1,) if smoke else RUST_STAGES
    found = [{"kind": "rust", "count": n, "worker_class": wc} for wc in WORKER_CLASSES for n in stages]
    found += [{"kind": "python", "count": NATIVE_MIDDLEWARES, "worker_class": wc} for wc in WORKER_CLASSES]
    for point in found:
        point["label"] = label(point["kind"], point["count"], point["worker_class"])
    return found


def label(kind: str, count: int, worker_class: str) -> str:
    what = f"{count} Rust stage{'s' if count != 1 else ''}" if kind == "rust" else f"{count} native Python"
    return f"{what}, {worker_class}"


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise RuntimeError("wrk is not installed: run scripts/setup.sh (apt-get install wrk)")
    return path


def wrk_version() -> str:
    result = subprocess.run([wrk_path(), "-v"], capture_output=True, text=True)
    return (result.stdout or result.stderr).splitlines()[0].strip() if (result.stdout or result.stderr) else "wrk"


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(number) * _UNITS[unit]


def parse_wrk(output: str) -> dict:
    """requests/s, latency percentiles (ms), requests and errors from ``wrk --latency``."""
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
              "requests": int(re.search(r"(\d+) requests in", output).group(1))}
    for pct in ("50", "75", "90", "99"):
        found = re.search(rf"^\s+{pct}%\s+(\S+)", output, re.M)
        result[f"p{pct}_ms"] = _ms(found.group(1)) if found else float("nan")
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    result["socket_errors"] = sum(int(n) for n in socket.groups()) if socket else 0
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    result["non_2xx"] = int(non2xx.group(1)) if non2xx else 0
    return result


def run_wrk(url: str, duration_s: float, connections: int = CONNECTIONS) -> dict:
    # NOTE: a new connection per request. With keep-alive, wrk's few connections stay on
    # whichever gthread worker accepted them: all four on one worker halves the throughput,
    # and the same point measured 1.3k to 4.3k requests/s from run to run. Sync workers close
    # every connection anyway.
    command = [wrk_path(), "-t1", f"-c{connections}", f"-d{duration_s:g}s", "--timeout", "5s",
               "-H", "Connection: close", "--latency", url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration_s + 30)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr}")
    return parse_wrk(done.stdout)


_TICKS = os.sysconf("SC_CLK_TCK")


def worker_cpu_seconds(pids) -> float:
    """utime + stime of processes ``pids`` (all their threads), in seconds."""
    total = 0
    for pid in pids:
        try:
            fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / _TICKS


def measure_point(point: dict, folder: pathlib.Path, duration_s: float, warmup_s: float) -> dict:
    """Start the point's server, check it does the job, warm up, then one measured wrk run."""
    threads = THREADS if point["worker_class"] == "gthread" else 1
    if point["kind"] == "rust":
        config = servers.rust_stages_config(folder, point["count"])
        server = servers.mwhost_server(folder, config, WORKERS, point["worker_class"], threads)
    else:
        server = servers.native_server(folder, point["count"], WORKERS, point["worker_class"], threads)
    with server as served:
        servers.check_headers(served, point["count"])
        if warmup_s > 0:
            run_wrk(served.url + PATH, warmup_s)
        pids = served.worker_pids()
        cpu = worker_cpu_seconds(pids)
        result = run_wrk(served.url + PATH, duration_s)
        result["cpu_us"] = (worker_cpu_seconds(pids) - cpu) / max(result["requests"], 1) * 1e6
        return result


def run(duration_s: float, rounds: int, warmup_s: float, smoke: bool = False) -> dict:
    """Every point, ``rounds`` times; medians over rounds per point, and every raw run."""
    chosen = points(smoke)
    raw: dict[str, list[dict]] = {p["label"]: [] for p in chosen}
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(rounds):
            order = chosen if round_ % 2 == 0 else list(reversed(chosen))
            for i, point in enumerate(order):
                where = pathlib.Path(folder) / f"r{round_}-{i}"
                raw[point["label"]].append(measure_point(point, where, duration_s, warmup_s))
    results = {}
    for point in chosen:
        runs = raw[point["label"]]
        results[point["label"]] = {
            **{k: point[k] for k in ("kind", "count", "worker_class")},
            **{key: statistics.median(r[key] for r in runs) for key in ("rps", "p50_ms", "p99_ms", "cpu_us")},
            "errors": sum(r["socket_errors"] + r["non_2xx"] for r in runs),
            "requests": sum(r["requests"] for r in runs),
            "runs": runs,
        }
    return {"workers": WORKERS, "threads": THREADS, "connections": CONNECTIONS, "duration_s": duration_s,
            "warmup_s": warmup_s, "rounds": rounds, "wrk": wrk_version(), "points": results}


def find(data: dict, kind: str, count: int, worker_class: str) -> dict | None:
    return data["points"].get(label(kind, count, worker_class))


def table(data: dict) -> str:
    rows = []
    for worker_class in WORKER_CLASSES:
        base = find(data, "rust", 0, worker_class)
        for point in data["points"].values():
            if point["worker_class"] != worker_class:
                continue
            kept = f"{point['rps'] / base['rps'] * 100:.0f}%" if base else "n/a"
            added = f"{point['cpu_us'] - base['cpu_us']:+.0f}" if base else "n/a"
            rows.append(f"| {label(point['kind'], point['count'], worker_class)} | {point['rps']:.0f} | {kept} | "
                        f"{point['cpu_us']:.0f} | {added} | {point['p50_ms']:.2f} | {point['p99_ms']:.2f} | "
                        f"{point['errors']} |")
    return ("| server, workers | requests/s | vs 0 stages | worker CPU us/request | CPU vs 0 stages | p50 ms | "
            "p99 ms | errors |\n|---|---|---|---|---|---|---|---|\n" + "\n".join(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of measured load per point")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="1 s per point, one round; writes nothing")
    args = parser.parse_args()
    if args.smoke:
        data = run(1.0, 1, 0.0, smoke=True)
    else:
        data = run(args.duration, args.rounds, 1.0)
    print(table(data))


if __name__ == "__main__":
    main()
