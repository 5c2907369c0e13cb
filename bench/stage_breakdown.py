"""Where one stage's cost goes: the per-step breakdown and the issue-13 targets (issue 13).

Whole requests through ``mwhost.create_app(config)`` (16 request headers of ~60 bytes, a GET),
interleaved in one process, for two apps: the demo echo (``create_app`` without an app) and
a trivial app (a sink answering "ok", the pipeline added with ``create_app(config, app)``).
Each app is built with no stage, one WAT no-op stage, and 1 and 3 Rust add_header stages
(each with its own header names); the ``*_python`` scenarios are the same apps on the
pure-Python hot path (the C accelerator off, as with ``MWHOST_NO_ACCEL=1``), measured in the
same rounds. The step rows time, alone and with the same inputs, each piece of work the
middleware does per stage call (``py_`` rows: the pure-Python path's version of a step), so
their sum can be set against the whole-request difference; the ``further_`` rows are a
stage after an earlier one edited a request header (add_header's case: the request packed
again, from the packed header entries and the overlay).

With ``STAGE_BREAKDOWN_CLOCK=thread`` every scenario is timed in the thread's CPU time
(``time.thread_time``) instead of wall time: on a machine other jobs load, the time this
thread waited for a core then stays out of the figures (the guest call runs on this thread).

Usage: [STAGE_BREAKDOWN_CLOCK=thread] .venv/bin/python bench/stage_breakdown.py [--rounds N] [--calls N] [--smoke]
"""

from __future__ import annotations

import gc
import os
import pathlib
import sys
import tempfile
import time

import falcon
import falcon.testing

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from bench import harness  # noqa: E402
from mwhost import create_app, testing  # noqa: E402
from mwhost.abi.codec import decode_action  # noqa: E402
from mwhost.pipeline import RequestState  # noqa: E402
from mwhost.runtime import GuestInstance  # noqa: E402
from mwhost.registry import example_module  # noqa: E402
from mwhost.runtime import accel, default_runtime  # noqa: E402
from mwhost.web.wsgi_headers import environ_headers  # noqa: E402

APPS = ("echo", "trivial")
PIPELINES = ("none", "wat_noop", "rust1", "rust3")
#: the same apps on the pure-Python path (built and called with the accelerator off)
PYTHON_PIPELINES = ("wat_noop", "rust1")
#: "thread": time in the thread's CPU time (see the module docstring); else wall time
CLOCK = os.environ.get("STAGE_BREAKDOWN_CLOCK", "wall")


def sixteen_headers() -> dict[str, str]:
    """16 request headers of ~60 bytes each (name + value)."""
    return {f"X-Bench-Header-{i:02d}": "v" * 40 + f"-{i:02d}" for i in range(16)}


class Ok:
    def __call__(self, req: falcon.Request, resp: falcon.Response, **_: str) -> None:
        resp.text = "ok"


def _rust(index: int) -> tuple:
    config = {"request_headers": {f"x-demo-{index}": "1"}, "response_headers": {f"x-mwhost-{index}": "wasm"}}
    return (f"rust{index}", example_module("add_header"), {"config": config})


def _stages(pipeline: str) -> tuple:
    pipeline = pipeline.removesuffix("_python")
    if pipeline == "none":
        return ()
    if pipeline == "wat_noop":
        return (("noop", testing.reference_guest("noop"), {}),)
    return tuple(_rust(i) for i in range(int(pipeline[-1])))


def _app(folder: pathlib.Path, kind: str, pipeline: str) -> falcon.App:
    settings = testing.pipeline_settings(folder / f"{kind}-{pipeline}", *_stages(pipeline),
                                         data_dir=folder / "data")
    if kind == "echo":
        return create_app(settings)
    trivial = falcon.App()
    trivial.add_sink(Ok(), r"/")
    return create_app(settings, trivial)


def _wsgi(app: falcon.App, environ: dict):
    def start_response(status, headers, exc_info=None):
        return None

    def run() -> None:
        for _ in app(dict(environ), start_response):
            pass
    return run


