"""The hostile-guest catalogue: WAT guests that misbehave on purpose, each only when it sees
its own marker in the message (so one pipeline can hold them all and a normal request
passes every one of them), plus the Go guest that panics, runs out of memory or sleeps.
The sleep cases wait in WASI poll_oneoff (a host call, where epoch interruption cannot reach)
for 45 s: relative, until a monotonic time and until a wall-clock time."""

from __future__ import annotations

from dataclasses import dataclass, field

import msgpack

from mwhost.testing import wat_guest
from tests.wat import CONTAINS_FUNC

CONTINUE = msgpack.packb({"action": "continue"})
UNCHANGED = msgpack.packb({})


def _bytes(data: bytes) -> str:
    return "".join("\\%02x" % b for b in data)


def _packed(ptr: int, length: int) -> int:
    return (ptr << 32) | length


@dataclass(frozen=True)
class Case:
    """One hostile behaviour; ``fails`` says whether the request is failed by policy."""

    name: str
    on_request: str = ""          # WAT run when the marker is in the request message
    on_response: str = ""         # WAT run when the marker is in the response message
    alloc_window: tuple[int, int] | None = None   # mw_alloc misbehaves for sizes in [lo, hi)
    alloc_result: str = "(i32.const 0)"
    options: dict = field(default_factory=dict)    # stage settings
    fails: bool = True
    kind: str = ""                # the failure kind the host reports
    data: bytes = b""             # placed at 128 for outputs
    imports: str = ""             # more imports (WAT), e.g. the WASI functions a case calls

    @property
    def marker(self) -> str:
        return f"boom-{self.name}"

    def trigger_path(self) -> str:
        return f"/{self.marker}"

    def wasm(self) -> bytes:
        return wat_guest(self.wat())

    def wat(self) -> str:
        marker = self.marker.encode()
        on_request = (f"(if (call $contains (local.get $ptr) (local.get $len) (i32.const 64) (i32.const {len(marker)}))"
                      f" (then {self.on_request}))") if self.on_request else ""
        response = ""
        if self.on_response:
            response = (f'(func (export "mw_on_response") (param $ptr i32) (param $len i32) (result i64)'
                        f" (if (call $contains (local.get $ptr) (local.get $len) (i32.const 64) (i32.const {len(marker)}))"
                        f" (then {self.on_response})) (i64.const {_packed(48, len(UNCHANGED))}))")
        alloc = "(i32.const 65536)"
        if self.alloc_window:
            lo, hi = self.alloc_window
            alloc = (f"(if (result i32) (i32.and (i32.ge_u (local.get $size) (i32.const {lo}))"
                     f" (i32.lt_u (local.get $size) (i32.const {hi})))"
                     f" (then {self.alloc_result}) (else (i32.const 65536)))")
        return f"""(module
  (import "mw" "log" (func $log (param i32 i32 i32)))
  {self.imports}
  (memory (export "memory") 2)
  (data (i32.const 16) "{_bytes(CONTINUE)}")
  (data (i32.const 48) "{_bytes(UNCHANGED)}")
  (data (i32.const 64) "{_bytes(marker)}")
  (data (i32.const 128) "{_bytes(self.data)}")
  {CONTAINS_FUNC}
  (func $down (param i32) (result i32) (call $down (i32.add (local.get 0) (i32.const 1))))
  (func (export "mw_abi_version") (result i32) (i32.const 1))
  (func (export "mw_alloc") (param $size i32) (result i32) {alloc})
  (func (export "mw_on_request") (param $ptr i32) (param $len i32) (result i64)
    {on_request}
    (i64.const {_packed(16, len(CONTINUE))}))
  {response})"""


WASI_CLOCKS = ('(import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))'
               ' (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))')


