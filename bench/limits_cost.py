"""What the sandbox limits cost per guest call, as ratios measured in one run.

For the Rust add_header and its Go twin: the same request through ``GuestInstance.on_request``
on three engine flavours: no epoch interruption (no wall-time limit: not something mwhost
serves with, only the baseline), epoch interruption (the default), and epoch plus fuel
metering (the optional ``fuel`` setting). Interleaved rounds, medians.

Usage: .venv/bin/python bench/limits_cost.py [--rounds N] [--calls N] [--smoke]
"""

from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import falcon.testing  # noqa: E402

from bench import harness  # noqa: E402
from bench.stage_cost import ADD_HEADER_CONFIG, one_kib_of_headers  # noqa: E402
from mwhost.abi import Codec  # noqa: E402
from mwhost.registry import example_module  # noqa: E402
from mwhost.runtime import GuestInstance, GuestModule, Limits, Runtime  # noqa: E402
from mwhost.web.wsgi_headers import environ_headers  # noqa: E402

GUESTS = {"rust": "add_header", "go": "add_header_go"}
FUEL = 10_000_000


def build() -> dict:
    environ = falcon.testing.create_environ(path="/bench/items", query_string="limit=10",
                                            headers=one_kib_of_headers())
    codec = Codec()
    request = codec.encode_request("GET", "/bench/items", "limit=10", environ_headers(environ),
                                   "127.0.0.1", "http", {})
    config = codec.encode_config(ADD_HEADER_CONFIG)
    runtimes = {"no_epoch": Runtime(epoch_interruption=False), "epoch": Runtime()}
    scenarios = {}
    for language, name in GUESTS.items():
        wasm = example_module(name).read_bytes()
        for label, runtime, fuel in (("no_epoch", runtimes["no_epoch"], 0), ("epoch", runtimes["epoch"], 0),
                                     ("epoch_fuel", runtimes["epoch"], FUEL)):
            module = GuestModule.from_bytes(runtime, wasm, fuel=fuel > 0)
            instance = GuestInstance(module, Limits(fuel=fuel), f"{name}-{label}")
            instance.init(config)
            instance.on_request(request)
            scenarios[f"{language}_{label}"] = (lambda i=instance: i.on_request(request))
    return scenarios


def report(results: dict, rounds: int, calls: int) -> str:
    rows, ratios = [], []
    for language in GUESTS:
        base = results[f"{language}_no_epoch"]["median_us"]
        epoch = results[f"{language}_epoch"]["median_us"]
        fuel = results[f"{language}_epoch_fuel"]["median_us"]
        rows.append(f"| {language} | {base:.2f} | {epoch:.2f} | {fuel:.2f} |")
        ratios.append(f"- {language}: epoch on / off **{epoch / base:.2f}x**; "
                      f"fuel on / off (epoch on both) **{fuel / epoch:.2f}x**")
    table = "\n".join(rows)
    ratio_lines = "\n".join(ratios)
    return f"""# Cost of the sandbox limits per guest call

{{header}}{rounds} interleaved rounds of {calls} calls; one `GuestInstance.on_request` of an 848-byte
request (alloc, write, call, read), medians in microseconds.

| guest | no epoch (no wall-time limit) | epoch (default) | epoch + fuel |
|---|---|---|---|
{table}

{ratio_lines}
"""


def main() -> None:
    harness.measured_main("limits_cost", __doc__, lambda rounds, calls, warmup: harness.measure(build(), rounds, calls, warmup), report, rounds=30)


if __name__ == "__main__":
    main()