def _without_accel(run):
    """``run`` on the pure-Python path (the packing reads the switch at call time)."""
    def python_path() -> None:
        native, accel.ACCEL = accel.ACCEL, None
        try:
            run()
        finally:
            accel.ACCEL = native
    return python_path


def _steps(app: falcon.App, environ: dict) -> dict:
    """The per-stage steps alone, on the one-stage WAT no-op app's own objects."""
    middleware = next(m for m in app._unprepared_middleware if hasattr(m, "holder"))
    stage = middleware.holder.current.stages[0]
    slot = stage._idle[0]
    headers = environ_headers(environ)
    state = RequestState("GET", "/bench/items", "limit=10", headers, "127.0.0.1", "http")
    message = slot.codec.encode_request("GET", "/bench/items", "limit=10", headers, "127.0.0.1", "http", {})
    raw = slot.instance.on_request(message)
    action = decode_action(raw)
    meter = stage._meters["request"]
    req = falcon.Request(dict(environ))

    def lazy_state() -> RequestState:
        return RequestState.from_environ("GET", "/bench/items", "limit=10", environ, "127.0.0.1", "http")

    steps = {
        "step_request_state": lambda: RequestState.from_environ(req.method, req.path, req.query_string, req.env,
                                                                req.remote_addr or "", req.scheme),
        "step_pack_from_environ": lambda: lazy_state().pack(slot.codec),
        "step_guest_call": lambda: slot.instance.on_request(message),
        "step_decode_uncached": lambda: decode_action(raw),
        "step_apply": lambda: state.apply(action),
        "step_meter_and_clock": lambda: meter.record(time.perf_counter() - time.perf_counter(), True),
        "step_stage_call": lambda: stage.call_request(state),
        "step_pipeline": lambda: middleware.holder.current.on_request(lazy_state()),
        # the header list from the environ (in C), made only when a stage edits headers
        "step_environ_headers": lambda: environ_headers(environ),
        # the pure-Python path's versions of the steps the accelerator replaces
        "step_py_environ_headers": _without_accel(lambda: environ_headers(environ)),
        "step_py_encode_request": lambda: slot.codec.encode_request(
            "GET", "/bench/items", "limit=10", headers, "127.0.0.1", "http", {}),
    }
    native, accel.ACCEL = accel.ACCEL, None
    try:
        python_instance = GuestInstance(stage.module, stage.limits, "bench@python")
    finally:
        accel.ACCEL = native
    steps["step_py_guest_call"] = lambda: python_instance.on_request(message)
    return steps


def _further_steps(app: falcon.App, environ: dict) -> dict:
    """A further Rust stage's own steps, on the three-stage app's objects: the first stage has
    run and edited a request header; the second stage packs and is called."""
    middleware = next(m for m in app._unprepared_middleware if hasattr(m, "holder"))
    first, second = middleware.holder.current.stages[:2]

    def edited_state() -> RequestState:
        state = RequestState.from_environ("GET", "/bench/items", "limit=10", environ, "127.0.0.1", "http")
        state.apply(first.call_request(state))
        return state

    state = edited_state()
    codec = second._idle[-1].codec
    action = second.call_request(state)

    def stage_call() -> None:
        state.message = None  # packed again, as after the first stage's edit
        second.call_request(state)

    return {
        "step_further_pack_after_edit": lambda: state.pack(codec),
        "step_further_stage_call": stage_call,
        "step_further_apply": lambda: state.apply(action),
    }


