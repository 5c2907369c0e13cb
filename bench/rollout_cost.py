"""What routing a stage under a canary rollout adds per request, in one run.

Two pairs, each called the way a request calls it: ``call_request`` of a fresh RequestState
with the 1 KiB of headers of bench/stage_cost.py plus ``X-User`` (the rollout's key is
``header:x-user``), then, for the canary, the web layer's ``responded`` (the 5xx gate):

- routing alone: a stage that answers at once (no guest) as a plain stage vs inside a
  ``CanaryStage`` (force header scan, key read, sha256 bucket, tallies, two clock reads);
- with a guest: the Rust add_header ``Stage`` vs a ``CanaryStage`` of two of them.

Interleaved rounds, medians. Target: at most 1 us added per request per stage under
rollout; stages with no rollout are plain ``Stage`` objects and pay nothing.

Usage: .venv/bin/python bench/rollout_cost.py [--rounds N] [--calls N] [--smoke]
"""

from __future__ import annotations

import os
import pathlib
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import falcon.testing  # noqa: E402

from bench import harness  # noqa: E402
from bench.stage_cost import ADD_HEADER_CONFIG, one_kib_of_headers  # noqa: E402
from mwhost import testing  # noqa: E402
from mwhost.abi.messages import CONTINUE  # noqa: E402
from mwhost.pipeline import RequestState  # noqa: E402
from mwhost.pipeline.rollout_stage import TALLIES, CanaryStage  # noqa: E402
from mwhost.registry import example_module  # noqa: E402
from mwhost.web import load_live  # noqa: E402
from mwhost.web.wsgi_headers import environ_headers  # noqa: E402

SALT = "a1b2c3d4e5f60718"


class InstantStage:
    """A stage that continues at once: what is left is the routing around it."""

    has_on_response = False
    fail_open = False
    version = "0" * 64
    idle_instances = 1  # always warm: every call is timed, as a real stage's warm calls are

    def __init__(self, name: str) -> None:
        self.name = name
        self.key = (name,)

    def call_request(self, state: RequestState):
        return CONTINUE

    def close(self) -> None:
        pass


def canary(baseline, candidate) -> CanaryStage:
    return CanaryStage(baseline, candidate, percent=50, salt=SALT, key="header:x-user",
                       step_key="bench/0/0.000")


def plain_call(stage, headers):
    def run() -> None:
        stage.call_request(RequestState("GET", "/bench/items", "limit=10", headers, "127.0.0.1", "http"))
    return run


def routed_call(stage: CanaryStage, headers):
    def run() -> None:
        state = RequestState("GET", "/bench/items", "limit=10", headers, "127.0.0.1", "http")
        stage.call_request(state)
        for routed, variant in state.variants.values():  # the web layer's 5xx gate
            routed.responded(variant, 200)
    return run


def build(folder: pathlib.Path) -> dict:
    environ = falcon.testing.create_environ(path="/bench/items", query_string="limit=10",
                                            headers={**one_kib_of_headers(), "X-User": "user-4711"})
    headers = environ_headers(environ)
    rust = example_module("add_header")

    def guest_stage(name: str):
        settings = testing.pipeline_settings(folder / name, ("tag", rust, {"config": ADD_HEADER_CONFIG}))
        return load_live(settings).holder.current.stages[0]

    instant = InstantStage("tag")
    return {
        "instant_plain": plain_call(instant, headers),
        "instant_canary": routed_call(canary(instant, InstantStage("tag")), headers),
        "rust_plain": plain_call(guest_stage("a"), headers),
        "rust_canary": routed_call(canary(guest_stage("b"), guest_stage("c")), headers),
    }


def report(results: dict, rounds: int, calls: int) -> str:
    rows = "\n".join(f"| {name} | {r['median_us']:.2f} | {r['p10_us']:.2f} | {r['p90_us']:.2f} |"
                     for name, r in results.items())
    routing = results["instant_canary"]["median_us"] - results["instant_plain"]["median_us"]
    with_guest = results["rust_canary"]["median_us"] - results["rust_plain"]["median_us"]
    verdict = "met" if routing <= 1.0 else "MISSED"
    return f"""# Cost of routing a stage under a canary rollout

{{header}}{rounds} interleaved rounds of {calls} requests through one stage: `call_request` of a
fresh RequestState (1 KiB of headers plus `X-User`, key `header:x-user`), and for a canary
the web layer's `responded` call; medians in microseconds.

| scenario | median us | p10 | p90 |
|---|---|---|---|
{rows}

- routing added per request per stage under rollout (instant stage): **{routing:+.2f} us** (target <= 1 us: {verdict})
- added around a real guest (Rust add_header): **{with_guest:+.2f} us** (the guest call's own noise included)
- stages with no rollout are plain `Stage` objects built as before: they pay nothing
- load average at the end of the run: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores (a shared
  machine inflates every figure above; compare the rows, measured side by side)
"""


def measure(rounds: int, calls: int, warmup: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        try:
            return harness.measure(build(pathlib.Path(folder)), rounds, calls, warmup=warmup)
        finally:
            TALLIES.forget(set())


def main() -> None:
    harness.measured_main("rollout_cost", __doc__, measure, report, rounds=40)


if __name__ == "__main__":
    main()
