"""A small in-process benchmark harness: interleaved rounds, medians, ratios, JSON + markdown.

Timings on shared 2-core machines are noisy, so every scenario runs in the same process,
round-robin (scenario A, B, C, A, B, C, ...), and the report gives medians over rounds and
ratios between scenarios measured side by side.
"""

from __future__ import annotations

import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time
from typing import Callable

RESULTS = pathlib.Path(__file__).resolve().parent / "results"


def measure(scenarios: dict[str, Callable[[], object]], rounds: int, calls: int,
            warmup: int = 200) -> dict[str, dict[str, float]]:
    """Per-call time in microseconds for each scenario: median, p10 and p90 over ``rounds``."""
    for run in scenarios.values():
        for _ in range(warmup):
            run()
    samples: dict[str, list[float]] = {name: [] for name in scenarios}
    clock = time.perf_counter
    for _ in range(rounds):
        for name, run in scenarios.items():
            started = clock()
            for _ in range(calls):
                run()
            samples[name].append((clock() - started) / calls * 1e6)
    return {name: _summary(values) for name, values in samples.items()}


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median_us": statistics.median(ordered),
        "p10_us": ordered[len(ordered) // 10],
        "p90_us": ordered[(len(ordered) * 9) // 10],
        "rounds": len(ordered),
    }


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    cpu = "unknown"
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, cwd=RESULTS.parent).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "host"], capture_output=True,
                               text=True, cwd=RESULTS.parent).stdout.strip()
        if dirty:
            commit += " (+ uncommitted changes in host/)"
    except OSError:
        commit = "unknown"
    memory = "unknown"
    try:
        for line in pathlib.Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": str(os.cpu_count()), "memory": memory, "python": platform.python_version(),
            "platform": platform.platform(), "commit": commit,
            "loadavg": " ".join(f"{v:.2f}" for v in os.getloadavg()),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def write(name: str, command: str, data: dict, markdown: str) -> pathlib.Path:
    """Write ``results/<name>.json`` and ``results/<name>.md``; returns the markdown path."""
    RESULTS.mkdir(exist_ok=True)
    payload = {"command": command, "machine": machine(), **data}
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    header = (f"Command: `{command}`\n\nMachine: {payload['machine']['cpu']}, "
              f"{payload['machine']['cores']} cores, Python {payload['machine']['python']}, "
              f"commit {payload['machine']['commit']}, {payload['machine']['date']}\n\n")
    path = RESULTS / f"{name}.md"
    path.write_text(markdown.replace("{header}", header))
    return path


def argv_command() -> str:
    return " ".join(["python", *sys.argv]) if sys.argv else "python"


def measured_main(name: str, doc: str, measure_fn, report_fn, rounds: int = 40, calls: int = 2000) -> None:
    """The command line every interleaved-rounds script shares: ``--rounds``, ``--calls`` and
    ``--smoke`` (tiny counts, printed, nothing written); ``measure_fn(rounds, calls, warmup)``
    returns the results, ``report_fn(results, rounds, calls)`` the markdown."""
    import argparse

    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--calls", type=int, default=calls)
    parser.add_argument("--smoke", action="store_true", help="tiny counts; checks the code, writes nothing")
    args = parser.parse_args()
    if args.smoke:
        args.rounds, args.calls = 2, 20
    results = measure_fn(args.rounds, args.calls, 20 if args.smoke else 500)
    markdown = report_fn(results, args.rounds, args.calls)
    if args.smoke:
        print(markdown.replace("{header}", ""))
        return
    path = write(name, argv_command(), {"results": results}, markdown)
    print(path.read_text())
