"""The optional compiled accelerator of the hot path, or None (the pure-Python path).

``mwhost.runtime._accel`` (host/runtime/_accel.c, built by ``pip install``) packs the
Request straight from the WSGI environ and makes the guest call's whole roundtrip in C.
The pure-Python path stays the reference and is used when the extension was not built
or ``MWHOST_NO_ACCEL=1`` is set (read once, at import). Behaviour is the same on both:
tests/runtime/test_accel.py checks the two side by side.

``run_stages`` runs plain stages' request calls and the pipeline's bookkeeping of them in
C (host/pipeline/pipeline.py); ``MWHOST_NO_STAGE_C=1`` (read when a pipeline is built)
keeps the rest of the accelerator and calls every stage in Python, for A/B measurements.
"""

from __future__ import annotations

import os

ENV_SWITCH = "MWHOST_NO_ACCEL"
STAGE_SWITCH = "MWHOST_NO_STAGE_C"


def _load():
    if os.environ.get(ENV_SWITCH, "") not in ("", "0"):
        return None
    try:
        from . import _accel
    except ImportError:
        return None
    return _accel


#: the extension module, or None; read at call sites through this module (tests swap it)
ACCEL = _load()


def stage_calls_in_c() -> bool:
    """Whether a pipeline built now may call its plain stages through ``run_stages``."""
    return os.environ.get(STAGE_SWITCH, "") in ("", "0")


def pack_request(method: str, path: str, query: str, headers, remote_addr: str, scheme: str,
                 ctx: dict[str, str], removed: set[str] | None = None, added: list | None = None) -> bytes | None:
    """The packed Request from the environ (minus the ``removed`` names, plus the ``added``
    pairs) or from a header list, in C; None when the accelerator is off or the input needs
    the Python path."""
    accel = ACCEL
    if accel is None:
        return None
    return accel.pack_request(method, path, query, headers, remote_addr, scheme, ctx, removed, added)
