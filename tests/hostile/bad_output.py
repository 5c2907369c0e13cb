"""Guests whose output passes msgpack and type checks but no WSGI server can send (or is
over the caps): one case per class, each triggered by its own marker like the catalogue in
guests.py."""

from __future__ import annotations

from dataclasses import dataclass

import msgpack

from tests.hostile.guests import Case, _packed

FLOOD_HEADERS = 200_000
_PAIR = b"\x92\xa1x\xa1a"  # ["x", "a"]


def _pack(message: object) -> bytes:
    return msgpack.packb(message, use_bin_type=True)


def _returns(name: str, message: object) -> Case:
    raw = _pack(message)
    return Case(name, data=raw, on_request=f"(return (i64.const {_packed(128, len(raw))}))", kind="abi")


def _answers_response(name: str, message: object) -> Case:
    raw = _pack(message)
    return Case(name, data=raw, on_response=f"(return (i64.const {_packed(128, len(raw))}))", kind="abi")


@dataclass(frozen=True)
class FloodCase(Case):
    """Builds a ``set_headers`` of FLOOD_HEADERS pairs of one name in memory (1 MB of output,
    inside the default output limit): 3 s per request before, now one quick refusal."""

    def wat(self) -> str:
        # NOTE: the output overwrites the request buffer at 65536, read before the loop runs.
        return super().wat().replace('(memory (export "memory") 2)', '(memory (export "memory") 17)')


def _flood() -> Case:
    prefix = b"\x82\xa6action\xa8continue\xabset_headers\xdd" + FLOOD_HEADERS.to_bytes(4, "big")
    start = 128 + len(prefix)
    store = " ".join(f"(i32.store8 offset={i} (local.get $len) (i32.const {b}))" for i, b in enumerate(_PAIR))
    loop = (f"(local.set $len (i32.const {start}))"
            f" (loop $pairs {store}"
            f" (local.set $len (i32.add (local.get $len) (i32.const {len(_PAIR)})))"
            f" (br_if $pairs (i32.lt_u (local.get $len) (i32.const {start + len(_PAIR) * FLOOD_HEADERS}))))"
            f" (return (i64.const {_packed(128, len(prefix) + len(_PAIR) * FLOOD_HEADERS)}))")
    return FloodCase("header_flood", data=prefix, on_request=loop, kind="abi")


CASES = [
    _returns("header_control", {"action": "respond", "status": 200, "headers": [["x-a", "a\x01b"]]}),
    _returns("header_del", {"action": "continue", "set_headers": [["x-a", "a\x7f"]]}),
    _returns("header_not_latin1", {"action": "continue", "response_headers": [["x-a", "snow \u2603"]]}),
    _returns("interim_status", {"action": "respond", "status": 100}),
    _returns("bodiless_with_body", {"action": "respond", "status": 204, "body": b"surprise"}),
    _returns("content_length", {"action": "respond", "status": 200, "headers": [["content-length", "abc"]]}),
    _returns("ctx_key_bin", {"action": "continue", "ctx": {b"user": "alice"}}),
    _returns("ctx_value_bin", {"action": "continue", "ctx": {"user": b"alice"}}),
    _answers_response("response_interim", {"status": 103}),
    _answers_response("response_header_control", {"set_headers": [["x-a", "\x00"]]}),
    _flood(),
]
