"""Cold start and instance cost per guest: compile, load from the .cwasm cache, new instance.

For each example: compile from bytes (what a cache miss costs, once per machine), load
the compiled artifact (what every worker does at start), and create an instance with
``_initialize`` (Go) and ``mw_init`` (what a stage does per thread when it is loaded), plus
the resident memory each instance adds.

Usage: .venv/bin/python bench/instantiate.py [--smoke]
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from bench import harness  # noqa: E402
from mwhost.abi import Codec  # noqa: E402
from mwhost.registry import example_module  # noqa: E402
from mwhost.runtime import GuestInstance, GuestModule, Limits, Runtime  # noqa: E402

GUESTS = {
    "add_header (Rust)": ("add_header", {"request_headers": {"x-a": "1"}, "response_headers": {"x-b": "2"}}),
    "add_header_go (Go)": ("add_header_go", {"request_headers": {"x-a": "1"}, "response_headers": {"x-b": "2"}}),
    "request_id (Go)": ("request_id", {}),
}


def rss_kib() -> int:
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def timed_ms(run, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def measure_guest(runtime: Runtime, name: str, config: dict, folder: pathlib.Path,
                  compiles: int, loads: int, instances: int) -> dict:
    wasm = example_module(name).read_bytes()
    config_bytes = Codec().encode_config(config)
    module = GuestModule.from_bytes(runtime, wasm)
    artifact = folder / f"{name}.cwasm"
    artifact.write_bytes(module.serialize())

    def new_instance() -> GuestInstance:
        instance = GuestInstance(module, Limits(), name)
        instance.init(config_bytes)
        return instance

    result = {
        "wasm_bytes": len(wasm),
        "compile_ms": timed_ms(lambda: GuestModule.from_bytes(runtime, wasm), compiles),
        "load_cached_ms": timed_ms(lambda: GuestModule.from_compiled(runtime, str(artifact), module.sha256), loads),
        "instance_ms": timed_ms(lambda: new_instance().close(), instances),
    }
    before = rss_kib()
    kept = [new_instance() for _ in range(instances)]
    result["rss_per_instance_kib"] = (rss_kib() - before) / len(kept)
    for instance in kept:
        instance.close()
    return result


def run(counts: tuple[int, int, int], guests: dict = GUESTS) -> dict:
    """``measure_guest`` for each of ``guests`` (label -> (example name, config)): medians of
    ``counts`` = (compiles, cache loads, instances)."""
    runtime = Runtime(parallel_compilation=True)
    try:
        with tempfile.TemporaryDirectory() as folder:
            return {label: measure_guest(runtime, name, config, pathlib.Path(folder), *counts)
                    for label, (name, config) in guests.items()}
    finally:
        runtime.close_instances()


def report(results: dict, counts: tuple[int, int, int]) -> str:
    rows = "\n".join(
        f"| {name} | {r['wasm_bytes'] / 1024:.0f} | {r['compile_ms']:.1f} | {r['load_cached_ms']:.2f} | "
        f"{r['instance_ms']:.2f} | {r['rss_per_instance_kib']:.0f} |" for name, r in results.items())
    return f"""# Cold start and instance cost

{{header}}Medians of {counts[0]} compiles, {counts[1]} cache loads and {counts[2]} instances per guest;
the instance time includes `_initialize` (Go) and `mw_init` with the config.

| guest | size KiB | compile ms | load from .cwasm ms | new instance ms | RSS per instance KiB |
|---|---|---|---|---|---|
{rows}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny counts; checks the code, writes nothing")
    args = parser.parse_args()
    counts = (1, 2, 2) if args.smoke else (3, 50, 50)
    results = run(counts)
    markdown = report(results, counts)
    if args.smoke:
        print(markdown.replace("{header}", ""))
        return
    path = harness.write("instantiate", harness.argv_command(), {"results": results}, markdown)
    print(path.read_text())


if __name__ == "__main__":
    main()
