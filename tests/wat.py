"""Inline WAT guests for unit tests: an ABI v1 skeleton with the parts a test wants changed."""

from __future__ import annotations

from mwhost.testing import wat_guest

CONTINUE_AT_16 = '(data (i32.const 16) "\\81" "\\a6" "action" "\\a8" "continue")'
RETURN_CONTINUE = "(i64.const 0x0000001000000011)"  # (16 << 32) | 17


def guest_wat(on_request: str = RETURN_CONTINUE, *, alloc: str = "(i32.const 65536)",
              version: int = 1, memory: str = "2", data: str = CONTINUE_AT_16, imports: str = "",
              on_response: str | None = None, init: str | None = None, extra: str = "",
              exports: tuple[str, ...] = ("mw_abi_version", "mw_alloc", "mw_on_request")) -> str:
    parts = [imports, f'(memory (export "memory") {memory})', data]
    if "mw_abi_version" in exports:
        parts.append(f'(func (export "mw_abi_version") (result i32) (i32.const {version}))')
    if "mw_alloc" in exports:
        parts.append(f'(func (export "mw_alloc") (param $size i32) (result i32) {alloc})')
    if "mw_on_request" in exports:
        parts.append(f'(func (export "mw_on_request") (param $ptr i32) (param $len i32) (result i64) {on_request})')
    if on_response is not None:
        parts.append(f'(func (export "mw_on_response") (param $ptr i32) (param $len i32) (result i64) {on_response})')
    if init is not None:
        parts.append(f'(func (export "mw_init") (param $ptr i32) (param $len i32) (result i32) {init})')
    parts.append(extra)
    return "(module\n  " + "\n  ".join(p for p in parts if p) + ")"


def guest(on_request: str = RETURN_CONTINUE, **kwargs) -> bytes:
    return wat_guest(guest_wat(on_request, **kwargs))


def packed(ptr: int, length: int) -> str:
    return f"(i64.const {(ptr << 32) | length})"


def data_segment(offset: int, message: object) -> tuple[str, int]:
    """A WAT data segment holding ``message`` packed as msgpack, and its length."""
    import msgpack

    raw = msgpack.packb(message, use_bin_type=True)
    escaped = "".join("\\%02x" % b for b in raw)
    return f'(data (i32.const {offset}) "{escaped}")', len(raw)


def const_guest(action: object, response_action: object | None = None, **kwargs) -> bytes:
    """A guest that answers every request with ``action`` (and every response with
    ``response_action``, when given): constant msgpack messages in data segments."""
    request_data, request_len = data_segment(16, action)
    data = request_data
    on_response = None
    if response_action is not None:
        response_data, response_len = data_segment(32768, response_action)
        data += " " + response_data
        on_response = packed(32768, response_len)
    return guest(packed(16, request_len), data=data, on_response=on_response, **kwargs)


#: the path that makes a ``marked_guest`` misbehave (admission's probe requests never carry it)
MARKER = "/boom"

# NOTE: WAT for $contains(hay, hay_len, needle, needle_len) -> 1 if needle occurs in hay
CONTAINS_FUNC = """(func $contains (param $hay i32) (param $hay_len i32) (param $needle i32) (param $needle_len i32) (result i32)
    (local $i i32) (local $j i32)
    (if (i32.lt_u (local.get $hay_len) (local.get $needle_len)) (then (return (i32.const 0))))
    (block $done
      (loop $outer
        (br_if $done (i32.gt_u (local.get $i) (i32.sub (local.get $hay_len) (local.get $needle_len))))
        (local.set $j (i32.const 0))
        (block $mismatch
          (loop $inner
            (br_if $mismatch (i32.ne
              (i32.load8_u (i32.add (local.get $hay) (i32.add (local.get $i) (local.get $j))))
              (i32.load8_u (i32.add (local.get $needle) (local.get $j)))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (if (i32.eq (local.get $j) (local.get $needle_len)) (then (return (i32.const 1))))
            (br $inner)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $outer)))
    (i32.const 0))"""


def marked_guest(on_request: str = "", on_response: str | None = None, output: bytes = b"") -> bytes:
    """A guest that answers a plain continue (and an empty response action) unless the message
    contains MARKER; then it runs ``on_request`` / ``on_response`` (WAT; ``output`` sits at
    4096 for them to return). It passes admission, like a real guest that fails only on
    some requests."""
    import msgpack

    cont, unchanged = msgpack.packb({"action": "continue"}), msgpack.packb({})
    escape = lambda raw: "".join("\\%02x" % b for b in raw)  # noqa: E731
    when = f"(if (call $contains (local.get $ptr) (local.get $len) (i32.const 64) (i32.const {len(MARKER)}))"
    data = (f'(data (i32.const 16) "{escape(cont)}") (data (i32.const 48) "{escape(unchanged)}")'
            f' (data (i32.const 64) "{MARKER}") (data (i32.const 4096) "{escape(output)}")')
    response = None
    if on_response is not None:
        response = f"{when} (then {on_response})) {packed(48, len(unchanged))}"
    body = f"{when} (then {on_request})) {packed(16, len(cont))}" if on_request else packed(16, len(cont))
    return guest(body, data=data, on_response=response, extra=CONTAINS_FUNC)


def returns(output: bytes) -> str:
    """WAT for ``marked_guest``'s on_request: return its ``output``."""
    return f"(return {packed(4096, len(output))})"


def explodes() -> bytes:
    """A ``marked_guest`` that answers an invalid action (``explode``) on MARKER requests."""
    import msgpack

    output = msgpack.packb({"action": "explode"})
    return marked_guest(returns(output), output=output)
