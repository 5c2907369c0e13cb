"""Request headers read from a WSGI environ as ABI v1's ``[(name, value), ...]`` list.

A plain dict is all it needs, so the pipeline reads the headers lazily (``RequestState``);
host/web/wsgi_headers.py writes edits back.
"""

from __future__ import annotations

from ..runtime import accel

# WSGI keeps these two outside the HTTP_ namespace (PEP 3333)
UNPREFIXED = {"CONTENT_TYPE": "content-type", "CONTENT_LENGTH": "content-length"}
CACHE_LIMIT = 4096  # distinct environ keys remembered; clients choose header names


class _HeaderNames(dict):
    """environ key -> header name ("" for keys that are not headers), filled on first sight."""

    def __missing__(self, key: str) -> str:
        if key[:5] == "HTTP_":
            name = key[5:].replace("_", "-").lower()
        else:
            name = UNPREFIXED.get(key, "")
        if len(self) < CACHE_LIMIT:
            self[key] = name
        return name


_NAMES = _HeaderNames()


def environ_headers(env: dict, names: _HeaderNames = _NAMES) -> list[tuple[str, str]]:
    """The request's headers as lower-case (name, value) pairs, in environ order."""
    native = accel.ACCEL
    if native is not None:
        return native.environ_headers(env, names)  # PERF: the same loop in C
    # PERF: one comprehension over the environ, names from a dict that remembers each key;
    # servers set CONTENT_TYPE/LENGTH to "" when absent, which is not a header.
    return [(name, value) for key, value in env.items()
            if (name := names[key]) and (value or key[0] == "H")]
