"""Metrics, traces and logs in-process: counts per stage, spans with the SDK, JSON lines."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys

import msgpack
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mwhost import testing
from mwhost.logs import REQUEST, JsonFormatter
from mwhost.metrics import METRICS
from tests.wat import MARKER, const_guest, explodes


def samples(name: str, **labels) -> float:
    """The sum of one metric's samples whose labels include ``labels``."""
    text, _ = METRICS.exposition()
    total = 0.0
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def test_stage_calls_failures_and_durations_are_counted(tmp_path):
    ok = const_guest({"action": "continue"})
    bad = explodes()
    app = testing.client(testing.pipeline_settings(
        tmp_path, ("metered_ok", ok, {}), ("metered_bad", bad, {"on_error": "fail_open"})))
    for _ in range(7):
        assert app.simulate_get(MARKER).status_code == 200
    assert samples("mwhost_stage_calls_total", stage="metered_ok", phase="request", outcome="ok") == 7
    assert samples("mwhost_stage_calls_total", stage="metered_bad", phase="request", outcome="failed") == 7
    assert samples("mwhost_stage_failures_total", stage="metered_bad", kind="abi") == 7
    assert samples("mwhost_stage_call_duration_seconds_count", stage="metered_ok", phase="request") == 7
    assert samples("mwhost_stage_call_duration_seconds_bucket", stage="metered_ok", le="+Inf") == 7
    assert 0 < samples("mwhost_stage_call_duration_seconds_sum", stage="metered_ok") < 7 * 0.1
    assert samples("mwhost_stage_instances", stage="metered_ok") == 1


def test_label_values_are_bounded(tmp_path):
    app = testing.client(testing.pipeline_settings(tmp_path, ("bounded", const_guest({"action": "continue"}), {})))
    app.simulate_get("/some/unique/path/123", headers={"X-Secret": "value-999"})
    text, _ = METRICS.exposition()
    assert b"/some/unique/path/123" not in text and b"value-999" not in text


@pytest.fixture
def sdk_spans(monkeypatch):
    """A real OpenTelemetry SDK provider with an in-memory exporter, for stages built now."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr("mwhost.pipeline.stage.stage_tracer", lambda: provider.get_tracer("mwhost"))
    return exporter


TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_a_span_per_stage_call_under_the_incoming_trace(tmp_path, sdk_spans):
    stage = const_guest({"action": "continue"}, {"set_headers": [["x-traced", "1"]]})
    app = testing.client(testing.pipeline_settings(tmp_path, ("traced", stage, {})))
    assert app.simulate_get("/", headers={"traceparent": TRACEPARENT}).status_code == 200
    spans = sdk_spans.get_finished_spans()
    assert [span.name for span in spans] == ["mwhost traced request", "mwhost traced response"]
    for span in spans:
        assert span.attributes["mwhost.stage"] == "traced"
        assert len(span.attributes["mwhost.version"]) == 64
        assert span.attributes["mwhost.outcome"] in ("continue", "ok")
        assert format(span.context.trace_id, "032x") == "4bf92f3577b34da6a3ce929d0e0e4736"
        assert format(span.parent.span_id, "016x") == "00f067aa0ba902b7"


def test_without_an_sdk_stages_use_the_untraced_call(tmp_path):
    """No SDK provider configured: the stage's call is the plain method, nothing per request."""
    from mwhost.pipeline import Stage
    from mwhost.web import load_live

    settings = testing.pipeline_settings(tmp_path, ("plain", const_guest({"action": "continue"}), {}))
    stage = load_live(settings).holder.current.stages[0]
    assert type(stage) is Stage and stage.call_request == stage.on_request
    assert stage.call_response == stage.on_response


def test_the_incoming_traceparent_reaches_guests_in_ctx(tmp_path):
    app = testing.client(testing.pipeline_settings(tmp_path, ("echo", testing.reference_guest("echo"), {})))
    result = app.simulate_get("/", headers={"traceparent": TRACEPARENT})
    assert msgpack.unpackb(result.content)["ctx"] == {"traceparent": TRACEPARENT}


def test_failures_log_as_json_with_stage_version_kind_and_request_id(tmp_path):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("mwhost")
    logger.addHandler(handler)
    try:
        app = testing.client(testing.pipeline_settings(
            tmp_path, ("json_bad", explodes(), {"on_error": "fail_open"})))
        app.simulate_get(MARKER, headers={"X-Request-Id": "req-77"})
    finally:
        logger.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    failure = next(line for line in lines if line.get("stage") == "json_bad")
    assert failure["level"] == "error" and failure["kind"] == "abi" and failure["phase"] == "request"
    assert len(failure["version"]) == 64 and failure["request_id"] == "req-77"
    assert failure["logger"] == "mwhost.pipeline" and "pid" in failure and "time" in failure


def test_json_lines_carry_the_request_context_when_set():
    record = logging.LogRecord("mwhost.guest", logging.INFO, __file__, 1, "hello", None, None)
    token = REQUEST.set(("rid-1", 9))
    try:
        line = json.loads(JsonFormatter().format(record))
    finally:
        REQUEST.reset(token)
    assert line["request_id"] == "rid-1" and line["generation"] == 9 and line["message"] == "hello"


_PUBLISHED_RACE = """
import threading, time
import mwhost.metrics as m
made = m._Published.__init__
def slow(self):
    time.sleep(0.05)  # widen the window the race needs
    made(self)
m._Published.__init__ = slow
metrics = m.Metrics()
start = threading.Barrier(8)
seen, errors = [], []
def first_use():
    start.wait()
    try:
        seen.append(metrics.published())
    except Exception as err:
        errors.append(repr(err))
threads = [threading.Thread(target=first_use) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
assert not errors, errors
assert len({id(p) for p in seen}) == 1 and len(seen) == 8
print("one")
"""


def test_the_first_use_of_the_metrics_from_many_threads_makes_them_once():
    """Threads that touch the metrics first at the same time (a gthread worker's first /metrics
    and its flush) share one set of prometheus objects instead of one raising DuplicateTimeseries."""
    result = subprocess.run([sys.executable, "-c", _PUBLISHED_RACE], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "one", result.stderr[-2000:]
