"""The manifest store of a fleet host: writes go to the fleet first, reads stay local.

``update`` (every write: admin API, CLI through it, drop folder, config seed, rollouts) puts
the modules the new manifest names into Redis, then compare-and-sets the fleet's manifest on
its generation (publishing the change), and only then mirrors it into the local data dir,
where this host's workers pick it up as before. Redis down: ``FleetUnavailable`` and nothing
changes, here or anywhere. The fleet empty, behind this host, or re-seeded less than
RESEED_GRACE_S ago (a Redis restarted): ``FleetReseeding`` (503) and nothing changes, so a
host that is behind never writes over a generation another host holds. Another host wrote first: the change is computed again on the
new manifest, up to CAS_ATTEMPTS times, else 409. Reads (``read``, ``read_good``) never
touch Redis: workers and the request path only ever see the local copy.
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib
import time
from typing import Callable

from ..errors import AdminConflict, FleetReseeding
from ..registry import Manifest, ManifestStore, ModuleStore
from .blobs import Verify, check_signatures, fetch_kept, fetch_missing, push_missing, required
from .store import RESEED_GRACE_S as RESEED_WAIT_S
from .store import RESEEDING, WRITTEN, FleetStore

logger = logging.getLogger("mwhost.fleet")

#: how many times a write is computed again when another host's write got in first
CAS_ATTEMPTS = 8


class FleetManifestStore(ManifestStore):
    """``ManifestStore`` whose writes are fleet writes (module docstring)."""

    def __init__(self, data_dir: pathlib.Path, fleet: FleetStore, modules: ModuleStore,
                 verify: Verify | None = None) -> None:
        super().__init__(data_dir)
        self.fleet = fleet
        self.modules = modules
        self.verify = verify

    def update(self, change: Callable[[Manifest], Manifest], source: str) -> Manifest:
        with self.locked():
            for attempt in range(1, CAS_ATTEMPTS + 1):
                remote = self.fleet.manifest()
                local = self.read_good()
                self._check_not_reseeding(remote, local)
                changed = change(remote or Manifest())
                if remote is not None and same_content(changed, remote):
                    self._mirror_unlocked(remote)  # NOTE: nothing to write (a host re-seeding the same config)
                    return remote
                expected = remote.generation if remote is not None else 0
                generation = max(expected, self._newest_generation()) + 1
                updated = dataclasses.replace(changed, generation=generation, source=source, written_at=time.time())
                check_signatures(self.modules, updated, self.verify,
                                 required(updated) - (required(remote) if remote is not None else set()))
                push_missing(self.fleet, self.modules, updated)
                # NOTE: before the compare-and-set: a module this host refuses (its signature)
                # fails the write here, with nothing changed anywhere, never after the fleet moved
                fetch_missing(self.fleet, self.modules, updated, self.verify)
                moved = self.fleet.compare_and_set(expected, updated)
                if moved == RESEEDING:
                    raise _reseeding("it was re-seeded moments ago")
                if moved == WRITTEN:
                    self._write(updated)
                    logger.info("fleet generation %d written (%s)", generation, source,
                                extra={"generation": generation})
                    return updated
                logger.info("fleet moved to generation %d during a write from %d (attempt %d): computing it again",
                            moved, expected, attempt)
        raise AdminConflict(f"the fleet's manifest changed {CAS_ATTEMPTS} times during this write; "
                            "nothing changed, try again")

    def pull(self) -> bool:
        """Mirror the fleet's manifest if it is newer than the local one; whether it was."""
        remote = self.fleet.manifest()
        return remote is not None and self.mirror_fleet(remote)

    def mirror_fleet(self, manifest: Manifest) -> bool:
        """Mirror the fleet's ``manifest`` here when it is newer: its modules fetched and
        checked first (``BlobRefused`` and nothing written otherwise)."""
        if manifest.generation <= self._newest_generation():
            return False
        fetch_missing(self.fleet, self.modules, manifest, self.verify)
        written = self.mirror(manifest)
        if written:
            fetch_kept(self.fleet, self.modules, manifest, self.verify)  # NOTE: after: rollbacks, not serving
        return written

    def _mirror_unlocked(self, manifest: Manifest) -> None:
        if manifest.generation > self._newest_generation():
            fetch_missing(self.fleet, self.modules, manifest, self.verify)
            self._write(manifest)


    def _check_not_reseeding(self, remote: Manifest | None, local: Manifest | None) -> None:
        """``FleetReseeding`` while the fleet's store is empty or behind this host's copy (a
        Redis restarted: the syncers re-seed it, the highest copy wins) or was just re-seeded."""
        local_generation = max(local.generation if local is not None else 0, self._newest_generation())
        if remote is None and local_generation > 0:
            raise _reseeding("it is empty while this host has generation "
                             f"{local_generation} (Redis restarted without its data?)")
        if remote is not None and remote.generation < local_generation:
            raise _reseeding(f"it holds generation {remote.generation}, behind this host's {local_generation}")
        # NOTE: a re-seed moments ago is refused by the compare-and-set itself (RESEEDING)


def _reseeding(why: str) -> FleetReseeding:
    return FleetReseeding(f"the fleet is being re-seeded: {why}; writes wait up to {RESEED_WAIT_S:.0f} s "
                          "until every host has offered its copy, so none is lost; nothing changed, try again")


_VOLATILE = ("generation", "source", "written_at")


def same_content(a: Manifest, b: Manifest) -> bool:
    """Whether two manifests describe the same pipeline (generation and provenance aside)."""
    return {k: v for k, v in a.body().items() if k not in _VOLATILE} == \
        {k: v for k, v in b.body().items() if k not in _VOLATILE}
