"""Wasm instructions per guest call (wasmtime fuel), Rust add_header against Go builds.

Issue 13, round 4 (the Go SDK). Fuel counts about one unit per wasm instruction executed,
so it measures a guest's own work without the machine's noise (not its cache misses).
Each module runs as a stage with a fuel limit; the figure is the fuel one
``GuestInstance.on_request`` consumed: the median over many calls, and the mean, which
includes the calls that also ran Go's garbage collector.

Usage (from the repository root):
    .venv/bin/python bench/results/issue13_round4/gosdk_fuel.py [--calls N] [--go NAME=PATH ...]
"""

from __future__ import annotations

import argparse
import gc
import pathlib
import statistics
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from bench.results.issue13_round4.gosdk_guest_call import CONFIG, sixteen_headers  # noqa: E402
from mwhost import testing  # noqa: E402
from mwhost.abi import Codec  # noqa: E402
from mwhost.registry import example_module  # noqa: E402
from mwhost.runtime import default_runtime  # noqa: E402
from mwhost.web import load_live  # noqa: E402

FUEL = 10 ** 9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--go", action="append", default=[], metavar="NAME=PATH")
    args = parser.parse_args()
    modules: dict[str, object] = {"rust": example_module("add_header")}
    for spec in args.go or ["go=" + str(example_module("add_header_go"))]:
        name, _, path = spec.partition("=")
        modules[name] = pathlib.Path(path)
    codec = Codec()
    requests = {
        "16h": codec.encode_request("GET", "/bench/items", "limit=10", sixteen_headers(), "127.0.0.1", "http", {}),
        "0h": codec.encode_request("GET", "/bench/items", "limit=10", [], "127.0.0.1", "http", {}),
    }
    print(f"calls={args.calls}; fuel (~wasm instructions) per on_request")
    print("| module | request | median | mean (incl. GC) | max |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        keep = []
        for name, module in modules.items():
            settings = testing.pipeline_settings(pathlib.Path(folder) / name,
                                                 (name, module, {"config": CONFIG, "fuel": FUEL}))
            live = load_live(settings)
            keep.append(live)
            instance = live.holder.current.stages[0]._idle[0].instance
            store = instance._store
            for label, request in requests.items():
                used = []
                for _ in range(args.calls):
                    instance.on_request(request)
                    used.append(FUEL - store.get_fuel())
                print(f"| {name} | {label} | {statistics.median(used):.0f} | {statistics.mean(used):.0f} | {max(used)} |")
        keep.clear()
        gc.collect()
        default_runtime().close_instances()


if __name__ == "__main__":
    main()
