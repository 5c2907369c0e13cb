"""Rollouts decided once for the fleet: one decider (a Redis lock with expiry), every host's counts.

Each host's decider (the worker holding the host's flock, host/watch/decider.py) hands its
host's summed tallies of every active step to ``counts:<host-id>`` every round, then bids
for the fleet's ``decider`` key (SET NX PX DECIDER_TTL_S, renewed every round by its holder).
The holder merges its own host's counts with every other host's and judges; the others only
hand on counts. When the decider's host dies its key expires and another host takes it.
"""

from __future__ import annotations

import json
import logging
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

    def _counts_key(self, host: str) -> str:
        return f"{self.fleet.keys.base}:counts:{host}"

    def push(self, tallies: Mapping[str, Mapping[str, Any]]) -> None:
        """This host's tallies per step key (only the active steps: older ones are dropped)."""
        key = self._counts_key(self.host)
        pipe = self.fleet.client.pipeline(transaction=True)
        pipe.delete(key)
        if tallies:
            pipe.hset(key, mapping={step: json.dumps(counts) for step, counts in tallies.items()})
            pipe.pexpire(key, int(COUNTS_TTL_S * 1000))
        self.fleet.call("hand on the rollout counts", pipe.execute)

    def hold(self) -> bool:
        """Take or renew the fleet's decider lock; whether this host decides now."""
        held = self.fleet.hold_lock(self.fleet.keys.decider, self.host, DECIDER_TTL_S)
        if held != self.deciding:
            self.deciding = held
            if held:
                logger.info("host %s decides the rollouts of fleet %r", self.host, self.fleet.settings.name)
        return held

    def others(self, key: str) -> list[Mapping[str, Any]]:
        """Every other host's tallies of step ``key``."""
        mine = self._counts_key(self.host)
        names = [name for name in self.fleet.call(
            "list the rollout counts", lambda: list(self.fleet.client.scan_iter(self._counts_key("*"))))
            if name.decode() != mine]
        if not names:
            return []
        pipe = self.fleet.client.pipeline(transaction=False)
        for name in names:
            pipe.hget(name, key)
        found = self.fleet.call("read the rollout counts", pipe.execute)
        return [json.loads(value) for value in found if value is not None]
