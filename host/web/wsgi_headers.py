"""Request headers between a WSGI environ and ABI v1's ``[[name, value], ...]`` lists."""

from __future__ import annotations

from functools import lru_cache

# WSGI keeps these two outside the HTTP_ namespace (PEP 3333)
_UNPREFIXED = {"CONTENT_TYPE": "content-type", "CONTENT_LENGTH": "content-length"}


@lru_cache(maxsize=1024)
def _header_name(key: str) -> str:
    return key[5:].replace("_", "-").lower()


@lru_cache(maxsize=1024)
def _environ_key(name: str) -> str:
    upper = name.upper().replace("-", "_")
    return upper if upper in _UNPREFIXED else "HTTP_" + upper


def environ_headers(env: dict) -> list[tuple[str, str]]:
    """The request's headers as lower-case (name, value) pairs, in environ order."""
    # PERF: one pass over the environ; names converted once per distinct key (lru_cache).
    headers = [(_header_name(key), value) for key, value in env.items() if key[:5] == "HTTP_"]
    for key, name in _UNPREFIXED.items():
        value = env.get(key)
        if value:
            headers.append((name, value))
    return headers


def write_environ_headers(env: dict, old: list[tuple[str, str]], new: list[tuple[str, str]]) -> None:
    """Make the environ's headers equal ``new`` (repeated names are joined with ", ")."""
    for name, _ in old:
        env.pop(_environ_key(name), None)
    joined: dict[str, str] = {}
    for name, value in new:
        key = _environ_key(name)
        joined[key] = f"{joined[key]}, {value}" if key in joined else value
    env.update(joined)
