"""The public API is a thin, sorted re-export (like httpx's tests/test_exported_members.py)."""

from __future__ import annotations

import mwhost


def test_all_is_sorted_and_every_name_exists():
    assert mwhost.__all__ == sorted(mwhost.__all__)
    for name in mwhost.__all__:
        assert getattr(mwhost, name).__module__.startswith("mwhost.")


def test_the_documented_entry_points_are_exported():
    assert {"create_app", "WasmMiddleware", "Settings", "load_settings", "HostError"} <= set(mwhost.__all__)


def test_the_import_name_is_mwhost_only():
    """The source folder is host/, but the package is imported as mwhost everywhere: nothing
    in the suite (or the package) loads a second copy under the folder's name."""
    import sys

    assert "host" not in sys.modules
    assert mwhost.__name__ == "mwhost" and mwhost.web.__name__ == "mwhost.web"
