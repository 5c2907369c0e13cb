"""The demo echo: answers every method and path with what reached it after the pipeline."""

from __future__ import annotations

import falcon

from .wsgi_headers import environ_headers


class EchoSink:
    """200 and a JSON view of the request as the app sees it: method, path, query, headers, ctx."""

    def __call__(self, req: falcon.Request, resp: falcon.Response, **_: str) -> None:
        state = getattr(req.context, "mwhost", None)
        resp.media = {
            "method": req.method,
            "path": req.path,
            "query": req.query_string,
            "headers": [list(pair) for pair in environ_headers(req.env)],
            "ctx": dict(state.ctx) if state is not None else {},
        }
