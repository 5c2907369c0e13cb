"""``GET /metrics`` (Prometheus text, admin token) and the orchestrator probes.

``/_admin/health/live`` and ``/_admin/health/ready`` answer without a token: orchestrator
probes cannot carry rotating tokens, and they reveal nothing but up/ready. Everything else
under ``/_admin/`` needs the admin token.
"""

from __future__ import annotations

import falcon

from ..admin import Admin, authorize
from ..metrics import METRICS
from ..registry import ManifestError
from ..watch import LivePipeline
from .middleware import METRICS_PATH
LIVE_PATH = "/_admin/health/live"
READY_PATH = "/_admin/health/ready"


@falcon.before(authorize)
class MetricsResource:
    """Every worker's metrics (prometheus_client multiprocess mode under ``mwhost serve``)."""

    def __init__(self, admin: Admin) -> None:
        self.admin = admin

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.data, resp.content_type = METRICS.exposition()


class LiveResource:
    """Liveness: the worker answers HTTP."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok"}


class ReadyResource:
    """Readiness: this worker serves the manifest's current generation (503 until it does)."""

    def __init__(self, live: LivePipeline) -> None:
        self.live = live

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        serving = self.live.generation
        try:
            manifest = self.live.manifests.read_good()
        except ManifestError:
            manifest = None
        wanted = manifest.generation if manifest is not None else 0
        problem = self.live.problem
        ready = serving > 0 and serving >= wanted and problem is None
        resp.status = 200 if ready else 503
        resp.media = {"ready": ready, "generation": serving, "manifest_generation": wanted}
        if not ready:
            resp.media["reason"] = problem or (f"generation {wanted} is not loaded yet" if serving
                                               else "no generation is loaded")


def mount_observability(app: falcon.App, admin: Admin, live: LivePipeline) -> None:
    app.add_route(METRICS_PATH, MetricsResource(admin))
    app.add_route(LIVE_PATH, LiveResource())
    app.add_route(READY_PATH, ReadyResource(live))
