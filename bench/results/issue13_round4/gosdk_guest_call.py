"""The guest call alone (``GuestInstance.on_request``), Rust add_header against Go builds.

Issue 13, round 4 (the Go SDK): interleaved rounds in one process, medians per call, for
the same Request with 16 headers of ~60 bytes and with none. Every module runs as a stage
with add_header's config, so the call is exactly the one a request makes.

Usage (from the repository root):
    .venv/bin/python bench/results/issue13_round4/gosdk_guest_call.py [--rounds N] [--calls N]
        [--go NAME=PATH ...]

Without ``--go`` it measures the packaged add_header_go; each ``--go NAME=PATH`` adds a Go
build (e.g. the build before a change), measured in the same rounds.
"""

from __future__ import annotations

import argparse
import gc
import pathlib
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from bench import harness  # noqa: E402
from mwhost import testing  # noqa: E402
from mwhost.abi import Codec  # noqa: E402
from mwhost.registry import example_module  # noqa: E402
from mwhost.runtime import default_runtime  # noqa: E402
from mwhost.web import load_live  # noqa: E402

CONFIG = {"request_headers": {"x-mwhost-demo": "1"}, "response_headers": {"x-mwhost": "wasm"}}


def sixteen_headers() -> list[tuple[str, str]]:
    """16 request headers of ~60 bytes each (name + value), as the issue's target says."""
    return [(f"x-bench-header-{i:02d}", "v" * 40 + f"-{i:02d}") for i in range(16)]


#: the live pipelines, kept so that their instances stay open while measured
KEEP: list = []


def instance_of(folder: pathlib.Path, name: str, module) -> object:
    settings = testing.pipeline_settings(folder / name, (name, module, {"config": CONFIG}))
    live = load_live(settings)
    KEEP.append(live)
    return live.holder.current.stages[0]._idle[0].instance


def call(instance, request: bytes, scenario: str):
    def run() -> bytes:
        try:
            return instance.on_request(request)
        except Exception as err:
            raise RuntimeError(f"scenario {scenario}: {err}") from err
    return run


def build(folder: pathlib.Path, modules: dict[str, object]) -> dict:
    codec = Codec()
    requests = {
        "16h": codec.encode_request("GET", "/bench/items", "limit=10", sixteen_headers(), "127.0.0.1", "http", {}),
        "0h": codec.encode_request("GET", "/bench/items", "limit=10", [], "127.0.0.1", "http", {}),
    }
    scenarios = {}
    for name, module in modules.items():
        instance = instance_of(folder, name, module)
        answers = {instance.on_request(r) for r in requests.values()}
        assert len(answers) == 1, (name, answers)
        for label, request in requests.items():
            scenarios[f"{name}_{label}"] = call(instance, request, f"{name}_{label}")
    return scenarios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--go", action="append", default=[], metavar="NAME=PATH")
    args = parser.parse_args()
    modules: dict[str, object] = {"rust": example_module("add_header")}
    for spec in args.go or ["go=" + str(example_module("add_header_go"))]:
        name, _, path = spec.partition("=")
        modules[name] = pathlib.Path(path)
    with tempfile.TemporaryDirectory() as folder:
        scenarios = build(pathlib.Path(folder), modules)
        try:
            results = harness.measure(scenarios, args.rounds, args.calls, warmup=2000)
        finally:
            scenarios.clear()
            KEEP.clear()
            gc.collect()
            default_runtime().close_instances()
    print(f"rounds={args.rounds} calls={args.calls}")
    print("| scenario | median us | p10 us | p90 us | / rust (same headers) |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        base = results["rust_" + name.rsplit("_", 1)[1]]["median_us"]
        print(f"| {name} | {r['median_us']:.2f} | {r['p10_us']:.2f} | {r['p90_us']:.2f} | {r['median_us'] / base:.2f}x |")


if __name__ == "__main__":
    main()
