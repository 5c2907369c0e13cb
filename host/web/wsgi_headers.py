"""Request headers between a WSGI environ and ABI v1's lists: edits written back to the environ."""

from __future__ import annotations

from ..pipeline.environ import CACHE_LIMIT, UNPREFIXED, environ_headers

__all__ = ["ENVIRON_KEYS", "environ_headers", "write_environ_headers"]


class _EnvironKeys(dict):
    """header name -> environ key."""

    def __missing__(self, name: str) -> str:
        upper = name.upper().replace("-", "_")
        key = upper if upper in UNPREFIXED else "HTTP_" + upper
        if len(self) < CACHE_LIMIT:
            self[name] = key
        return key


_KEYS = _EnvironKeys()
#: header name -> environ key (new names made on lookup): what ``_accel.write_edits`` reads
ENVIRON_KEYS = _KEYS


def write_environ_headers(env: dict, headers: list[tuple[str, str]], names: set[str]) -> None:
    """Make the environ's headers called ``names`` equal their values in ``headers``
    (repeated names joined with ", "; absent names removed). Other headers are untouched."""
    if len(names) == 1 and len(headers) == 1 and headers[0][0] in names:
        # PERF: one name edited, one value (add_header's case): nothing to group or remove
        name, value = headers[0]
        env[_KEYS[name]] = value
        return
    if len(headers) == len(names):
        # PERF: as many pairs as names (several add_header stages): when each name has one
        # pair, its value is written as it is: nothing to group, join or remove
        one_each = dict(headers)
        if len(one_each) == len(names) and one_each.keys() == names:
            keys = _KEYS
            for name, value in one_each.items():
                env[keys[name]] = value
            return
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
