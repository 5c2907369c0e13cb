"""In-process A/B of the C request phase, interleaved in one process (issue 13, round 5).

bench/stage_breakdown.py's apps (create_app with the demo echo app and a trivial app, 16
request headers of ~60 bytes, a GET) with no stage, one WAT no-op stage and 1 and 3 Rust
add_header stages, each built twice: ``c`` (plain stages called through
``_accel.run_stages``, the default) and ``py`` (built with ``MWHOST_NO_STAGE_C=1``: every
stage called in Python, as before this round). bench/harness.measure runs all scenarios in
interleaved rounds, so both variants see the same machine load; medians per request. With
``STAGE_BREAKDOWN_CLOCK=thread`` in this thread's CPU time (stage_breakdown's own option:
the time spent waiting for a core stays out).

Usage (from the repository root):
[STAGE_BREAKDOWN_CLOCK=thread] .venv/bin/python bench/results/issue13_round5/stagec_breakdown_ab.py ROUNDS CALLS
"""

from __future__ import annotations

import os
import pathlib
import sys
import tempfile

import falcon.testing

ROOT = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from bench import harness, stage_breakdown  # noqa: E402
from mwhost.runtime import accel  # noqa: E402

PIPELINES = ("none", "wat_noop", "rust1", "rust3")


def build(folder: pathlib.Path) -> dict:
    environ = falcon.testing.create_environ(path="/bench/items", query_string="limit=10",
                                            headers=stage_breakdown.sixteen_headers())
    scenarios = {}
    for variant, switch in (("c", "0"), ("py", "1")):
        os.environ[accel.STAGE_SWITCH] = switch  # read when each pipeline is built
        for kind in stage_breakdown.APPS:
            for pipeline in PIPELINES:
                app = stage_breakdown._app(folder / variant, kind, pipeline)
                scenarios[f"{variant}_{kind}_{pipeline}"] = stage_breakdown._wsgi(app, environ)
    os.environ.pop(accel.STAGE_SWITCH)
    return scenarios


def main() -> None:
    rounds, calls = int(sys.argv[1]), int(sys.argv[2])
    print(f"load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as folder:
        scenarios = build(pathlib.Path(folder))
        if stage_breakdown.CLOCK == "thread":
            results = stage_breakdown._measure_cpu(scenarios, rounds, calls, 500)
        else:
            results = harness.measure(scenarios, rounds, calls, warmup=500)
    print(f"load average after: {os.getloadavg()}")
    print(f"{rounds} interleaved rounds of {calls} calls; medians, us per request "
          f"({'thread CPU time' if stage_breakdown.CLOCK == 'thread' else 'wall time'})\n")
    print("| app, stages | py (before): median | added | c (after): median | added | after - before |")
    print("|---|---|---|---|---|---|")
    for kind in stage_breakdown.APPS:
        base = {v: results[f"{v}_{kind}_none"]["median_us"] for v in ("c", "py")}
        for pipeline in PIPELINES:
            py, c = results[f"py_{kind}_{pipeline}"]["median_us"], results[f"c_{kind}_{pipeline}"]["median_us"]
            print(f"| {kind}, {pipeline} | {py:.2f} | {py - base['py']:+.2f} | {c:.2f} | {c - base['c']:+.2f} | "
                  f"{(c - base['c']) - (py - base['py']):+.2f} |")
    for kind in stage_breakdown.APPS:
        further = {v: (results[f"{v}_{kind}_rust3"]["median_us"] - results[f"{v}_{kind}_rust1"]["median_us"]) / 2
                   for v in ("c", "py")}
        print(f"each further Rust stage, {kind}: py {further['py']:.2f} us, c {further['c']:.2f} us")


if __name__ == "__main__":
    main()
