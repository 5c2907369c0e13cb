"""Bucketing for rollouts: which variant a request gets, the same in every worker and host.

The published hash (docs/rollouts.md has test vectors, tests/pipeline/test_bucket.py checks
them)::

    bucket(salt, key) = int.from_bytes(sha256(f"{salt}:{key}".encode()).digest()[:4], "big") % 10000

A request goes to the candidate when ``bucket < percent * 100``: consistent (a key's bucket
depends on the key and the rollout's salt only), sticky for the whole rollout, and monotone
(a key on the candidate at 5% is still on it at 25%). The salt is the rollout's id, so two
rollouts do not pick the same users first.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Callable

from .messages import RequestState

BUCKETS = 10_000
KEY_FORMS = ("header:NAME", "cookie:NAME", "jwt:sub", "remote_addr")
FORCE_HEADER = "x-mwhost-variant"


def bucket(salt: str, key: str) -> int:
    """The bucket 0..9999 of ``key`` in the rollout salted with ``salt``."""
    digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % BUCKETS


KeyReader = Callable[[RequestState], "str | None"]


def key_reader(form: str) -> KeyReader:
    """A function reading ``form``'s value from a request (None when the request lacks it;
    the caller then falls back to the remote address). ValueError for an unknown form."""
    kind, _, name = form.partition(":")
    if form == "remote_addr":
        return lambda state: state.remote_addr
    if form == "jwt:sub":
        return _jwt_sub
    if kind == "header" and name and name.strip() == name:
        lowered = name.lower()
        return lambda state: _header(state, lowered)
    if kind == "cookie" and name and name.strip() == name:
        return lambda state: _cookie(state, name)
    raise ValueError(f"key {form!r} is not one of {', '.join(KEY_FORMS)}")


def _header(state: RequestState, name: str) -> str | None:
    for header, value in state.headers:
        if header == name:
            return value
    return None


def _cookie(state: RequestState, name: str) -> str | None:
    header = _header(state, "cookie")
    if not header:
        return None
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value
    return None


def _jwt_sub(state: RequestState) -> str | None:
    """The ``sub`` claim of the request's bearer token, read without verification: for
    bucketing only (a forged token only picks its own bucket)."""
    header = _header(state, "authorization")
    if not header or not header[:7].lower() == "bearer ":
        return None
    parts = header[7:].strip().split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return None
    sub = payload.get("sub") if isinstance(payload, dict) else None
    return sub if isinstance(sub, str) else None
