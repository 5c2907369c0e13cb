"""Per-request cost of an http-wasm guest next to the same job on ABI v1 (issue 16).

The job: set the request header ``x-bench: 1`` and proceed. Both guests are hand-written
WAT (the ABIs' own cost, no SDK), each run as a stage of its ABI in the same process, with
the same 1 KiB of request headers, in interleaved rounds:

  v1_stage        ABI v1 stage call: the request packed as msgpack, one guest call, the
                  constant Action decoded (cached), applied to the request state
  httpwasm_stage  http-wasm stage call: an Exchange built from the request, handle_request,
                  one ``set_header_value`` host call, the edit turned into an Action
  v1_app          the whole request in-process through the host's WSGI app (Falcon), v1 stage
  httpwasm_app    the same with the http-wasm stage
  rust_app        the Rust add_header example (ABI v1 SDK) through the app, for scale

Usage: .venv/bin/python bench/httpwasm_cost.py [--rounds N] [--calls N] [--smoke]
"""

from __future__ import annotations

import pathlib
import sys
import tempfile

import falcon
import falcon.testing
import msgpack

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from bench import harness  # noqa: E402
from bench.stage_cost import ADD_HEADER_CONFIG, one_kib_of_headers  # noqa: E402
from mwhost import testing  # noqa: E402
from mwhost.pipeline import RequestState  # noqa: E402
from mwhost.pipeline.httpwasm_stage import HttpWasmStage  # noqa: E402
from mwhost.pipeline.stage import Stage  # noqa: E402
from mwhost.registry import example_module  # noqa: E402
from mwhost.runtime import GuestModule, default_runtime  # noqa: E402
from mwhost.settings import StageSettings  # noqa: E402
from mwhost.web import create_app  # noqa: E402
from mwhost.web.wsgi_headers import environ_headers  # noqa: E402

_ACTION = msgpack.packb({"action": "continue", "set_headers": [["x-bench", "1"]]}, use_bin_type=True)
_ESCAPED = "".join("\\%02x" % b for b in _ACTION)
V1_WAT = f"""(module
  (memory (export "memory") 2)
  (data (i32.const 16) "{_ESCAPED}")
  (func (export "mw_abi_version") (result i32) (i32.const 1))
  (func (export "mw_alloc") (param i32) (result i32) (i32.const 65536))
  (func (export "mw_on_request") (param i32 i32) (result i64) (i64.const {(16 << 32) | len(_ACTION)})))"""

HTTPWASM_WAT = """(module
  (import "http_handler" "set_header_value" (func $set (param i32 i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "x-bench1")
  (func (export "handle_request") (result i64)
    (call $set (i32.const 0) (i32.const 16) (i32.const 7) (i32.const 23) (i32.const 1))
    (i64.const 1)))"""


class Ok:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.data = b"ok"


def _app(folder: pathlib.Path, name: str, wasm: bytes, config: dict | None = None):
    settings = testing.pipeline_settings(folder / name, (name, wasm, {"config": config or {}}))
    app = falcon.App()
    app.add_route("/bench/items", Ok())
    return create_app(settings, app)


def _wsgi_call(app, environ: dict):
    def start_response(status, headers, exc_info=None):
        return None

    def run() -> None:
        env = dict(environ)
        env["wsgi.input"] = falcon.testing.create_environ()["wsgi.input"]
        for _ in app(env, start_response):
            pass
    return run


def _stage_call(stage, environ: dict):
    headers = environ_headers(environ)

    def run() -> None:
        state = RequestState("GET", "/bench/items", "limit=10", list(headers), "127.0.0.1", "http")
        state.env = environ
        action = stage.call_request(state)
        state.apply(action)
    return run


def build(folder: pathlib.Path) -> dict:
    environ = falcon.testing.create_environ(path="/bench/items", query_string="limit=10",
                                            headers=one_kib_of_headers())
    environ["RAW_URI"] = "/bench/items?limit=10"
    runtime = default_runtime()
    v1_wasm, hw_wasm = testing.wat_guest(V1_WAT), testing.wat_guest(HTTPWASM_WAT)
    v1 = Stage.isolated(StageSettings(name="v1"), GuestModule.from_bytes(runtime, v1_wasm))
    hw = HttpWasmStage.isolated(StageSettings(name="hw"), GuestModule.from_bytes(runtime, hw_wasm))
    scenarios = {
        "v1_stage": _stage_call(v1, environ),
        "httpwasm_stage": _stage_call(hw, environ),
        "v1_app": _wsgi_call(_app(folder, "v1", v1_wasm), environ),
        "httpwasm_app": _wsgi_call(_app(folder, "hw", hw_wasm), environ),
        "rust_app": _wsgi_call(_app(folder, "rust", example_module("add_header").read_bytes(), ADD_HEADER_CONFIG),
                               environ),
    }
    for run in scenarios.values():
        run()
    return scenarios


def measure(rounds: int, calls: int, warmup: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        return harness.measure(build(pathlib.Path(folder)), rounds, calls, warmup)


def report(results: dict, rounds: int, calls: int) -> str:
    def us(name: str) -> float:
        return results[name]["median_us"]
    rows = "\n".join(f"| `{name}` | {r['median_us']:.2f} | {r['p10_us']:.2f} | {r['p90_us']:.2f} |"
                     for name, r in results.items())
    return f"""# http-wasm guest vs ABI v1, same job (set one request header)

{{header}}{rounds} interleaved rounds of {calls} calls, 1 KiB of request headers, medians in microseconds.

| scenario | median | p10 | p90 |
|---|---|---|---|
{rows}

- stage call: http-wasm / v1 **{us('httpwasm_stage') / us('v1_stage'):.2f}x** \
({us('httpwasm_stage') - us('v1_stage'):+.2f} us)
- whole request through the app: http-wasm / v1 **{us('httpwasm_app') / us('v1_app'):.2f}x** \
({us('httpwasm_app') - us('v1_app'):+.2f} us)
"""


def main() -> None:
    harness.measured_main("httpwasm_cost", __doc__, measure, report, rounds=30)


if __name__ == "__main__":
    main()
