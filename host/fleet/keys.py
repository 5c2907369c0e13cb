"""The fleet's key layout in Redis, namespaced by ``[fleet] name`` (docs/fleet.md)."""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "mwhost"


@dataclass(frozen=True)
class FleetKeys:
    """Every key one fleet uses; several fleets (names) share one Redis without meeting."""

    name: str = "default"

    @property
    def base(self) -> str:
        return f"{PREFIX}:{self.name}"

    @property
    def manifest(self) -> str:
        """hash: ``generation`` (integer) and ``body`` (the manifest file's bytes, checksummed)"""
        return f"{self.base}:manifest"

    @property
    def changes(self) -> str:
        """pub/sub channel: the new generation after every manifest write"""
        return f"{self.base}:changes"

    @property
    def audit(self) -> str:
        """stream: one entry per write on any host (the audit log's records)"""
        return f"{self.base}:audit"

    @property
    def decider(self) -> str:
        """string with expiry: the host id of the fleet's rollout decider"""
        return f"{self.base}:decider"

    def blob(self, sha256: str) -> str:
        """string: a module's bytes, set once (NX) under their sha256"""
        return f"{self.base}:blob:{sha256}"

    def signature(self, sha256: str) -> str:
        """string: a module's detached publisher signature (base64), when it had one"""
        return f"{self.base}:sig:{sha256}"

    @property
    def hosts(self) -> str:
        """hash: host id -> its heartbeat (JSON, with ``expires_at``; stale fields are pruned)"""
        return f"{self.base}:hosts"

    @property
    def counts(self) -> str:
        """hash: host id -> its rollout tallies per active step (JSON, with ``at``)"""
        return f"{self.base}:counts"

    @property
    def reseeded(self) -> str:
        """string with expiry: set by a re-seed; while it lives other writes answer 503"""
        return f"{self.base}:reseeded"
