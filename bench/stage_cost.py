"""Per-request cost of one stage, in-process through the WSGI app (issue: core benchmark).

Scenarios, all through the same Falcon app and the same 1 KiB of request headers:
  none        no middleware
  python      a native Python Falcon middleware doing add_header's job
  wat_noop    the ABI's own cost: abi/wat/noop.wat as a stage
  rust        the Rust add_header example as a stage (fast call path)
  go          its Go twin, guest_examples/go/add_header_go, as a stage
  rust_public the same module and stage, but every guest call made through wasmtime-py's
              public API (Func.__call__, Memory.read/write) instead of the fast path
  extism      the same stage, but every guest call made through the Extism Python SDK
              (``Plugin.call``) to a plugin doing the same job (bench/extism_guest.py)

and the guest call alone, same 848-byte request bytes: ``call_fast`` (the Rust module on
the fast path), ``call_public`` (the public API), ``call_extism`` (the Extism plugin).

With ``STAGE_COST_CLOCK=thread`` the scenarios are timed in the thread's CPU time, as
``STAGE_BREAKDOWN_CLOCK=thread`` does in stage_breakdown.py (other jobs' load stays out).

Usage: [STAGE_COST_CLOCK=thread] .venv/bin/python bench/stage_cost.py [--rounds N] [--calls N] [--smoke]
"""

from __future__ import annotations

import os
import pathlib
import sys

import falcon
import falcon.testing
import wasmtime

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from bench import harness  # noqa: E402
from bench.extism_guest import ExtismInstance  # noqa: E402
from mwhost import WasmMiddleware, testing  # noqa: E402
from mwhost.abi import Codec  # noqa: E402
from mwhost.registry import example_module  # noqa: E402
from mwhost.runtime import default_runtime  # noqa: E402
from mwhost.web import load_live  # noqa: E402
from mwhost.web.wsgi_headers import environ_headers  # noqa: E402

ADD_HEADER_CONFIG = {"request_headers": {"x-mwhost-demo": "1"}, "response_headers": {"x-mwhost": "wasm"}}


def one_kib_of_headers() -> dict[str, str]:
    headers = {
        "Host": "api.example.test",
        "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
        "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
        "Accept-Language": "en-GB,en;q=0.9,de;q=0.8",
        "Accept-Encoding": "gzip, deflate, br",
        "Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MTk5OTk5OTk5OX0.c2lnbmF0dXJlLXNpZ25hdHVyZQ",
        "Cookie": "session=8f14e45fceea167a5a36dedd4bea2543; theme=dark; consent=analytics%3Dno",
        "X-Forwarded-For": "203.0.113.7, 198.51.100.23",
        "X-Request-Start": "t=1732550400123",
        "Traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "Cache-Control": "no-cache",
        "Referer": "https://app.example.test/dashboard/settings/profile?tab=security",
    }
    return headers


class Items:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.text = "ok"


