"""A module that breaks the ABI is refused at load, with a message naming what is wrong."""

from __future__ import annotations

import pytest

from mwhost.errors import GuestLoadError, ModuleRefused
from mwhost.runtime import GuestInstance, GuestModule, Limits, default_runtime
from mwhost.testing import wat_guest
from tests.wat import guest, guest_wat


def load(wasm: bytes) -> GuestModule:
    return GuestModule.from_bytes(default_runtime(), wasm)


def test_a_valid_skeleton_loads():
    module = load(guest())
    assert not module.has_on_response and not module.has_init and not module.needs_wasi


@pytest.mark.parametrize("missing", ["mw_abi_version", "mw_alloc", "mw_on_request"])
def test_missing_required_export_is_named(missing):
    exports = tuple(e for e in ("mw_abi_version", "mw_alloc", "mw_on_request") if e != missing)
    with pytest.raises(ModuleRefused, match=f"required function '{missing}'"):
        load(guest(exports=exports))


def test_missing_memory_is_refused():
    source = guest_wat().replace('(memory (export "memory") 2)', "(memory 2)")
    with pytest.raises(ModuleRefused, match="'memory'"):
        load(wat_guest(source))


def test_wrong_export_signature_is_named_with_both_signatures():
    source = guest_wat().replace("(param $size i32) (result i32) (i32.const 65536)",
                                 "(param $size i64) (result i32) (i32.const 65536)")
    with pytest.raises(ModuleRefused, match=r"'mw_alloc' must have the signature \(i32\) -> \(i32\), got \(i64\) -> \(i32\)"):
        load(wat_guest(source))


def test_wrong_optional_export_signature_is_refused():
    with pytest.raises(ModuleRefused, match="'mw_init'"):
        load(wat_guest(guest_wat(extra='(func (export "mw_init") (param i32) (result i32) (i32.const 0))')))


def test_foreign_import_is_refused_with_its_name():
    imports = '(import "env" "get_secret" (func (param i32) (result i32)))'
    with pytest.raises(ModuleRefused, match="'env.get_secret'"):
        load(guest(imports=imports))


def test_mw_log_with_the_wrong_signature_is_refused():
    imports = '(import "mw" "log" (func (param i32 i32)))'
    with pytest.raises(ModuleRefused, match="'mw.log' must have the signature"):
        load(guest(imports=imports))


def test_unknown_wasi_function_is_refused():
    imports = '(import "wasi_snapshot_preview1" "no_such_call" (func))'
    with pytest.raises(ModuleRefused, match="no_such_call"):
        load(guest(imports=imports))


def test_wrong_abi_version_is_refused_at_instantiation():
    module = load(guest(version=2))
    with pytest.raises(ModuleRefused, match="mw_abi_version returned 2"):
        GuestInstance(module, Limits(), "v2")


def test_bytes_that_are_not_wasm_are_a_load_error():
    with pytest.raises(GuestLoadError, match="not a valid WebAssembly module"):
        load(b"\x00asm garbage")


def test_initial_memory_above_the_limit_fails_instantiation():
    module = load(guest(memory="200"))  # 200 pages = 12.5 MiB
    with pytest.raises(GuestLoadError, match="cannot instantiate"):
        GuestInstance(module, Limits(max_memory_mb=4), "big")
