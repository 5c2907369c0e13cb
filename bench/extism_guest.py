"""add_header's job as an Extism plugin, for the side-by-side stage cost.

The plugin is written in WAT against Extism's kernel imports (``extism:host/env``): it
copies the whole request input into its own memory (``input_load_u64``, 8 bytes per
kernel call, then ``input_load_u8`` for the tail), checks that it starts with a msgpack
map, allocates the output in the kernel's memory and stores a constant continue action
(the same bytes the Rust add_header module answers, which also prebuilds them) with
``store_u64`` / ``store_u8``, then ``output_set``. It does *less* guest work than the Rust
SDK, which decodes the request: the comparison favours Extism.

``ExtismInstance`` has the two methods a stage calls on its instance (``on_request``,
``close``), so it can stand in for a ``GuestInstance`` exactly as stage_cost's public-API
instance does; every call goes through the SDK's public ``Plugin.call``.
"""

from __future__ import annotations

import os

# NOTE: Extism's runtime writes a wasmtime compile cache to ~/.cache unless told not to;
# set before the first plugin is built.
os.environ.setdefault("EXTISM_CACHE_CONFIG", "")

INPUT_AT = 1024  # where the plugin copies the request in its own memory
OUTPUT_AT = 16  # where its constant answer lives (a data segment)
MAX_INPUT = 60 * 1024

WAT = """
(module
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "input_load_u64" (func $input_load_u64 (param i64) (result i64)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "error_set" (func $error_set (param i64)))
  (memory (export "memory") 2)
  (data (i32.const {output_at}) "{output}")
  (func (export "on_request") (result i32)
    (local $len i64) (local $i i64) (local $out i64) (local $first i32)
    (local.set $len (call $input_length))
    (if (i64.gt_u (local.get $len) (i64.const {max_input})) (then (return (i32.const 1))))
    ;; the request into our memory: 8 bytes per kernel call, then the tail byte by byte
    (block $done8 (loop $copy8
      (br_if $done8 (i64.gt_u (i64.add (local.get $i) (i64.const 8)) (local.get $len)))
      (i64.store (i32.wrap_i64 (i64.add (local.get $i) (i64.const {input_at})))
                 (call $input_load_u64 (local.get $i)))
      (local.set $i (i64.add (local.get $i) (i64.const 8)))
      (br $copy8)))
    (block $done1 (loop $copy1
      (br_if $done1 (i64.ge_u (local.get $i) (local.get $len)))
      (i32.store8 (i32.wrap_i64 (i64.add (local.get $i) (i64.const {input_at})))
                  (call $input_load_u8 (local.get $i)))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br $copy1)))
    ;; a request is a msgpack map (fixmap, map16 or map32)
    (local.set $first (i32.load8_u (i32.const {input_at})))
    (if (i32.eqz (i32.or (i32.eq (i32.and (local.get $first) (i32.const 0xf0)) (i32.const 0x80))
                         (i32.eq (i32.and (local.get $first) (i32.const 0xfe)) (i32.const 0xde))))
      (then (return (i32.const 2))))
    ;; the constant continue action into the kernel's memory, then hand it over
    (local.set $out (call $alloc (i64.const {output_len})))
    (local.set $i (i64.const 0))
    (block $out8 (loop $store8
      (br_if $out8 (i64.gt_u (i64.add (local.get $i) (i64.const 8)) (i64.const {output_len})))
      (call $store_u64 (i64.add (local.get $out) (local.get $i))
                       (i64.load (i32.wrap_i64 (i64.add (local.get $i) (i64.const {output_at})))))
      (local.set $i (i64.add (local.get $i) (i64.const 8)))
      (br $store8)))
    (block $out1 (loop $store1
      (br_if $out1 (i64.ge_u (local.get $i) (i64.const {output_len})))
      (call $store_u8 (i64.add (local.get $out) (local.get $i))
                      (i32.load8_u (i32.wrap_i64 (i64.add (local.get $i) (i64.const {output_at})))))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br $store1)))
    (call $output_set (local.get $out) (i64.const {output_len}))
    (i32.const 0)))
"""


def plugin_wat(output: bytes) -> str:
    """The plugin's WAT, answering every request with ``output``."""
    escaped = "".join(f"\\{byte:02x}" for byte in output)
    return WAT.format(output_at=OUTPUT_AT, output=escaped, output_len=len(output),
                      input_at=INPUT_AT, max_input=MAX_INPUT)


def plugin_wasm(output: bytes) -> bytes:
    from mwhost.runtime import wat_to_wasm

    return wat_to_wasm(plugin_wat(output))


class ExtismInstance:
    """One Extism plugin instance behind the two methods a stage uses."""

    def __init__(self, output: bytes) -> None:
        import extism

        self.plugin = extism.Plugin(plugin_wasm(output), wasi=False, functions=[])

    def on_request(self, data: bytes) -> bytes:
        return self.plugin.call("on_request", data)

    def close(self) -> None:
        plugin, self.plugin = self.plugin, None
        if plugin is not None:
            del plugin
