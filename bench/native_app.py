"""The native-Python side of the load benchmark, as a gunicorn app module.

``gunicorn bench.native_app:app`` serves the host app exactly as ``mwhost serve`` builds it
(demo echo, admin routes, the WasmMiddleware) but with an empty pipeline and, in front of
it, ``$MWHOST_BENCH_NATIVE`` native Python Falcon middlewares (default 3), each doing one
add_header stage's job: one request header the app sees, one response header.
``$MWHOST_BENCH_DATA`` is the data folder (manifest, store) of that empty pipeline.
"""

from __future__ import annotations

import os
import pathlib

import falcon

import mwhost
from mwhost.settings import Settings
from mwhost.web.demo import EchoSink


class NativeAddHeader:
    """What a Python team would write instead of add_header stage ``index``."""

    def __init__(self, index: int) -> None:
        self.environ_key = f"HTTP_X_REQ_{index}"
        self.response_header = f"x-resp-{index}"

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.env[self.environ_key] = "1"

    def process_response(self, req, resp, resource, req_succeeded) -> None:
        resp.set_header(self.response_header, "1")


def build_app(count: int, data_dir: pathlib.Path) -> falcon.App:
    app = falcon.App(middleware=[NativeAddHeader(i) for i in range(count)])
    app.add_sink(EchoSink(), r"/")
    return mwhost.create_app(Settings(data_dir=data_dir), app)


app = build_app(int(os.environ.get("MWHOST_BENCH_NATIVE", "3")),
                pathlib.Path(os.environ.get("MWHOST_BENCH_DATA", "mwhost-bench-data")))
