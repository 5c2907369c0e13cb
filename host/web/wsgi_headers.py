"""Request headers between a WSGI environ and ABI v1's ``[[name, value], ...]`` lists."""

from __future__ import annotations

# WSGI keeps these two outside the HTTP_ namespace (PEP 3333)
_UNPREFIXED = {"CONTENT_TYPE": "content-type", "CONTENT_LENGTH": "content-length"}
_CACHE_LIMIT = 4096  # distinct environ keys remembered; clients choose header names


class _HeaderNames(dict):
    """environ key -> header name ("" for keys that are not headers), filled on first sight."""

    def __missing__(self, key: str) -> str:
        if key[:5] == "HTTP_":
            name = key[5:].replace("_", "-").lower()
        else:
            name = _UNPREFIXED.get(key, "")
        if len(self) < _CACHE_LIMIT:
            self[key] = name
        return name


class _EnvironKeys(dict):
    """header name -> environ key."""

    def __missing__(self, name: str) -> str:
        upper = name.upper().replace("-", "_")
        key = upper if upper in _UNPREFIXED else "HTTP_" + upper
        if len(self) < _CACHE_LIMIT:
            self[name] = key
        return key


_NAMES = _HeaderNames()
_KEYS = _EnvironKeys()


def environ_headers(env: dict, names: _HeaderNames = _NAMES) -> list[tuple[str, str]]:
    """The request's headers as lower-case (name, value) pairs, in environ order."""
    # PERF: one comprehension over the environ, names from a dict that remembers each key;
    # servers set CONTENT_TYPE/LENGTH to "" when absent, which is not a header.
    return [(name, value) for key, value in env.items()
            if (name := names[key]) and (value or key[0] == "H")]


def write_environ_headers(env: dict, headers: list[tuple[str, str]], names: set[str]) -> None:
    """Make the environ's headers called ``names`` equal their values in ``headers``
    (repeated names joined with ", "; absent names removed). Other headers are untouched."""
    # NOTE: one pass over ``headers`` and one join per name: linear in the number of headers.
    values: dict[str, list[str]] = {name: [] for name in names}
    for header, value in headers:
        found = values.get(header)
        if found is not None:
            found.append(value)
    for name, found in values.items():
        key = _KEYS[name]
        if found:
            env[key] = ", ".join(found)
        else:
            env.pop(key, None)
