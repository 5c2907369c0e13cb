"""The TCK backend as a Falcon app: it answers every request with what reached it.

``x-httpwasm-next-method``, ``x-httpwasm-next-uri`` (the raw request URI) and
``x-httpwasm-next-header-<Canonical-Name>-<i>`` for each value of each request header, the
body it read as its body, and ``x-backend: 1``.
"""

from __future__ import annotations

import falcon


def canonical(name: str) -> str:
    """Go's CanonicalHeaderKey: ``single-header`` -> ``Single-Header``."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


class Backend:
    def __call__(self, req: falcon.Request, resp: falcon.Response, **_params) -> None:
        resp.set_header("x-httpwasm-next-method", req.method)
        resp.set_header("x-httpwasm-next-uri", req.env.get("RAW_URI") or req.relative_uri)
        seen: dict[str, int] = {}
        for key, value in req.env.items():
            if not key.startswith("HTTP_"):
                continue
            name = canonical(key[5:].replace("_", "-"))
            # NOTE: WSGI joins repeated headers with ", "; split them back into values
            for item in value.split(", "):
                index = seen.get(name, 0)
                seen[name] = index + 1
                resp.append_header(f"x-httpwasm-next-header-{name}-{index}", item)
        resp.set_header("x-backend", "1")
        resp.data = req.bounded_stream.read()


def backend_app() -> falcon.App:
    app = falcon.App()
    app.add_sink(Backend(), prefix="/")
    return app
