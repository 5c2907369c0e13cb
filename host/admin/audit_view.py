"""``GET /_admin/audit?limit=N``: the latest admin and drop-folder writes, newest first.

Reads the audit log (host/registry/audit.py) from its end; ``limit`` is checked so one call
never reads more than ``MAX_AUDIT_LIMIT`` records. A fleet host reads the fleet's audit stream
(every host's writes; ``"source": "fleet"``), and its own file while Redis does not answer
(``"source": "local"`` with ``fleet_error`` saying why); a host without a fleet its own file.
"""

from __future__ import annotations

import falcon

from ..errors import AdminBadRequest, FleetUnavailable
from .audit import DEFAULT_AUDIT_LIMIT, MAX_AUDIT_LIMIT
from .resources import Admin, authorize

AUDIT_PATH = "/_admin/audit"


def parse_limit(params: dict) -> int:
    """The ``limit`` query parameter: an integer from 1 to MAX_AUDIT_LIMIT (else a 400 problem)."""
    unknown = sorted(set(params) - {"limit"})
    if unknown:
        raise AdminBadRequest(f"unknown parameter {unknown[0]!r} (known: limit)", parameter=unknown[0])
    value = params.get("limit")
    if value is None:
        return DEFAULT_AUDIT_LIMIT
    if isinstance(value, list):
        raise AdminBadRequest("parameter 'limit' is given more than once", parameter="limit")
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_AUDIT_LIMIT:
        shown = value if len(value) <= 20 else f"{value[:20]}..."
        raise AdminBadRequest(f"limit must be an integer from 1 to {MAX_AUDIT_LIMIT}, got {shown!r}",
                              parameter="limit")
    return int(text)


@falcon.before(authorize)
class AuditResource:
    """The newest audit records (``who``, ``action``, ``stage``, ``result``, ``status``, ...)."""

    def __init__(self, admin: Admin) -> None:
        self.admin = admin

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        limit = parse_limit(req.params)
        fleet = self.admin.service.live.fleet
        fallback = {}
        if fleet is not None:
            try:
                entries = fleet.audit_records(limit)[::-1]  # NOTE: the stream reads oldest first
                resp.media = {"limit": limit, "source": "fleet", "entries": entries}
                return
            except FleetUnavailable as err:
                fallback = {"fleet_error": f"{err.detail}: this host's own records only"}
        resp.media = {"limit": limit, "source": "local", **fallback, "entries": self.admin.audit.latest(limit)}
