"""``GET /_admin/health``: liveness and the answering worker's generation (admin token required)."""

from __future__ import annotations

import falcon

from ..admin import Admin, authorize


@falcon.before(authorize)
class HealthResource:
    """JSON with ``pid`` and ``generation`` of the worker that answers, and its stages, so an
    operator can see which workers have converged on a new generation."""

    def __init__(self, admin: Admin) -> None:
        self.admin = admin

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.admin.service.health()
