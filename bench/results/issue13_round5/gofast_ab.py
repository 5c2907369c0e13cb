"""What one add_header stage adds to a whole request: Rust against Go builds, interleaved.

Issue 13, round 5 (the Go stage within 1.5x of the Rust stage). bench/stage_cost.py's
setting (one Falcon app per scenario, a GET with 1 KiB of request headers, add_header's
config, the same WSGI call), but only the scenarios compared, so that a Go build before and
after a change are measured in the same rounds: ``none``, ``rust`` and each ``--go NAME=PATH``.

``--flat`` adds, per Go build, ``NAME_flat``: the same stage with the instance's flat call
path forced on (``GuestInstance.request_call``). The host gives a Go instance the general
path because Go's runtime imports WASI ``poll_oneoff`` (the host then keeps a per-call
clock for it); the flat scenario measures what that host path costs, for the report only.

With ``STAGE_COST_CLOCK=thread`` the scenarios are timed in the thread's CPU time, as in
bench/stage_cost.py (other jobs' load stays out).

Usage (from the repository root):
    [STAGE_COST_CLOCK=thread] .venv/bin/python bench/results/issue13_round5/gofast_ab.py [--rounds N] [--calls N]
        [--go NAME=PATH ...] [--flat] [--max-memory-mb N]
"""

from __future__ import annotations

import argparse
import gc
import os
import pathlib
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

import falcon  # noqa: E402
import falcon.testing  # noqa: E402

from bench import harness  # noqa: E402
from bench.stage_cost import ADD_HEADER_CONFIG, Items, one_kib_of_headers, wsgi_call  # noqa: E402
from mwhost import WasmMiddleware, testing  # noqa: E402
from mwhost.registry import example_module  # noqa: E402
from mwhost.runtime import default_runtime  # noqa: E402
from mwhost.web import load_live  # noqa: E402


def app_for(folder: pathlib.Path, name: str, module, keep: list, flat: bool = False,
            memory_mb: int = 64) -> falcon.App:
    middleware = []
    if module is not None:
        live = load_live(testing.pipeline_settings(folder / name, (name, module, {"config": ADD_HEADER_CONFIG, "max_memory_mb": memory_mb})))
        keep.append(live)
        if flat:
            instance = live.holder.current.stages[0]._idle[0].instance
            instance.request_call = instance._on_request
        middleware.append(WasmMiddleware(live.holder))
    app = falcon.App(middleware=middleware)
    app.add_route("/bench/items", Items())
    result = falcon.testing.TestClient(app).simulate_get(
        "/bench/items", query_string="limit=10", headers=one_kib_of_headers())
    assert result.status_code == 200 and (module is None or result.headers.get("x-mwhost") == "wasm"), name
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--go", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--flat", action="store_true")
    parser.add_argument("--max-memory-mb", type=int, default=64,
                        help="the stages' memory limit (raise it for a build with the GC off)")
    args = parser.parse_args()
    modules: dict[str, object] = {"none": None, "rust": example_module("add_header")}
    for spec in args.go or ["go=" + str(example_module("add_header_go"))]:
        name, _, path = spec.partition("=")
        modules[name] = pathlib.Path(path)
    environ = falcon.testing.create_environ(path="/bench/items", query_string="limit=10",
                                            headers=one_kib_of_headers())
    keep: list = []
    scenarios = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, module in modules.items():
            scenarios[name] = wsgi_call(app_for(pathlib.Path(folder), name, module, keep, memory_mb=args.max_memory_mb), environ)
            if args.flat and name not in ("none", "rust"):
                scenarios[name + "_flat"] = wsgi_call(
                    app_for(pathlib.Path(folder), name + "_flat", module, keep, True, args.max_memory_mb), environ)
        try:
            if os.environ.get("STAGE_COST_CLOCK") == "thread":
                from bench.stage_breakdown import _measure_cpu

                results = _measure_cpu(scenarios, args.rounds, args.calls, 1000)
            else:
                results = harness.measure(scenarios, args.rounds, args.calls, warmup=1000)
        finally:
            scenarios.clear()
            keep.clear()
            gc.collect()
            default_runtime().close_instances()
    none, rust = results["none"]["median_us"], results["rust"]["median_us"]
    print(f"rounds={args.rounds} calls={args.calls} clock={os.environ.get('STAGE_COST_CLOCK', 'wall')} "
          f"load={os.getloadavg()[0]:.2f}")
    print("| scenario | median us | p10 us | p90 us | added vs none | added / rust's |")
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        added = r["median_us"] - none
        print(f"| {name} | {r['median_us']:.2f} | {r['p10_us']:.2f} | {r['p90_us']:.2f} | +{added:.2f} | "
              f"{added / (rust - none):.2f}x |")


if __name__ == "__main__":
    main()
