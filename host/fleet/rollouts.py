"""Rollouts decided once for the fleet: one decider (a Redis lock with expiry), every host's counts.

Each host's decider (the worker holding the host's flock, host/watch/decider.py) hands its
host's summed tallies of every active step to its field of the fleet's ``counts`` hash every
round (one hash per fleet: reading it never scans the database), then bids
for the fleet's ``decider`` key (SET NX PX DECIDER_TTL_S, renewed every round by its holder).
The holder merges its own host's counts with every other host's and judges; the others only
hand on counts. When the decider's host dies its key expires and another host takes it.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Mapping

from .store import FleetStore

logger = logging.getLogger("mwhost.rollout")

#: the fleet decider's lock lives this long unless its holder renews it (every DECIDE_S)
DECIDER_TTL_S = 3.0
#: a host's counts are dropped this long after it last handed any on (its rollouts long over)
COUNTS_TTL_S = 24 * 3600


class FleetRollouts:
    """One host's part in the fleet's decider (the ``FleetRole`` of host/watch/decider.py)."""

    def __init__(self, fleet: FleetStore, host: str) -> None:
        self.fleet = fleet
        self.host = host
        self.deciding = False

    def push(self, tallies: Mapping[str, Mapping[str, Any]]) -> None:
        """This host's tallies per step key (only the active steps: older ones are dropped)."""
        value = json.dumps({"at": time.time(), "tallies": dict(tallies)}, sort_keys=True)
        self.fleet.call("hand on the rollout counts", self.fleet.client.hset, self.fleet.keys.counts, self.host,
                        value)

    def hold(self) -> bool:
        """Take or renew the fleet's decider lock; whether this host decides now."""
        held = self.fleet.hold_lock(self.fleet.keys.decider, self.host, DECIDER_TTL_S)
        if held != self.deciding:
            self.deciding = held
            if held:
                logger.info("host %s decides the rollouts of fleet %r", self.host, self.fleet.settings.name)
        return held

    def others(self, key: str) -> list[Mapping[str, Any]]:
        """Every other host's tallies of step ``key`` (hosts silent for COUNTS_TTL_S are pruned)."""
        found = self.fleet.live_fields(self.fleet.keys.counts, "at", COUNTS_TTL_S)
        return [value["tallies"][key] for host, value in found
                if host != self.host and isinstance(value.get("tallies"), dict) and key in value["tallies"]]
