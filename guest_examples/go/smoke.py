"""Smoke-test the Go example guests with wasmtime-py alone (no mwhost host needed).

    .venv/bin/python guest_examples/go/smoke.py DIR   # DIR holds request_id.wasm, cors.wasm, rate_limit.wasm

Each module is checked against ABI v1's exports and imports, instantiated as a WASI reactor,
configured through mw_init and driven through mw_on_request with msgpack messages, as the
host does. Exits non-zero on the first failed expectation.
"""

from __future__ import annotations

import pathlib
import sys
import time

import msgpack
import wasmtime

VECTORS = pathlib.Path(__file__).resolve().parents[2] / "abi" / "vectors"
REQUIRED = {"mw_abi_version", "mw_alloc", "mw_on_request"}
EXPORTS = {
    "mw_abi_version": ([], ["i32"]), "mw_alloc": (["i32"], ["i32"]),
    "mw_on_request": (["i32", "i32"], ["i64"]), "mw_on_response": (["i32", "i32"], ["i64"]),
    "mw_init": (["i32", "i32"], ["i32"]), "_initialize": ([], []),
}


class Guest:
    """One instance of a guest module, called the way ABI.md describes."""

    def __init__(self, engine: wasmtime.Engine, module: wasmtime.Module) -> None:
        self.logs: list[tuple[int, str]] = []
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        log_type = wasmtime.FuncType([wasmtime.ValType.i32()] * 3, [])
        linker.define_func("mw", "log", log_type, self._log, access_caller=True)
        self.store = wasmtime.Store(engine)
        self.store.set_wasi(wasmtime.WasiConfig())
        instance = linker.instantiate(self.store, module)
        exports = instance.exports(self.store)
        self.ex = {e: exports[e] for e in EXPORTS if e in exports}
        self.memory = exports["memory"]
        self.ex["_initialize"](self.store)
        assert self.ex["mw_abi_version"](self.store) == 1

    def _log(self, caller: wasmtime.Caller, level: int, ptr: int, n: int) -> None:
        data = caller["memory"].read(caller, ptr, ptr + n)
        self.logs.append((level, bytes(data).decode()))

    def _write(self, data: bytes) -> int:
        ptr = self.ex["mw_alloc"](self.store, len(data))
        assert ptr != 0, "mw_alloc failed"
        self.memory.write(self.store, data, ptr)
        return ptr

    def init(self, config: dict) -> int:
        data = msgpack.packb(config, use_bin_type=True)
        return self.ex["mw_init"](self.store, self._write(data), len(data))

    def call(self, export: str, data: bytes) -> dict:
        packed = self.ex[export](self.store, self._write(data), len(data)) & (2**64 - 1)
        ptr, n = packed >> 32, packed & 0xFFFF_FFFF
        assert packed and ptr + n <= self.memory.data_len(self.store), hex(packed)
        return msgpack.unpackb(self.memory.read(self.store, ptr, ptr + n), raw=False)

    def request(self, **fields) -> dict:
        message = {"v": 1, "method": "GET", "path": "/", "query": "", "headers": [],
                   "remote_addr": "127.0.0.1", "scheme": "http", "ctx": {}, **fields}
        return self.call("mw_on_request", msgpack.packb(message, use_bin_type=True))


def check_abi(module: wasmtime.Module) -> None:
    exports = {e.name: e.type for e in module.exports}
    assert isinstance(exports.pop("memory"), wasmtime.MemoryType)
    for name, ty in exports.items():
        sig = ([str(p) for p in ty.params], [str(r) for r in ty.results])
        assert EXPORTS.get(name) == sig, f"export {name} {sig}"
    assert REQUIRED <= set(exports), sorted(exports)
    for imp in module.imports:
        assert imp.module == "wasi_snapshot_preview1" or (imp.module, imp.name) == ("mw", "log"), imp.name


def request_id(g: Guest) -> None:
    assert g.init({"header": "x-request-id"}) == 0
    a = g.request()
    rid = a["ctx"]["request_id"]
    assert len(rid) == 32 and a["set_headers"] == [["x-request-id", rid]], a
    assert a["response_headers"] == [["x-request-id", rid]], a
    a = g.request(headers=[["x-request-id", "abc-1"]])
    assert a == {"action": "continue", "ctx": {"request_id": "abc-1"},
                 "response_headers": [["x-request-id", "abc-1"]]}, a
    assert g.init({"header": "bad name"}) == 1 and g.logs[-1][0] == 3, g.logs


def cors(g: Guest) -> None:
    assert g.init({"allowed_origins": ["https://app.example"], "allowed_methods": ["GET", "PUT"],
                   "allowed_headers": ["x-token"], "max_age": 600}) == 0
    a = g.request(method="OPTIONS", headers=[["origin", "https://app.example"],
                                             ["access-control-request-method", "PUT"],
                                             ["access-control-request-headers", "X-Token"]])
    assert a["action"] == "respond" and a["status"] == 204, a
    assert ["access-control-allow-origin", "https://app.example"] in a["headers"], a
    a = g.request(headers=[["origin", "https://app.example"]])
    assert a["response_headers"][0] == ["access-control-allow-origin", "https://app.example"], a
    a = g.request(method="OPTIONS", headers=[["origin", "https://evil.example"],
                                             ["access-control-request-method", "PUT"]])
    assert a["status"] == 403, a
    assert g.request() == {"action": "continue"}
    assert g.init({"allowed_origins": []}) == 1


def rate_limit(g: Guest) -> None:
    assert g.init({"rate_per_s": 1, "burst": 2}) == 0
    assert g.request()["action"] == "continue"
    assert g.request()["action"] == "continue"
    a = g.request()
    assert a["status"] == 429 and ["retry-after", "1"] in a["headers"], a
    assert g.request(remote_addr="10.0.0.2")["action"] == "continue"


def common(g: Guest) -> None:
    """Vectors, the default response callback and the SDK's answer to garbage."""
    for name in ("request_minimal", "request_typical", "request_unicode", "request_with_body"):
        g.call("mw_on_request", (VECTORS / f"{name}.msgpack").read_bytes())
    if "mw_on_response" in g.ex:
        out = g.call("mw_on_response", (VECTORS / "response_typical.msgpack").read_bytes())
        assert out == {}, out
    out = g.call("mw_on_request", b"\x81\xa1")
    assert out["status"] == 500 and g.logs[-1][0] == 3, (out, g.logs[-1:])


def main(folder: str) -> None:
    engine = wasmtime.Engine()
    for scenario in (request_id, cors, rate_limit):
        path = pathlib.Path(folder) / f"{scenario.__name__}.wasm"
        t0 = time.perf_counter()
        module = wasmtime.Module.from_file(engine, str(path))
        compiled = time.perf_counter() - t0
        check_abi(module)
        guest = Guest(engine, module)
        scenario(guest)
        common(guest)
        phases = "request+response" if "mw_on_response" in guest.ex else "request only"
        print(f"ok  {path.name:16} {path.stat().st_size:>9,} bytes  {phases:16}  compile {compiled:.2f} s")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
