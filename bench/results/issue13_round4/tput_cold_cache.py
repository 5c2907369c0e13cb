"""In-process: what 3 Rust add_header stages add to the demo echo app's request with warm
caches (back-to-back requests, as bench/stage_breakdown.py) and with cold ones (4 MiB of
other memory copied before each request, which evicts the L1/L2 caches and much of L3, as
a loaded server's kernel, wrk and other worker do between two requests). Only the app call
(or the step) is timed; the steps are bench/stage_breakdown.py's, on a one-stage app's objects. Issue 13 round 4.

Usage: .venv/bin/python bench/results/issue13_round4/tput_cold_cache.py [ROUNDS] [CALLS]
"""
import os
import pathlib
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
from bench import stage_breakdown as sb  # noqa: E402

TRASH = bytearray(os.urandom(4 << 20))


def timed(run, calls: int, cold: bool) -> float:
    clock = time.perf_counter
    total = 0.0
    for _ in range(calls):
        if cold:
            bytes(TRASH)
        started = clock()
        run()
        total += clock() - started
    return total / calls * 1e6


STEPS = ("step_guest_call", "step_pack_from_environ", "step_stage_call", "step_pipeline")


def scenarios(folder: pathlib.Path, environ: dict) -> dict:
    found = {}
    for kind, pipelines in (("echo", ("none", "wat_noop", "rust1", "rust3")), ("trivial", ("none", "rust3"))):
        for pipeline in pipelines:
            app = sb._app(folder, kind, pipeline)
            found[f"{kind}_{pipeline}"] = sb._wsgi(app, environ)
            if kind == "echo" and pipeline in ("wat_noop", "rust1"):
                steps = sb._steps(app, environ)
                for step in STEPS:
                    found[f"{step}_{pipeline}"] = steps[step]
    return found


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    calls = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    environ = sb.falcon.testing.create_environ(path="/bench/items", query_string="limit=10",
                                               headers=sb.sixteen_headers())
    with tempfile.TemporaryDirectory() as folder:
        runs = scenarios(pathlib.Path(folder), environ)
        for run in runs.values():
            for _ in range(300):
                run()
        samples = {(a, c): [] for a in runs for c in (False, True)}
        for _ in range(rounds):
            for cold in (False, True):
                for a, run in runs.items():
                    samples[(a, cold)].append(timed(run, calls, cold))
    m = {key: statistics.median(values) for key, values in samples.items()}
    print(f"# {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, load {os.getloadavg()}, {rounds} rounds x {calls} calls")
    print("| scenario (us per call; added = over the same app with no stage) | warm | cold | warm added | cold added |")
    print("|---|---|---|---|---|")
    for a in runs:
        kind = a.split("_")[0]
        base = (m[(f"{kind}_none", False)], m[(f"{kind}_none", True)]) if kind in ("echo", "trivial") else (0.0, 0.0)
        print(f"| {a} | {m[(a, False)]:.1f} | {m[(a, True)]:.1f} | {m[(a, False)] - base[0]:+.1f} | {m[(a, True)] - base[1]:+.1f} |")


if __name__ == "__main__":
    main()
