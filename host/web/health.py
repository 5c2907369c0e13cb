"""``GET /_admin/health``: liveness and the answering worker's generation."""

from __future__ import annotations

import ipaddress
import json
import os

import falcon

from ..watch import LivePipeline


def is_loopback(address: str | None) -> bool:
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False


class HealthResource:
    """JSON with ``pid`` and ``generation`` of the worker that answers, and its stages, so
    anyone can see which workers have converged on a new generation.

    NOTE: answers loopback clients only until the admin API's token auth guards it.
    """

    def __init__(self, live: LivePipeline) -> None:
        self.live = live

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        if not is_loopback(req.remote_addr):
            resp.status = 403
            resp.content_type = "application/problem+json"
            resp.text = json.dumps({"type": "about:blank", "title": "Forbidden", "status": 403,
                                    "detail": "the health endpoint answers loopback clients only"})
            return
        pipeline = self.live.holder.current
        resp.media = {
            "status": "ok",
            "pid": os.getpid(),
            "generation": pipeline.generation,
            "stages": [{"name": stage.name, "version": stage.version} for stage in pipeline.stages],
        }