def build(folder: pathlib.Path) -> dict:
    environ = falcon.testing.create_environ(path="/bench/items", query_string="limit=10",
                                            headers=sixteen_headers())
    scenarios = {}
    for kind in APPS:
        for pipeline in PIPELINES:
            app = _app(folder, kind, pipeline)
            result = falcon.testing.TestClient(app).simulate_get("/bench/items", query_string="limit=10",
                                                                 headers=sixteen_headers())
            assert result.status_code == 200, (kind, pipeline, result.text)
            if pipeline.startswith("rust"):
                assert result.headers.get("x-mwhost-0") == "wasm", (kind, pipeline)
            scenarios[f"{kind}_{pipeline}"] = _wsgi(app, environ)
            if kind == "trivial" and pipeline == "wat_noop":
                scenarios.update(_steps(app, environ))
            if kind == "trivial" and pipeline == "rust3":
                scenarios.update(_further_steps(app, environ))
    native, accel.ACCEL = accel.ACCEL, None
    try:
        for kind in APPS:
            for pipeline in PYTHON_PIPELINES:
                app = _app(folder, kind, pipeline + "_python")
                scenarios[f"{kind}_{pipeline}_python"] = _without_accel(_wsgi(app, environ))
    finally:
        accel.ACCEL = native
    return scenarios


def run(rounds: int, calls: int, warmup: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        scenarios = build(pathlib.Path(folder))
        try:
            if CLOCK == "thread":
                return _measure_cpu(scenarios, rounds, calls, warmup)
            return harness.measure(scenarios, rounds, calls, warmup=warmup)
        finally:
            scenarios.clear()
            gc.collect()
            default_runtime().close_instances()


def _measure_cpu(scenarios: dict, rounds: int, calls: int, warmup: int) -> dict:
    """harness.measure's interleaved rounds, timed in this thread's CPU time."""
    for run_ in scenarios.values():
        for _ in range(warmup):
            run_()
    samples: dict[str, list[float]] = {name: [] for name in scenarios}
    clock = time.thread_time
    for _ in range(rounds):
        for name, run_ in scenarios.items():
            started = clock()
            for _ in range(calls):
                run_()
            samples[name].append((clock() - started) / calls * 1e6)
    return {name: harness._summary(values) for name, values in samples.items()}


def summary(results: dict) -> dict:
    """Added cost over the same app without stages, per app and pipeline."""
    added = {}
    for kind in APPS:
        base = results[f"{kind}_none"]["median_us"]
        for pipeline in PIPELINES[1:] + tuple(f"{p}_python" for p in PYTHON_PIPELINES):
            if f"{kind}_{pipeline}" in results:
                added[f"{kind}_{pipeline}"] = results[f"{kind}_{pipeline}"]["median_us"] - base
    further = {kind: (added[f"{kind}_rust3"] - added[f"{kind}_rust1"]) / 2 for kind in APPS}
    return {"added_us": added, "further_rust_stage_us": further}


def report(results: dict, rounds: int, calls: int) -> str:
    d = summary(results)
    rows = "\n".join(f"| {name} | {v['median_us']:.2f} | {v['p10_us']:.2f} | {v['p90_us']:.2f} | "
                     f"{d['added_us'].get(name, 0.0):+.2f} |"
                     for name, v in results.items() if not name.startswith("step_"))
    steps = "\n".join(f"| {name[5:]} | {v['median_us']:.2f} | {v['p10_us']:.2f} | {v['p90_us']:.2f} |"
                      for name, v in results.items() if name.startswith("step_"))
    return f"""# Stage cost breakdown (create_app, 16 request headers of ~60 bytes)

{{header}}{rounds} interleaved rounds of {calls} calls per scenario; per-call medians
({"the thread's CPU time" if CLOCK == "thread" else "wall time"}).
The C accelerator: {"built and on" if accel.ACCEL is not None else "off (pure-Python path)"}.

| app_pipeline (whole request through create_app) | median us | p10 us | p90 us | added vs no stage, us |
|---|---|---|---|---|
{rows}

Each further Rust stage: echo {d['further_rust_stage_us']['echo']:+.2f} us,
trivial {d['further_rust_stage_us']['trivial']:+.2f} us.

| step alone (one WAT no-op stage, trivial app; further_: the second of three Rust stages) | median us | p10 us | p90 us |
|---|---|---|---|
{steps}
"""


def main() -> None:
    harness.measured_main("stage_breakdown", __doc__, run, report, rounds=30, calls=2000)


if __name__ == "__main__":
    main()
