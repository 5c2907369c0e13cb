"""The fleet syncer: one per host mirrors the fleet's manifest into the local data dir.

Every worker runs a ``FleetSyncer`` thread. Each writes the generation it serves to
``<data_dir>/fleet/workers/<pid>.json`` every BEAT_S; the one holding an exclusive flock on
``<data_dir>/fleet/syncer.lock`` is the host's syncer (the role moves when its worker dies:
the kernel drops a dead process's lock). The syncer:

- listens on the fleet's change channel (pub/sub) and polls every POLL_S besides;
- when the fleet's generation is higher than the local one, fetches the missing modules
  (each checked against its sha256 and, with trusted keys, its signature: a bad one is
  refused, logged, and the generation not mirrored), then writes the local manifest; every
  worker's manifest watcher swaps to it as for a local write;
- when the fleet has no manifest or a lower generation (Redis restarted without
  persistence), re-seeds it from the local copy, only over a lower one: the highest wins
  (writes wait RESEED_GRACE_S after a re-seed, store.py, so every live host offers its copy);
- when the fleet has the same generation with other content (hosts that diverged), takes the
  fleet's copy: it is written again one generation up (a realign, compare-and-set), so every
  worker of every host swaps to it; generation numbers alone never count as "in sync";
- every REPAIR_S puts back the blobs of its manifest the fleet lacks (a tampered blob's key
  deleted by an operator is pushed again by any host with the good bytes);
- writes the host's heartbeat (``hosts:<id>``, expiring after HEARTBEAT_TTL_S): the
  generation each worker serves;
- on any Redis failure keeps the host serving its local copy and reconnects with backoff.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import pathlib
import socket
import threading
import time
from typing import Callable

from ..errors import BlobRefused, FleetUnavailable, HostError
from ..registry import Manifest, ManifestError
from ..registry.files import pid_alive, try_role_lock
from .blobs import fetch_missing, push_missing
from .manifests import FleetManifestStore
from .store import WRITTEN, manifest_checksum

logger = logging.getLogger("mwhost.fleet")

#: how often the syncer asks Redis for the generation even without a change message
POLL_S = 1.0
#: how often each worker reports the generation it serves, and the syncer beats
BEAT_S = 1.0
#: how often the syncer puts back the blobs (and signatures) of its manifest that the fleet
#: lacks: an operator repairs a tampered blob by deleting its key (docs/fleet.md)
REPAIR_S = 5.0
#: a heartbeat older than this is gone: its host is down (GET /_admin/fleet leaves it out)
HEARTBEAT_TTL_S = 5.0
#: a worker's report older than this is left out of its host's heartbeat
REPORT_STALE_S = 5.0
#: how often a worker that is not the syncer tries to become it
LOCK_RETRY_S = 1.0
#: reconnection backoff after a Redis failure: from BACKOFF_MIN_S, doubling, up to BACKOFF_MAX_S
BACKOFF_MIN_S = 0.2
BACKOFF_MAX_S = 5.0


def host_id(address: str) -> str:
    """This host's id in the fleet: the machine's name and the address it serves on."""
    return f"{socket.gethostname()}:{address}"


class FleetSyncer:
    """One worker's part in its host's fleet sync (module docstring)."""

    def __init__(self, manifests: FleetManifestStore, served: Callable[[], int], stop: threading.Event,
                 host: str, address: str) -> None:
        self.manifests = manifests
        self.fleet = manifests.fleet
        self.served = served
        self.stop = stop
        self.host = host
        self.address = address
        self.folder = manifests.data_dir / "fleet"
        self._refused: tuple[int, str] | None = None
        self._down_since: float | None = None

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="mwhost-fleet", daemon=True)
        thread.start()
        return thread

    def run(self) -> None:
        with contextlib.suppress(OSError):
            (self.folder / "workers").mkdir(parents=True, exist_ok=True)
        lock = None
        while not self.stop.is_set():
            self.report()
            lock = lock or self._try_lock()
            if lock is not None:
                logger.info("pid %d is the fleet syncer of host %s", os.getpid(), self.host)
                with lock:  # NOTE: the role ends (the flock is dropped) only when the syncer stops
                    self._sync_loop()
                return
            self.stop.wait(LOCK_RETRY_S)

    # ---- the syncer ---------------------------------------------------------------------

    def _sync_loop(self) -> None:
        backoff = BACKOFF_MIN_S
        subscription = None
        next_beat = next_repair = 0.0
        while not self.stop.is_set():
            try:
                if subscription is None:
                    subscription = self.fleet.pubsub()
                self.sync_once()
                if time.monotonic() >= next_beat:
                    self.report()
                    self.beat()
                    next_beat = time.monotonic() + BEAT_S
                if time.monotonic() >= next_repair:
                    self.repair()
                    next_repair = time.monotonic() + REPAIR_S
                self._reconnected()
                backoff = BACKOFF_MIN_S
                # NOTE: wakes at once on a change message, else after the poll period
                subscription.get_message(timeout=min(POLL_S, BEAT_S))
                while subscription.get_message(timeout=0) is not None:
                    pass  # several changes at once: one sync covers them all
            except Exception as err:  # noqa: BLE001 - the syncer must outlive Redis and any bad message
                self._failed(err, backoff)
                if subscription is not None:
                    with contextlib.suppress(Exception):
                        subscription.close()
                    subscription = None
                self.report()
                self.stop.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
        if subscription is not None:
            with contextlib.suppress(Exception):
                subscription.close()

    def sync_once(self) -> int:
        """One round: mirror a newer fleet generation, or re-seed an empty or older fleet.
        Returns the local generation after it. A refused blob or a damaged fleet manifest is
        logged once per generation and not mirrored."""
        local = self.manifests.read_good()
        local_generation = local.generation if local is not None else 0
        try:
            remote = self.fleet.manifest()
        except ManifestError as err:
            self._refuse(self.fleet.generation(), f"the fleet's manifest is damaged: {err}")
            return local_generation
        if remote is None or remote.generation < local_generation:
            if local is not None and local_generation > 0:
                self.reseed(local, remote.generation if remote is not None else 0)
            return local_generation
        if remote.generation == local_generation:
            if local is not None and manifest_checksum(remote) != manifest_checksum(local):
                return self.realign(remote)
            return local_generation
        try:
            if self.manifests.mirror_fleet(remote):
                logger.info("fleet generation %d mirrored into %s", remote.generation, self.manifests.data_dir,
                            extra={"generation": remote.generation})
        except BlobRefused as err:
            self._refuse(remote.generation, str(err))
            return local_generation
        return remote.generation

    def realign(self, remote: Manifest) -> int:
        """This host holds the fleet's generation with other content: the fleet's copy wins,
        written again one generation up (its modules checked first) so every worker swaps."""
        try:
            fetch_missing(self.fleet, self.manifests.modules, remote, self.manifests.verify)
        except BlobRefused as err:
            self._refuse(remote.generation, str(err))
            return remote.generation
        generation = max(remote.generation, self.manifests.newest_generation()) + 1
        realigned = dataclasses.replace(remote, generation=generation, source="fleet-realign", written_at=time.time())
        if self.fleet.compare_and_set(remote.generation, realigned, force=True) != WRITTEN:
            return remote.generation  # NOTE: the fleet moved meanwhile: the next round mirrors it
        logger.warning("this host's generation %d differed from the fleet's: the fleet's copy is written "
                       "again as generation %d and mirrored", remote.generation, generation,
                       extra={"generation": generation})
        self.manifests.mirror_fleet(realigned)
        return generation

    def repair(self) -> None:
        """Put back the modules this host's manifest names that the fleet lacks (SET NX, from
        the local store, each checked against its sha256 when read): a deleted tampered blob
        comes back from any host with the good bytes, and the hosts that refused it mirror."""
        local = self.manifests.read_good()
        if local is not None:
            push_missing(self.fleet, self.manifests.modules, local)

    def reseed(self, local: Manifest, fleet_generation: int) -> None:
        """Put this host's newer manifest (and its modules) into the fleet, over a lower one only."""
        push_missing(self.fleet, self.manifests.modules, local)
        result = self.fleet.seed(local)
        if result == WRITTEN:
            logger.warning("the fleet store had %s: re-seeded it with this host's generation %d",
                           f"generation {fleet_generation}" if fleet_generation else "no manifest",
                           local.generation, extra={"generation": local.generation})

    def _refuse(self, generation: int, why: str) -> None:
        if self._refused != (generation, why):
            self._refused = (generation, why)
            logger.error("fleet generation %d not mirrored, keeping the local one: %s", generation, why,
                         extra={"generation": generation})

    def _failed(self, err: Exception, backoff: float) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            what = err if isinstance(err, (FleetUnavailable, HostError)) else repr(err)
            logger.error("fleet sync failed, serving the local copy (generation %d); retrying with backoff: %s",
                         self.served(), what)

    def _reconnected(self) -> None:
        if self._down_since is not None:
            logger.warning("fleet store reachable again after %.1f s", time.monotonic() - self._down_since)
            self._down_since = None

    # ---- heartbeats ---------------------------------------------------------------------

    def report(self) -> None:
        """This worker's served generation, for its host's heartbeat."""
        with contextlib.suppress(OSError):
            path = self.folder / "workers" / f"{os.getpid()}.json"
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"pid": os.getpid(), "generation": self.served()}))
            os.replace(tmp, path)

    def beat(self) -> None:
        workers = self.workers()
        generations = sorted(workers.values())
        local = self.manifests.read_good()
        self.fleet.heartbeat(self.host, {
            "host": self.host, "address": self.address, "syncer_pid": os.getpid(),
            "workers": {str(pid): generation for pid, generation in sorted(workers.items())},
            "min_generation": generations[0] if generations else 0,
            "max_generation": generations[-1] if generations else 0,
            "local_generation": local.generation if local is not None else 0,
            "checksum": manifest_checksum(local) if local is not None else "",
        }, HEARTBEAT_TTL_S)

    def workers(self) -> dict[int, int]:
        """pid -> served generation of this host's live workers (stale reports removed)."""
        found = {}
        now = time.time()
        for path in (self.folder / "workers").glob("*.json"):
            try:
                report = json.loads(path.read_text())
                fresh = now - path.stat().st_mtime < REPORT_STALE_S and pid_alive(int(report["pid"]))
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if fresh:
                found[int(report["pid"])] = int(report["generation"])
            else:
                path.unlink(missing_ok=True)
        return found

    def _try_lock(self):
        try:
            lock = try_role_lock(self.folder / "syncer.lock")
        except OSError as err:
            logger.error("no fleet sync on this host: cannot open %s: %s", self.folder / "syncer.lock", err)
            return None
        return lock  # NOTE: kept open for the life of the process: the lock is the role

