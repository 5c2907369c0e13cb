"""Module blobs between a host's local store and the fleet store, checked both ways."""

from __future__ import annotations

import logging
from typing import Callable, Iterable

from ..errors import BlobRefused, HostError
from ..registry import Manifest, ModuleStore
from .store import FleetStore

logger = logging.getLogger("mwhost.fleet")

#: ``verify(sha256, signature)``: raises when trusted keys are configured and the signature is
#: missing or wrong (the admin layer's TrustedKeys.check); None when nothing is checked
Verify = Callable[[str, "str | None"], object]


def required(manifest: Manifest) -> set[str]:
    """The modules a host must have to serve ``manifest``: its stages and active candidates."""
    shas = {entry.sha256 for entry in manifest.stages}
    for rollout in manifest.rollouts.values():
        if rollout.active:
            shas.add(rollout.candidate_sha256)
    return shas


def referenced(manifest: Manifest) -> set[str]:
    """Every module ``manifest`` names: the required ones and the kept versions (rollbacks)."""
    shas = required(manifest)
    shas.update(entry.sha256 for kept in manifest.versions.values() for entry in kept)
    shas.update(rollout.candidate_sha256 for rollout in manifest.rollouts.values())
    return {sha for sha in shas if sha}


def push_missing(fleet: FleetStore, modules: ModuleStore, manifest: Manifest) -> None:
    """Put every module ``manifest`` names that the fleet lacks, from the local store (with
    its signature), and every signature the fleet lacks for a blob it has (a module written
    unsigned first); before the manifest itself, so no host ever reads a name without bytes."""
    names = referenced(manifest)
    missing = set(fleet.missing_blobs(names))
    for sha in sorted(missing):
        try:
            wasm = modules.get(sha)
        except HostError:
            continue  # a kept version this host never had: another host pushed it, or it is gone
        fleet.put_blob(sha, wasm, modules.signature(sha))
    signed = {sha: modules.signature(sha) for sha in names - missing}
    for sha in fleet.missing_signatures(sha for sha, signature in signed.items() if signature):
        fleet.put_signature(sha, signed[sha])


def check_signatures(modules: ModuleStore, manifest: Manifest, verify: Verify | None,
                     shas: Iterable[str]) -> None:
    """Before a fleet write: the modules ``manifest`` requires among ``shas`` (the new ones)
    pass ``verify`` with their local signatures (``BlobRefused`` otherwise), so no host writes
    a module to the fleet that the hosts with trusted keys would refuse for good."""
    if verify is None:
        return
    for sha in sorted(required(manifest) & set(shas)):
        try:
            verify(sha, modules.signature(sha))
        except HostError as err:
            raise BlobRefused(f"module {sha[:12]} is not written to the fleet: {err}") from err


def fetch_missing(fleet: FleetStore, modules: ModuleStore, manifest: Manifest, verify: Verify | None,
                  shas: Iterable[str] | None = None) -> None:
    """Fetch the modules ``manifest`` requires (or ``shas``) that the local store lacks, each
    checked against its sha256 (and signature) before it is written; ``BlobRefused`` otherwise."""
    for sha in sorted(required(manifest) if shas is None else shas):
        if modules.has(sha):
            continue
        wasm, signature = fleet.blob(sha)
        if verify is not None:
            try:
                verify(sha, signature)
            except HostError as err:
                raise BlobRefused(f"module {sha[:12]} from the fleet store is refused: {err}") from err
        modules.put(wasm, sha)
        if signature:
            modules.put_signature(sha, signature)


def fetch_kept(fleet: FleetStore, modules: ModuleStore, manifest: Manifest, verify: Verify | None) -> None:
    """Best effort: the kept versions too, so a rollback works on this host while Redis is down."""
    for sha in referenced(manifest) - required(manifest):
        try:
            fetch_missing(fleet, modules, manifest, verify, [sha])
        except BlobRefused as err:
            logger.warning("kept version not mirrored: %s", err)
