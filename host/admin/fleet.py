"""``GET /_admin/fleet``: the hosts of this host's fleet, their served generations, drift."""

from __future__ import annotations

import falcon

from ..errors import AdminNotFound
from ..fleet.status import fleet_status
from .resources import Admin, authorize


@falcon.before(authorize)
class FleetResource:
    """The fleet's generation and every live host (heartbeat not expired): each worker's
    served generation and whether the host is in sync; 404 on a host without a fleet, 503
    (``fleet store unavailable``) while Redis does not answer."""

    def __init__(self, admin: Admin) -> None:
        self.admin = admin

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        fleet = self.admin.service.live.fleet
        if fleet is None:
            raise AdminNotFound("this host is not in a fleet: set [fleet] url in mwhost.toml, "
                                "mwhost serve --fleet-url or $MWHOST_FLEET_URL (docs/fleet.md)")
        resp.media = fleet_status(fleet)