class NativeAddHeader:
    """What a Python team would write instead of the add_header module."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.env["HTTP_X_MWHOST_DEMO"] = "1"

    def process_response(self, req, resp, resource, req_succeeded) -> None:
        resp.set_header("x-mwhost", "wasm")


class PublicApiInstance:
    """The ABI call sequence through wasmtime-py's public API: what a host gets without the
    fast path. Same engine, same linker, same module, same epoch deadline per call."""

    #: no flat call: the stage calls ``on_request`` (GuestInstance.request_call)
    request_call = None

    def __init__(self, module_bytes: bytes) -> None:
        runtime = default_runtime()
        self.store = wasmtime.Store(runtime.engine)
        instance = runtime.linker.instantiate(self.store, wasmtime.Module(runtime.engine, module_bytes))
        exports = instance.exports(self.store)
        self.memory = exports["memory"]
        self.alloc = exports["mw_alloc"]
        self.on_request_func = exports["mw_on_request"]
        self.store.set_epoch_deadline(1 << 30)
        init = exports["mw_init"]
        config = testing_config_bytes()
        ptr = self.alloc(self.store, len(config))
        self.memory.write(self.store, config, ptr)
        assert init(self.store, ptr, len(config)) == 0

    def close(self) -> None:
        self.store.close()

    def on_request(self, data: bytes) -> bytes:
        store = self.store
        # NOTE: a deadline per call, as a host must set; 1 s (100 ticks) rather than 110 ms so a
        # stall on a loaded machine does not end the run (the call costs the same either way)
        store.set_epoch_deadline(100)
        ptr = self.alloc(store, len(data))
        self.memory.write(store, data, ptr)
        packed = self.on_request_func(store, ptr, len(data)) & 0xFFFF_FFFF_FFFF_FFFF
        out_ptr, out_len = packed >> 32, packed & 0xFFFF_FFFF
        return bytes(self.memory.read(store, out_ptr, out_ptr + out_len))


def testing_config_bytes() -> bytes:
    import msgpack

    return msgpack.packb(ADD_HEADER_CONFIG, use_bin_type=True)


def wsgi_call(app: falcon.App, environ: dict):
    def start_response(status, headers, exc_info=None):
        return None

    def run() -> None:
        for _ in app(dict(environ), start_response):
            pass
    return run


def build_scenarios(folder: pathlib.Path) -> dict:
    environ = falcon.testing.create_environ(path="/bench/items", query_string="limit=10",
                                            headers=one_kib_of_headers())
    rust = example_module("add_header")
    go = example_module("add_header_go")

    def app_with(*middleware) -> falcon.App:
        app = falcon.App(middleware=list(middleware))
        app.add_route("/bench/items", Items())
        return app

    def wasm_stage(name: str, module) -> WasmMiddleware:
        options = {"config": ADD_HEADER_CONFIG} if name.startswith(("rust", "go")) else {}
        settings = testing.pipeline_settings(folder / name, (name, module, options))
        return WasmMiddleware(load_live(settings).holder)

    request = Codec().encode_request(
        "GET", "/bench/items", "limit=10", environ_headers(environ), "127.0.0.1", "http", {})
    public = wasm_stage("rust_public", rust)
    stage = public.holder.current.stages[0]
    # NOTE: swap the stage's one idle instance for the public-API one
    stage._idle[0].instance = PublicApiInstance(rust.read_bytes())
    # the Extism plugin answers what the Rust module answers to the same request
    answer = stage._idle[0].instance.on_request(request)
    extism = wasm_stage("extism", rust)
    extism_stage = extism.holder.current.stages[0]
    extism_stage._idle[0].instance = ExtismInstance(answer)
    extism_stage._idle[0].instance.request_call = None  # NOTE: the stage then calls its on_request
    assert extism_stage._idle[0].instance.on_request(request) == answer

    apps = {
        "none": app_with(),
        "python": app_with(NativeAddHeader()),
        "wat_noop": app_with(wasm_stage("wat_noop", testing.reference_guest("noop"))),
        "rust": app_with(wasm_stage("rust", rust)),
        "go": app_with(wasm_stage("go", go)),
        "rust_public": app_with(public),
        "extism": app_with(extism),
    }
    check_effects(apps, environ)
    scenarios = {name: wsgi_call(app, environ) for name, app in apps.items()}
    # the guest call alone, same module and same request bytes: fast path vs public API
    fast_stage = apps_stage(apps["rust"])
    fast_instance = fast_stage._idle[0].instance
    assert fast_instance.on_request(request) == answer
    public_instance = stage._idle[0].instance
    extism_instance = extism_stage._idle[0].instance
    scenarios["call_fast"] = lambda: fast_instance.on_request(request)
    scenarios["call_public"] = lambda: public_instance.on_request(request)
    scenarios["call_extism"] = lambda: extism_instance.on_request(request)
    return scenarios


def apps_stage(app: falcon.App):
    """The one Stage behind an app built by ``app_with(wasm_stage(...))``."""
    middleware = next(m for m in app._unprepared_middleware if isinstance(m, WasmMiddleware))
    return middleware.holder.current.stages[0]


def check_effects(apps: dict, environ: dict) -> None:
    """Each scenario must really do its job: the response header is there (where expected)."""
    for name, app in apps.items():
        result = falcon.testing.TestClient(app).simulate_get(
            "/bench/items", query_string="limit=10", headers=one_kib_of_headers())
        assert result.status_code == 200, (name, result.text)
        if name in ("python", "rust", "go", "rust_public", "extism"):
            assert result.headers.get("x-mwhost") == "wasm", name


STAGES = ("none", "python", "wat_noop", "rust", "go", "rust_public", "extism")
CALLS = ("call_fast", "call_public", "call_extism")


def run(rounds: int, calls: int, warmup: int) -> dict:
    """Every scenario interleaved in one process: ``harness.measure``'s medians per scenario."""
    import gc
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        scenarios = build_scenarios(pathlib.Path(folder))
        try:
            if os.environ.get("STAGE_COST_CLOCK") == "thread":
                from bench.stage_breakdown import _measure_cpu

                return _measure_cpu(scenarios, rounds, calls, warmup)
            return harness.measure(scenarios, rounds, calls, warmup=warmup)
        finally:
            # NOTE: free every store and plugin now: left to interpreter teardown, the Go
            # stage's WASI threads and Extism's runtime abort the process at exit.
            scenarios.clear()
            gc.collect()
            default_runtime().close_instances()


