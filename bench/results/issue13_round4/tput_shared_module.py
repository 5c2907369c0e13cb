"""In-process, cold and warm caches (as tput_cold_cache.py): 3 Rust add_header stages whose
stages each deserialize their own copy of the module (as a worker does today: one
``CompileCache.load`` per stage) against the same 3 stages sharing one loaded module
(CompileCache.load memoized by sha256 for this experiment only). Issue 13 round 4.

Usage: .venv/bin/python bench/results/issue13_round4/tput_shared_module.py [ROUNDS] [CALLS]
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
from bench.results.issue13_round4.tput_cold_cache import timed  # noqa: E402
from mwhost.registry import CompileCache  # noqa: E402


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    calls = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    environ = sb.falcon.testing.create_environ(path="/bench/items", query_string="limit=10",
                                               headers=sb.sixteen_headers())
    original = CompileCache.load
    with tempfile.TemporaryDirectory() as folder:
        runs = {"none": sb._wsgi(sb._app(pathlib.Path(folder), "echo", "none"), environ),
                "rust3_own_modules": sb._wsgi(sb._app(pathlib.Path(folder), "echo", "rust3"), environ)}
        memo = {}

        def shared(self, wasm, fuel=False, sha256=None):
            key = (wasm, fuel)
            if key not in memo:
                memo[key] = original(self, wasm, fuel, sha256)
            return memo[key]
        CompileCache.load = shared
        try:
            app = sb._app(pathlib.Path(folder) / "shared", "echo", "rust3")
        finally:
            CompileCache.load = original
        stages = next(m for m in app._unprepared_middleware if hasattr(m, "holder")).holder.current.stages
        assert len({id(stage.module) for stage in stages}) == 1
        runs["rust3_one_module"] = sb._wsgi(app, environ)
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
    print("| demo echo app | warm us | cold us | warm added | cold added |")
    print("|---|---|---|---|---|")
    for a in runs:
        print(f"| {a} | {m[(a, False)]:.1f} | {m[(a, True)]:.1f} | {m[(a, False)] - m[('none', False)]:+.1f} | "
              f"{m[(a, True)] - m[('none', True)]:+.1f} |")


if __name__ == "__main__":
    main()
