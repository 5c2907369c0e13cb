"""Per-stage cost of metrics and tracing, enabled vs disabled, in one run.

The Rust add_header stage, called through ``Stage.call_request`` (what the pipeline calls)
with an 848-byte request, four ways: metrics counted (the default) or replaced by a no-op
meter, and tracing off (no SDK configured: the default) or on (an OpenTelemetry SDK
provider whose exporter drops spans, so the cost measured is mwhost's and the SDK's span
work, not an exporter's I/O). Interleaved rounds, medians. Target: metrics on and tracing
off add at most 1 us per stage call.

Usage: .venv/bin/python bench/observability_cost.py [--rounds N] [--calls N] [--smoke]
"""

from __future__ import annotations

import pathlib
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import falcon.testing  # noqa: E402

from bench import harness  # noqa: E402
from bench.stage_cost import ADD_HEADER_CONFIG, one_kib_of_headers  # noqa: E402
from mwhost import testing  # noqa: E402
from mwhost.pipeline import RequestState  # noqa: E402
from mwhost.registry import example_module  # noqa: E402
from mwhost.web import load_live  # noqa: E402
from mwhost.web.wsgi_headers import environ_headers  # noqa: E402


class NullMeter:
    """What a stage's meter costs when it does nothing."""

    def record(self, seconds: float, ok: bool) -> None:
        pass

    def failure(self, kind: str) -> None:
        pass


def dropping_tracer():
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    class Drop(SpanExporter):
        def export(self, spans):
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(Drop()))
    return provider.get_tracer("mwhost")


def build(folder: pathlib.Path) -> dict:
    import mwhost.pipeline.stage as stage_module

    environ = falcon.testing.create_environ(path="/bench/items", query_string="limit=10",
                                            headers=one_kib_of_headers())
    rust = example_module("add_header")

    def stage(name: str, traced: bool, metered: bool):
        original = stage_module.stage_tracer
        if traced:
            stage_module.stage_tracer = dropping_tracer
        try:
            settings = testing.pipeline_settings(folder / name, (name, rust, {"config": ADD_HEADER_CONFIG}))
            built = load_live(settings).holder.current.stages[0]
        finally:
            stage_module.stage_tracer = original
        if not metered:
            built._meters = {"request": NullMeter(), "response": NullMeter()}
            built._request_meter = built._meters["request"]
        return built

    def call(built):
        headers = environ_headers(environ)

        def run() -> None:
            built.call_request(RequestState("GET", "/bench/items", "limit=10", headers, "127.0.0.1", "http"))
        return run

    return {
        "metrics_off_tracing_off": call(stage("a", traced=False, metered=False)),
        "metrics_on_tracing_off": call(stage("b", traced=False, metered=True)),
        "metrics_off_tracing_on": call(stage("c", traced=True, metered=False)),
        "metrics_on_tracing_on": call(stage("d", traced=True, metered=True)),
    }


def report(results: dict, rounds: int, calls: int) -> str:
    base = results["metrics_off_tracing_off"]["median_us"]
    rows = "\n".join(f"| {name} | {r['median_us']:.2f} | {r['median_us'] - base:+.2f} |" for name, r in results.items())
    metrics = results["metrics_on_tracing_off"]["median_us"] - base
    tracing = results["metrics_off_tracing_on"]["median_us"] - base
    verdict = "met" if metrics <= 1.0 else "MISSED"
    return f"""# Cost of metrics and tracing per stage call

{{header}}{rounds} interleaved rounds of {calls} calls of `Stage.call_request` (Rust add_header,
848-byte request), medians.

| variant | median us | added vs both off, us |
|---|---|---|
{rows}

- metrics on, tracing off: **{metrics:+.2f} us** per stage call (target <= 1 us: {verdict})
- tracing on (OpenTelemetry SDK, spans dropped): **{tracing:+.2f} us** per stage call
- with no SDK configured the plain Stage class is chosen at build time: no per-request check
"""


def measure(rounds: int, calls: int, warmup: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        return harness.measure(build(pathlib.Path(folder)), rounds, calls, warmup=warmup)


def main() -> None:
    harness.measured_main("observability_cost", __doc__, measure, report, rounds=40)


if __name__ == "__main__":
    main()
