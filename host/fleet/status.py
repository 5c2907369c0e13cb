"""What ``GET /_admin/fleet`` and ``mwhost list`` show: the fleet's hosts and their drift.

Pure over a fleet store's answers (no redis import here: the admin layer uses it)."""

from __future__ import annotations

import time
from typing import Any


def fleet_status(fleet: Any) -> dict[str, Any]:
    """``GET /_admin/fleet``: the fleet's generation, its live hosts, and who is in sync: every
    worker serves the fleet's generation and the host's copy has the fleet's checksum (the
    same generation with other content is not in sync)."""
    generation, checksum = fleet.state()
    hosts = []
    for beat in fleet.hosts():
        workers = beat.get("workers", {})
        in_sync = (bool(workers) and all(served == generation for served in workers.values())
                   and beat.get("checksum") == checksum)
        hosts.append({**beat, "age_s": round(max(0.0, time.time() - beat.get("at", 0.0)), 3), "in_sync": in_sync,
                      "drift": generation - beat.get("min_generation", 0)})
    return {"name": fleet.settings.name, "store": fleet.where, "generation": generation, "checksum": checksum,
            "hosts": hosts, "in_sync": bool(hosts) and all(host["in_sync"] for host in hosts)}
