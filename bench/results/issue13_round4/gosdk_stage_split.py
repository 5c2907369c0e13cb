"""A whole request's added cost split into the guest call and the rest, Rust against Go builds.

Issue 13, round 4 (the Go SDK). bench/stage_cost.py's setting (one Falcon app per scenario,
a GET with 1 KiB of request headers, add_header's config), interleaved rounds in one
process. Each stage's instance is wrapped in a timer, so every scenario also reports the
time spent inside ``GuestInstance.on_request`` per request: what a stage adds beyond its own
guest call is the rest (host work, and any slowdown the guest causes in it).

Usage (from the repository root):
    .venv/bin/python bench/results/issue13_round4/gosdk_stage_split.py [--rounds N] [--calls N]
        [--go NAME=PATH ...]
"""

from __future__ import annotations

import argparse
import gc
import pathlib
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

import falcon  # noqa: E402
import falcon.testing  # noqa: E402

from bench.stage_cost import ADD_HEADER_CONFIG, Items, one_kib_of_headers, wsgi_call  # noqa: E402
from mwhost import WasmMiddleware, testing  # noqa: E402
from mwhost.registry import example_module  # noqa: E402
from mwhost.runtime import default_runtime  # noqa: E402
from mwhost.web import load_live  # noqa: E402


class TimedInstance:
    """Delegates to a GuestInstance and adds up the time spent in ``on_request``."""

    def __init__(self, instance) -> None:
        self.instance = instance
        self.ns = 0

    def on_request(self, message: bytes, _clock=time.perf_counter_ns) -> bytes:
        started = _clock()
        try:
            return self.instance.on_request(message)
        finally:
            self.ns += _clock() - started

    def __getattr__(self, name: str):
        return getattr(self.instance, name)


def build(folder: pathlib.Path, modules: dict[str, object]) -> tuple[dict, dict, list]:
    environ = falcon.testing.create_environ(path="/bench/items", query_string="limit=10",
                                            headers=one_kib_of_headers())
    keep, timers, scenarios = [], {}, {}
    for name, module in {"none": None, **modules}.items():
        app = falcon.App(middleware=[] if module is None else [stage_for(folder, name, module, keep, timers)])
        app.add_route("/bench/items", Items())
        result = falcon.testing.TestClient(app).simulate_get(
            "/bench/items", query_string="limit=10", headers=one_kib_of_headers())
        assert result.status_code == 200 and (module is None or result.headers.get("x-mwhost") == "wasm"), name
        scenarios[name] = wsgi_call(app, environ)
    return scenarios, timers, keep


def stage_for(folder: pathlib.Path, name: str, module, keep: list, timers: dict) -> WasmMiddleware:
    settings = testing.pipeline_settings(folder / name, (name, module, {"config": ADD_HEADER_CONFIG}))
    live = load_live(settings)
    keep.append(live)
    slot = live.holder.current.stages[0]._idle[0]
    slot.instance = timers[name] = TimedInstance(slot.instance)
    return WasmMiddleware(live.holder)


def measure(scenarios: dict, timers: dict, rounds: int, calls: int) -> dict:
    for run in scenarios.values():
        for _ in range(500):
            run()
    whole = {name: [] for name in scenarios}
    inside = {name: [] for name in scenarios}
    for _ in range(rounds):
        for name, run in scenarios.items():
            timer = timers.get(name)
            before = timer.ns if timer else 0
            started = time.perf_counter()
            for _ in range(calls):
                run()
            whole[name].append((time.perf_counter() - started) / calls * 1e6)
            inside[name].append(((timer.ns - before) / calls / 1e3) if timer else 0.0)
    return {name: (statistics.median(whole[name]), statistics.median(inside[name])) for name in scenarios}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--go", action="append", default=[], metavar="NAME=PATH")
    args = parser.parse_args()
    modules: dict[str, object] = {"rust": example_module("add_header")}
    for spec in args.go or ["go=" + str(example_module("add_header_go"))]:
        name, _, path = spec.partition("=")
        modules[name] = pathlib.Path(path)
    with tempfile.TemporaryDirectory() as folder:
        scenarios, timers, keep = build(pathlib.Path(folder), modules)
        try:
            results = measure(scenarios, timers, args.rounds, args.calls)
        finally:
            scenarios.clear()
            timers.clear()
            keep.clear()
            gc.collect()
            default_runtime().close_instances()
    base = results["none"][0]
    rust_added = results["rust"][0] - base
    print(f"rounds={args.rounds} calls={args.calls}; medians per request, us")
    print("| scenario | whole request | added vs none | in the guest call | added minus the call | added / rust's |")
    print("|---|---|---|---|---|---|")
    for name, (whole, call) in results.items():
        added = whole - base
        print(f"| {name} | {whole:.2f} | {added:+.2f} | {call:.2f} | {added - call:+.2f} | "
              f"{added / rust_added:.2f}x |")


if __name__ == "__main__":
    main()
