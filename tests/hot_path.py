"""Run a test folder's tests on both hot paths: the C accelerator and the pure-Python one.

A folder's conftest.py imports ``both_hot_paths``: every test there runs twice, ``[accel]``
and ``[python]`` (``mwhost.runtime.accel.ACCEL`` set to None, as with ``MWHOST_NO_ACCEL=1``
or an install without a C compiler). Instances and stages are made inside each test, so each
run gets the path it asked for.
"""

from __future__ import annotations

import pytest

from mwhost.runtime import accel


@pytest.fixture(autouse=True, params=["accel", "python"])
def both_hot_paths(request, monkeypatch):
    if request.param == "python":
        monkeypatch.setattr(accel, "ACCEL", None)
    elif accel.ACCEL is None:
        # NOTE: tests/runtime/test_accel.py fails loudly when the build is missing
        pytest.skip("the C accelerator is not built or is switched off (MWHOST_NO_ACCEL)")
    return request.param