def sleep_wat(timeout: str, clock: int = 1, flags: int = 0) -> str:
    """WAT that calls WASI poll_oneoff with one clock subscription (built at 1024, events at
    1100) whose timeout is the i64 expression ``timeout``; ``flags`` 1 = absolute time."""
    return (f"(i64.store (i32.const 1024) (i64.const 7)) (i32.store8 (i32.const 1032) (i32.const 0))"
            f" (i32.store (i32.const 1040) (i32.const {clock})) (i64.store (i32.const 1048) {timeout})"
            f" (i64.store (i32.const 1056) (i64.const 0)) (i32.store16 (i32.const 1064) (i32.const {flags}))"
            f" (drop (call $poll (i32.const 1024) (i32.const 1100) (i32.const 1) (i32.const 1140)))")


def clock_now(clock: int) -> str:
    """An i64 WAT expression: the WASI clock's current time in ns (read into 1200)."""
    return f"(block (result i64) (drop (call $clock (i32.const {clock}) (i64.const 1) (i32.const 1200))) (i64.load (i32.const 1200)))"


FORTY_FIVE_S = 45_000_000_000
NOT_MSGPACK = b"not msgpack"
WRONG_TYPES = msgpack.packb({"action": "respond", "status": "200"})
#: request sizes that make the alloc guests misbehave (a padding header puts a request there)
ALLOC_ZERO_WINDOW = (3000, 4000)
ALLOC_OOB_WINDOW = (5000, 6000)

CASES = [
    Case("loop", on_request="(loop $forever (br $forever))", kind="timeout"),
    Case("memory_bomb", kind="memory", options={"max_memory_mb": 16},
         on_request="(loop $grow (br_if $grow (i32.ne (memory.grow (i32.const 16)) (i32.const -1)))) (unreachable)"),
    Case("recursion", on_request="(drop (call $down (i32.const 0)))", kind="trap"),
    Case("oob_pointer", on_request=f"(return (i64.const {_packed(200_000, 10)}))", kind="abi"),
    Case("oversize_length", on_request=f"(return (i64.const {_packed(16, 0xFFFF_FFF0)}))", kind="abi"),
    Case("zero_result", on_request="(return (i64.const 0))", kind="abi"),
    Case("not_msgpack", data=NOT_MSGPACK, on_request=f"(return (i64.const {_packed(128, len(NOT_MSGPACK))}))", kind="abi"),
    Case("wrong_types", data=WRONG_TYPES, on_request=f"(return (i64.const {_packed(128, len(WRONG_TYPES))}))", kind="abi"),
    Case("response_trap", on_response="(unreachable)", kind="trap"),
    Case("alloc_zero", alloc_window=ALLOC_ZERO_WINDOW, alloc_result="(i32.const 0)", kind="abi"),
    Case("alloc_oob", alloc_window=ALLOC_OOB_WINDOW, alloc_result="(i32.const 131000)", kind="abi"),
    Case("fuel", on_request="(loop $forever (br $forever))", kind="fuel",
         options={"fuel": 2_000_000, "timeout_ms": 5000}),
    Case("sleep_for", imports=WASI_CLOCKS, kind="timeout", on_request=sleep_wat(f"(i64.const {FORTY_FIVE_S})")),
    Case("sleep_until_mono", imports=WASI_CLOCKS, kind="timeout",
         on_request=sleep_wat(f"(i64.add {clock_now(1)} (i64.const {FORTY_FIVE_S}))", clock=1, flags=1)),
    Case("sleep_until_wall", imports=WASI_CLOCKS, kind="timeout",
         on_request=sleep_wat(f"(i64.add {clock_now(0)} (i64.const {FORTY_FIVE_S}))", clock=0, flags=1)),
    Case("log_flood", fails=False, kind="", options={"timeout_ms": 1000},
         on_request="(local.set $len (i32.const 0)) (loop $flood (call $log (i32.const 1) (i32.const 256) (i32.const 1000))"
                    " (local.set $len (i32.add (local.get $len) (i32.const 1)))"
                    " (br_if $flood (i32.lt_u (local.get $len) (i32.const 2000))))"),
]


def padding_for(case: Case) -> dict[str, str]:
    """Headers that put the request message inside an alloc case's window."""
    if case.alloc_window is None:
        return {}
    lo, hi = case.alloc_window
    return {"X-Pad": "p" * ((lo + hi) // 2 - 300)}
