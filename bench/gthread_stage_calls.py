"""Where 3 Rust stages' cost goes under gunicorn: sync vs gthread workers (issue 13, round 3).

For each point (0 or 3 Rust add_header stages; sync, or gthread with 2 threads per worker)
a fresh ``mwhost serve`` (2 workers), a 1 s warm-up, then one bounded wrk run as in
bench/throughput.py. Besides requests/s it reads two figures that the machine's other load
moves much less than requests/s:

- the mean duration of one stage's request call inside the server (the stage meters:
  ``mwhost_stage_call_duration_seconds`` from ``/metrics``, before and after the run);
- the workers' CPU time per request (utime + stime from /proc, before and after the run).

Rounds alternate the order of the points; medians over rounds.

Usage: .venv/bin/python bench/gthread_stage_calls.py [--rounds N] [--duration S]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from bench import servers, throughput  # noqa: E402

POINTS = [(worker_class, stages) for worker_class in ("sync", "gthread") for stages in (0, 3)]
_TICKS = os.sysconf("SC_CLK_TCK")


def stage_call_totals(served) -> tuple[float, float]:
    """(seconds, calls) of every stage's request phase so far, from ``/metrics``."""
    status, _, body = served.request("GET", "/metrics", served.admin_headers())
    if status != 200:
        raise RuntimeError(f"/metrics answered {status}")
    seconds = calls = 0.0
    for line in body.decode().splitlines():
        if 'phase="request"' not in line:
            continue
        if line.startswith("mwhost_stage_call_duration_seconds_sum"):
            seconds += float(line.split()[-1])
        elif line.startswith("mwhost_stage_call_duration_seconds_count"):
            calls += float(line.split()[-1])
    return seconds, calls


def cpu_seconds(pids) -> float:
    total = 0
    for pid in pids:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICKS


def measure(folder: pathlib.Path, worker_class: str, stages: int, duration_s: float) -> dict:
    config = servers.rust_stages_config(folder, stages)
    threads = throughput.THREADS if worker_class == "gthread" else 1
    with servers.mwhost_server(folder, config, throughput.WORKERS, worker_class, threads) as served:
        url = served.url + throughput.PATH
        throughput.run_wrk(url, 1.0)
        pids = served.worker_pids()
        seconds0, calls0 = stage_call_totals(served) if stages else (0.0, 0.0)
        cpu0 = cpu_seconds(pids)
        result = throughput.run_wrk(url, duration_s)
        cpu1 = cpu_seconds(pids)
        seconds1, calls1 = stage_call_totals(served) if stages else (0.0, 0.0)
    calls = calls1 - calls0
    return {"rps": result["rps"], "cpu_us_per_request": (cpu1 - cpu0) / result["requests"] * 1e6,
            "stage_call_us": (seconds1 - seconds0) / calls * 1e6 if calls else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=4.0)
    args = parser.parse_args()
    raw: dict[tuple, list[dict]] = {point: [] for point in POINTS}
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(args.rounds):
            for i, point in enumerate(POINTS if round_ % 2 == 0 else list(reversed(POINTS))):
                raw[point].append(measure(pathlib.Path(folder) / f"r{round_}-{i}", *point, args.duration))
    print("| workers | stages | requests/s | kept | worker CPU us per request | one stage call, us |")
    print("|---|---|---|---|---|---|")
    for worker_class, stages in POINTS:
        median = {key: statistics.median(r[key] for r in raw[(worker_class, stages)]) for key in raw[POINTS[0]][0]}
        base = statistics.median(r["rps"] for r in raw[(worker_class, 0)])
        print(f"| {worker_class} | {stages} | {median['rps']:.0f} | {median['rps'] / base * 100:.0f}% | "
              f"{median['cpu_us_per_request']:.0f} | {median['stage_call_us']:.1f} |")


if __name__ == "__main__":
    main()