def summary(results: dict) -> dict:
    """The derived figures: added cost per stage over "none", and the ratios of the issues.

    ``shared_python_us`` is what every stage path pays on the Python side around the guest
    call (environ headers, packing the request, decoding and applying the action, Falcon
    middleware glue): the Rust stage's added cost minus the Rust guest call alone.
    """
    base = results["none"]["median_us"]
    added = {name: results[name]["median_us"] - base for name in STAGES}
    call = {name: results[name]["median_us"] for name in CALLS}
    fast = added["rust"]
    return {
        "added_us": added,
        "call_us": call,
        "shared_python_us": fast - call["call_fast"],
        "stage_public_over_rust": added["rust_public"] / fast,
        "stage_extism_over_rust": added["extism"] / fast,
        "call_public_over_fast": call["call_public"] / call["call_fast"],
        "call_extism_over_fast": call["call_extism"] / call["call_fast"],
        "rust_over_python": fast / added["python"] if added["python"] > 0 else None,
        "rust_over_wat_noop": fast / added["wat_noop"],
        "go_over_rust": added["go"] / fast,
    }


def tables(results: dict) -> str:
    """The two markdown tables: whole stages through the WSGI app, and the guest call alone."""
    derived = summary(results)
    added = derived["added_us"]
    stage_rows = "\n".join(
        f"| {name} | {results[name]['median_us']:.2f} | {results[name]['p10_us']:.2f} | "
        f"{results[name]['p90_us']:.2f} | {added[name]:+.2f} |" for name in STAGES)
    call_rows = "\n".join(
        f"| {name} | {results[name]['median_us']:.2f} | {results[name]['p10_us']:.2f} | "
        f"{results[name]['p90_us']:.2f} | {results[name]['median_us'] / results['call_fast']['median_us']:.1f}x |"
        for name in CALLS)
    return f"""| scenario (whole request through the WSGI app) | median us | p10 us | p90 us | added vs none, us |
|---|---|---|---|---|
{stage_rows}

| guest call alone (same 848-byte request) | median us | p10 us | p90 us | vs call_fast |
|---|---|---|---|---|
{call_rows}"""


def report(results: dict, rounds: int, calls: int) -> str:
    d = summary(results)
    fast = d["added_us"]["rust"]
    return f"""# Stage cost in-process (WSGI app, 1 KiB of request headers)

{{header}}{rounds} interleaved rounds of {calls} requests per scenario; per-request medians.

{tables(results)}

Ratios (same run):

- Rust stage added cost: **{fast:.2f} us** per request (target <= 15 us, issue 13), of which the
  guest call is {d['call_us']['call_fast']:.2f} us and the Python work around it {d['shared_python_us']:.2f} us
- public-API path / fast path: whole stage **{d['stage_public_over_rust']:.1f}x**, guest call alone
  **{d['call_public_over_fast']:.1f}x** (target >= 12x)
- Extism / Rust: whole stage **{d['stage_extism_over_rust']:.1f}x**, guest call alone
  **{d['call_extism_over_fast']:.1f}x** (target >= 4x for the whole stage, issue 13)
- Rust stage / native Python middleware, added cost: {ratio_text(d['rust_over_python'])}
- Rust stage / WAT no-op, added cost: {d['rust_over_wat_noop']:.2f}x (the SDK's share above the ABI's own cost)
- Go stage / Rust stage, added cost: **{d['go_over_rust']:.2f}x** (target <= 1.5x)
"""


def ratio_text(ratio: float | None) -> str:
    return "n/a (the native middleware's cost is within the noise)" if ratio is None else f"{ratio:.1f}x"


def main() -> None:
    harness.measured_main("stage_cost", __doc__, lambda rounds, calls, warmup: run(rounds, calls, warmup=warmup), report, rounds=40)


if __name__ == "__main__":
    main()
