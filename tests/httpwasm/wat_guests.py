"""Inline WAT http-wasm guests: every ``http_handler`` import declared, the bodies a test wants.

``hw_guest(handle_request)`` builds a module whose ``handle_request`` runs the given WAT and
returns its i64 (``ctx << 32 | next``); ``returns(expr)`` packs an i32 expression into ctx,
so a test reads a host function's result from the returned ctx.
"""

from __future__ import annotations

from mwhost.testing import wat_guest

IMPORTS = """
  (import "http_handler" "enable_features" (func $enable_features (param i32) (result i32)))
  (import "http_handler" "get_config" (func $get_config (param i32 i32) (result i32)))
  (import "http_handler" "log_enabled" (func $log_enabled (param i32) (result i32)))
  (import "http_handler" "log" (func $log (param i32 i32 i32)))
  (import "http_handler" "get_method" (func $get_method (param i32 i32) (result i32)))
  (import "http_handler" "set_method" (func $set_method (param i32 i32)))
  (import "http_handler" "get_uri" (func $get_uri (param i32 i32) (result i32)))
  (import "http_handler" "set_uri" (func $set_uri (param i32 i32)))
  (import "http_handler" "get_protocol_version" (func $get_protocol_version (param i32 i32) (result i32)))
  (import "http_handler" "get_header_names" (func $get_header_names (param i32 i32 i32) (result i64)))
  (import "http_handler" "get_header_values" (func $get_header_values (param i32 i32 i32 i32 i32) (result i64)))
  (import "http_handler" "set_header_value" (func $set_header_value (param i32 i32 i32 i32 i32)))
  (import "http_handler" "add_header_value" (func $add_header_value (param i32 i32 i32 i32 i32)))
  (import "http_handler" "remove_header" (func $remove_header (param i32 i32 i32)))
  (import "http_handler" "read_body" (func $read_body (param i32 i32 i32) (result i64)))
  (import "http_handler" "write_body" (func $write_body (param i32 i32 i32)))
  (import "http_handler" "get_status_code" (func $get_status_code (result i32)))
  (import "http_handler" "set_status_code" (func $set_status_code (param i32)))
  (import "http_handler" "get_source_addr" (func $get_source_addr (param i32 i32) (result i32)))
"""

NEXT = "(i64.const 1)"
STOP = "(i64.const 0)"


def returns(expr: str, next_: int = 1) -> str:
    """``expr`` (an i32) as ctx, with next."""
    return f"(i64.or (i64.shl (i64.extend_i32_u {expr}) (i64.const 32)) (i64.const {next_}))"


def data(offset: int, text: str) -> str:
    escaped = "".join("\\%02x" % b for b in text.encode())
    return f'(data (i32.const {offset}) "{escaped}")'


def hw_wat(handle_request: str = NEXT, *, handle_response: str | None = "", data_: str = "",
           start: str | None = None, initialize: str | None = None, extra: str = "",
           imports: str = IMPORTS, memory: str = "1") -> str:
    parts = [imports, f'(memory (export "memory") {memory})', data_,
             f'(func (export "handle_request") (result i64) (local $n i32) (local $w i64) {handle_request})']
    if handle_response is not None:
        parts.append(f'(func (export "handle_response") (param $ctx i32) (param $is_error i32) {handle_response})')
    if start is not None:
        parts.append(f'(func (export "_start") {start})')
    if initialize is not None:
        parts.append(f'(func (export "_initialize") {initialize})')
    parts.append(extra)
    return "(module\n" + "\n  ".join(p for p in parts if p) + ")"


def hw_guest(handle_request: str = NEXT, **kwargs) -> bytes:
    return wat_guest(hw_wat(handle_request, **kwargs))
