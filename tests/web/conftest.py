"""Every test here runs on both hot paths (C accelerator and pure Python): tests/hot_path.py."""

from tests.hot_path import both_hot_paths  # noqa: F401 - an autouse fixture
