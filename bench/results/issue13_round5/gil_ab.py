"""A/B of keeping the GIL through short guest calls (issue 13, round 5), interleaved in one run.

A = ``MWHOST_RELEASE_GIL=1`` (every guest call releases the GIL for its whole roundtrip and
no epoch-deadline callback is registered: main's behaviour), B = the default (a call keeps
the GIL until its first tick). Same build, same tree; only the servers' environment differs.

Points as ``bench/gthread_stage_calls.py`` (0 and 3 Rust add_header stages, sync and gthread
workers: 2 workers, 2 threads each for gthread), measured by its ``measure``: a fresh
``mwhost serve``, a 1 s wrk warm-up, then one bounded wrk run (bench/throughput.py's method:
``Connection: close``, 4 connections) giving requests/s, the workers' CPU per request from
/proc, and one stage call's mean wall time from the stage meters (``/metrics``).

Each round measures every point on both sides, the side order alternating per point and per
round (A B, B A, ...), so the machine's drifting load falls on both sides alike. Medians over
rounds; "kept" is each round's 3-stage requests/s over the same round's 0-stage requests/s
of the same side, then the median.

``--throughput`` measures bench/throughput.py's whole point set instead (0, 1, 3, 5 Rust
stages and 3 native Python middlewares, sync and gthread; its ``measure_point``), alternating
the sides the same way, and prints its table for each side (medians over rounds).

Usage (from the repository root): .venv/bin/python bench/results/issue13_round5/gil_ab.py
    [--rounds N] [--duration S] [--json FILE] [--throughput]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from bench import gthread_stage_calls, throughput  # noqa: E402

SIDES = {"A_release": "1", "B_keep": None}
ENV = "MWHOST_RELEASE_GIL"


def loadavg() -> str:
    return " ".join(pathlib.Path("/proc/loadavg").read_text().split()[:3])


def on_side(side: str, measure, *args) -> dict:
    """``measure(*args)`` with the servers it starts on ``side`` (the environment they inherit)."""
    value = SIDES[side]
    if value is None:
        os.environ.pop(ENV, None)
    else:
        os.environ[ENV] = value
    try:
        result = measure(*args)
    finally:
        os.environ.pop(ENV, None)
    return {**result, "load": loadavg(), "at": time.strftime("%H:%M:%S", time.gmtime())}


def measure(side: str, folder: pathlib.Path, worker_class: str, stages: int, duration: float) -> dict:
    return on_side(side, gthread_stage_calls.measure, folder, worker_class, stages, duration)


def run_throughput(rounds: int, duration: float) -> dict:
    """bench/throughput.py's points, both sides alternately; {side: throughput.run's data}."""
    chosen = throughput.points()
    raw: dict[str, dict[str, list[dict]]] = {side: {p["label"]: [] for p in chosen} for side in SIDES}
    flip = 0
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(rounds):
            for i, point in enumerate(chosen if round_ % 2 == 0 else list(reversed(chosen))):
                order = list(SIDES) if flip % 2 == 0 else list(reversed(SIDES))
                flip += 1
                for side in order:
                    where = pathlib.Path(folder) / f"r{round_}-{i}-{side}"
                    result = on_side(side, throughput.measure_point, point, where, duration, 1.0)
                    raw[side][point["label"]].append(result)
                    print(f"round {round_} {side} {point['label']}: {json.dumps(result)}", flush=True)
    data = {}
    for side, runs_by_label in raw.items():
        points = {}
        for point in chosen:
            runs = runs_by_label[point["label"]]
            points[point["label"]] = {
                **{k: point[k] for k in ("kind", "count", "worker_class")},
                **{key: statistics.median(r[key] for r in runs) for key in ("rps", "p50_ms", "p99_ms", "cpu_us")},
                "errors": sum(r["socket_errors"] + r["non_2xx"] for r in runs), "runs": runs}
        data[side] = {"points": points}
    return data


def run(rounds: int, duration: float) -> dict:
    raw: dict[str, dict[str, list[dict]]] = {side: {} for side in SIDES}
    flip = 0
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(rounds):
            points = gthread_stage_calls.POINTS if round_ % 2 == 0 else list(reversed(gthread_stage_calls.POINTS))
            for worker_class, stages in points:
                order = list(SIDES) if flip % 2 == 0 else list(reversed(SIDES))
                flip += 1
                for side in order:
                    where = pathlib.Path(folder) / f"r{round_}-{side}-{worker_class}-{stages}"
                    result = measure(side, where, worker_class, stages, duration)
                    raw[side].setdefault(f"{worker_class} {stages}", []).append(result)
                    print(f"round {round_} {side} {worker_class} {stages}: {json.dumps(result)}", flush=True)
    return raw


def summary(raw: dict) -> str:
    lines = ["| side | workers | stages | requests/s | kept (per round, median) | worker CPU us/request | "
             "CPU added by 3 stages | one stage call, us |", "|---|---|---|---|---|---|---|---|"]
    for side, points in raw.items():
        for worker_class in ("sync", "gthread"):
            base, three = points[f"{worker_class} 0"], points[f"{worker_class} 3"]
            kept = statistics.median(t["rps"] / b["rps"] for t, b in zip(three, base)) * 100
            added = statistics.median(t["cpu_us_per_request"] - b["cpu_us_per_request"] for t, b in zip(three, base))
            for stages, runs in ((0, base), (3, three)):
                rps = statistics.median(r["rps"] for r in runs)
                cpu = statistics.median(r["cpu_us_per_request"] for r in runs)
                call = statistics.median(r["stage_call_us"] for r in runs) if stages else float("nan")
                lines.append(f"| {side} | {worker_class} | {stages} | {rps:.0f} | {'' if stages == 0 else f'{kept:.0f}%'} | "
                             f"{cpu:.0f} | {'' if stages == 0 else f'{added:+.0f}'} | "
                             f"{'' if stages == 0 else f'{call:.1f}'} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--json", type=pathlib.Path)
    parser.add_argument("--throughput", action="store_true", help="bench/throughput.py's whole point set")
    args = parser.parse_args()
    print(f"start {time.strftime('%H:%M:%S', time.gmtime())} UTC, load {loadavg()}", flush=True)
    raw = (run_throughput if args.throughput else run)(args.rounds, args.duration)
    print(f"end {time.strftime('%H:%M:%S', time.gmtime())} UTC, load {loadavg()}")
    if args.json:
        args.json.write_text(json.dumps(raw, indent=1))
    if args.throughput:
        for side, data in raw.items():
            print(f"\n{side}\n{throughput.table(data)}")
    else:
        print(summary(raw))


if __name__ == "__main__":
    main()
