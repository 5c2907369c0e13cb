"""The public API is a thin, sorted re-export (like httpx's tests/test_exported_members.py)."""

from __future__ import annotations

import host


def test_all_is_sorted_and_every_name_exists():
    assert host.__all__ == sorted(host.__all__)
    for name in host.__all__:
        assert getattr(host, name).__module__.startswith("host.")


def test_the_documented_entry_points_are_exported():
    assert {"create_app", "WasmMiddleware", "Settings", "load_settings", "HostError"} <= set(host.__all__)
