"""The whole benchmark suite in one run: JSON results, a markdown report, PNG plots.

Sections (each reuses the module that measures it; loopback only, every run bounded):
  1. stage_cost    per-stage cost in-process: none, native Python, WAT no-op, Rust, Go,
                   the Rust module through wasmtime-py's public API, an Extism plugin
                   through the Extism Python SDK; and the guest call alone (bench/stage_cost.py)
  2. throughput    gunicorn + wrk: 0/1/3/5 Rust stages and 3 native Python middlewares,
                   sync and gthread workers (bench/throughput.py)
  3. swap_load     requests/s and errors over time during 50 swaps (bench/swap_load.py)
  4. memory_swaps  RSS per gunicorn worker over 1000 swaps (bench/memory_swaps.py)
  5. cold_start    compile vs load from cache vs activation, Rust and Go
                   (bench/instantiate.py, bench/propagation.py)

Writes OUT/REPORT.md, OUT/results/suite.json and OUT/plots/*.png (OUT defaults to bench/).
``--smoke`` runs every section with tiny counts (well under a minute) and needs ``--out``
(the test suite gives it a temporary folder).

Usage: .venv/bin/python bench/run_all.py [--smoke --out DIR] [--only SECTION ...] [--render]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time
import traceback

BENCH = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from bench import harness  # noqa: E402

SECTIONS = ("stage_cost", "throughput", "swap_load", "memory_swaps", "cold_start")

#: (full, smoke) parameters of each section
PARAMS = {
    "stage_cost": ({"rounds": 40, "calls": 2000, "warmup": 500}, {"rounds": 2, "calls": 20, "warmup": 20}),
    "throughput": ({"duration_s": 4.0, "rounds": 5, "warmup_s": 1.0},
                   {"duration_s": 1.0, "rounds": 1, "warmup_s": 0.0}),
    "swap_load": ({"swaps": 50}, {"swaps": 3}),
    "memory_swaps": ({"swaps": 1000, "sample_every": 10, "control_swaps": 300},
                     {"swaps": 10, "sample_every": 2, "control_swaps": 5}),
    "cold_start": ({"counts": (3, 50, 50), "activations": 30}, {"counts": (1, 2, 2), "activations": 2}),
}

COLD_START_GUESTS = {
    "Rust add_header": ("add_header", {"request_headers": {"x-a": "1"}, "response_headers": {"x-b": "2"}}),
    "Go add_header_go": ("add_header_go", {"request_headers": {"x-a": "1"}, "response_headers": {"x-b": "2"}}),
}


def run_stage_cost(p: dict, smoke: bool) -> dict:
    from bench import stage_cost

    results = stage_cost.run(p["rounds"], p["calls"], p["warmup"])
    return {**p, "results": results, "summary": stage_cost.summary(results)}


def run_throughput(p: dict, smoke: bool) -> dict:
    from bench import throughput

    return throughput.run(p["duration_s"], p["rounds"], p["warmup_s"], smoke=smoke)


def run_swap_load(p: dict, smoke: bool) -> dict:
    from bench import swap_load

    return swap_load.run(p["swaps"])


def run_memory_swaps(p: dict, smoke: bool) -> dict:
    from bench import memory_swaps

    return memory_swaps.run(p["swaps"], p["sample_every"], p["control_swaps"])


def run_cold_start(p: dict, smoke: bool) -> dict:
    from bench import instantiate, propagation

    measured = instantiate.run(p["counts"], COLD_START_GUESTS)
    activation = propagation.activation(p["activations"], {label: name for label, (name, _) in
                                                          COLD_START_GUESTS.items()})
    return {"counts": p["counts"], "activations": p["activations"], "instantiate": measured,
            "activation_ms": activation}


RUNNERS = {"stage_cost": run_stage_cost, "throughput": run_throughput, "swap_load": run_swap_load,
           "memory_swaps": run_memory_swaps, "cold_start": run_cold_start}


def versions() -> dict:
    import importlib.metadata

    from bench import throughput

    found = {}
    for package in ("wasmtime", "extism", "extism-sys", "falcon", "gunicorn", "msgpack", "matplotlib"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "missing"
    try:
        found["wrk"] = throughput.wrk_version()
    except (OSError, RuntimeError):
        found["wrk"] = "missing"
    return found


def run(sections: list[str], smoke: bool) -> dict:
    results: dict = {"smoke": smoke, "machine": harness.machine(), "versions": versions(),
                     "seconds": {}, "errors": {}}
    started = time.monotonic()
    for name in sections:
        params = PARAMS[name][1 if smoke else 0]
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        began = time.monotonic()
        try:
            results[name] = RUNNERS[name](params, smoke)
        except Exception:  # noqa: BLE001 - one failed section must not lose the others
            results["errors"][name] = traceback.format_exc()
            print(results["errors"][name], file=sys.stderr, flush=True)
        results["seconds"][name] = round(time.monotonic() - began, 1)
        print(f"[bench] {name} done in {results['seconds'][name]} s", file=sys.stderr, flush=True)
    results["seconds"]["total"] = round(time.monotonic() - started, 1)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny counts: checks the code in seconds")
    parser.add_argument("--out", type=pathlib.Path, help="output folder (default bench/; required with --smoke)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    parser.add_argument("--render", action="store_true",
                        help="measure nothing: redraw the report and plots from OUT/results/suite.json")
    args = parser.parse_args()
    if args.smoke and args.out is None:
        parser.error("--smoke writes to a folder of its own: give --out DIR")
    out = (args.out or BENCH).resolve()
    if args.render:
        results = json.loads((out / "results" / "suite.json").read_text())
    else:
        results = run(list(args.only or SECTIONS), args.smoke)
        results["command"] = " ".join([".venv/bin/python", "bench/run_all.py", *sys.argv[1:]])

    from bench import plots, report

    (out / "results").mkdir(parents=True, exist_ok=True)
    (out / "results" / "suite.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    made = plots.all_plots(results, out / "plots")
    (out / "REPORT.md").write_text(report.render(results, [p.name for p in made]))
    print(f"[bench] wrote {out / 'REPORT.md'}, {out / 'results' / 'suite.json'} and {len(made)} plots "
          f"in {results['seconds']['total']} s", file=sys.stderr)
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
