"""The fleet store: the fleet's desired state in Redis, through redis-py.

Every call either does what it says or raises ``FleetUnavailable`` (Redis unreachable, a
timeout, an error reply): callers never see a redis-py exception. Timeouts are short
(CONNECT_TIMEOUT_S, CALL_TIMEOUT_S) and redis-py's own retries are off: a write answers 503
quickly, and the syncer's loop does the retrying, with backoff.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any, Iterable

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..errors import BlobRefused, FleetUnavailable
from ..registry import Manifest
from ..settings import FleetSettings
from .keys import FleetKeys

CONNECT_TIMEOUT_S = 1.0
CALL_TIMEOUT_S = 2.0

#: compare-and-set of the manifest on its generation, and the change published, atomically.
#: ARGV: expected generation (or "seed": only over a lower one), new generation, body.
#: Returns -1 when written, else the generation Redis holds.
_SET_MANIFEST = """
local current = tonumber(redis.call('HGET', KEYS[1], 'generation') or '0')
if ARGV[1] == 'seed' then
  if current >= tonumber(ARGV[2]) then return current end
elseif current ~= tonumber(ARGV[1]) then
  return current
end
redis.call('HSET', KEYS[1], 'generation', ARGV[2], 'body', ARGV[3])
redis.call('PUBLISH', KEYS[2], ARGV[2])
return -1
"""

WRITTEN = -1


class FleetStore:
    """One fleet's keys in one Redis (``FleetSettings``): manifest, blobs, heartbeats, locks."""

    def __init__(self, settings: FleetSettings) -> None:
        self.settings = settings
        self.keys = FleetKeys(settings.name)
        self.client = redis.Redis.from_url(
            settings.url, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=CALL_TIMEOUT_S,
            retry=Retry(NoBackoff(), 0), health_check_interval=0)
        self._set_manifest = self.client.register_script(_SET_MANIFEST)

    @property
    def where(self) -> str:
        return self.settings.redacted_url()

    def call(self, what: str, function, *args, **kwargs):
        """``function(*args)`` with any redis-py failure as ``FleetUnavailable``."""
        try:
            return function(*args, **kwargs)
        except redis.RedisError as err:
            raise FleetUnavailable(f"fleet store unavailable ({self.where}: {what}: {err}); nothing changed",
                                   fleet=self.where) from err

    # ---- the manifest -------------------------------------------------------------------

    def generation(self) -> int:
        """The fleet's generation (0: the store is empty)."""
        value = self.call("read the generation", self.client.hget, self.keys.manifest, "generation")
        return int(value or 0)

    def manifest(self) -> Manifest | None:
        """The fleet's manifest (None when the store has none); ``ManifestError`` if damaged."""
        body = self.call("read the manifest", self.client.hget, self.keys.manifest, "body")
        return None if body is None else Manifest.from_bytes(body)

    def compare_and_set(self, expected: int, manifest: Manifest) -> int:
        """Write ``manifest`` if the fleet is still at generation ``expected``; WRITTEN, or the
        generation the fleet moved to meanwhile."""
        return int(self.call("write the manifest", self._set_manifest,
                             keys=[self.keys.manifest, self.keys.changes],
                             args=[str(expected), str(manifest.generation), manifest.to_bytes()]))

    def seed(self, manifest: Manifest) -> int:
        """Write ``manifest`` only over an empty store or a lower generation (a restarted,
        empty Redis is re-seeded; the highest generation wins); WRITTEN or the fleet's one."""
        return int(self.call("seed the manifest", self._set_manifest,
                             keys=[self.keys.manifest, self.keys.changes],
                             args=["seed", str(manifest.generation), manifest.to_bytes()]))

    # ---- module blobs -------------------------------------------------------------------

    def missing_blobs(self, shas: Iterable[str]) -> list[str]:
        """Which of ``shas`` the store has no blob for."""
        shas = sorted(set(shas))
        if not shas:
            return []
        pipe = self.client.pipeline(transaction=False)
        for sha in shas:
            pipe.exists(self.keys.blob(sha))
        found = self.call("look up module blobs", pipe.execute)
        return [sha for sha, there in zip(shas, found) if not there]

    def put_blob(self, sha256: str, wasm: bytes, signature: str | None = None) -> None:
        """Store a module's bytes (set once: a blob is never overwritten) and its signature."""
        pipe = self.client.pipeline(transaction=False)
        pipe.set(self.keys.blob(sha256), wasm, nx=True)
        if signature:
            pipe.set(self.keys.signature(sha256), signature, nx=True)
        self.call(f"store module {sha256[:12]}", pipe.execute)

    def blob(self, sha256: str) -> tuple[bytes, str | None]:
        """A module's bytes, checked against their sha256, and its signature (or None).
        ``BlobRefused`` when they do not match or the blob is missing: never served."""
        pipe = self.client.pipeline(transaction=False)
        pipe.get(self.keys.blob(sha256))
        pipe.get(self.keys.signature(sha256))
        wasm, signature = self.call(f"fetch module {sha256[:12]}", pipe.execute)
        if wasm is None:
            raise BlobRefused(f"module {sha256[:12]} is named by the fleet's manifest but has no blob in "
                              f"{self.where}")
        if hashlib.sha256(wasm).hexdigest() != sha256:
            raise BlobRefused(f"module blob {sha256[:12]} in {self.where} does not match its sha256 "
                              f"(it hashes to {hashlib.sha256(wasm).hexdigest()[:12]}): refused, never served")
        return wasm, signature.decode() if signature is not None else None

    # ---- hosts --------------------------------------------------------------------------

    def heartbeat(self, host_id: str, beat: dict[str, Any], ttl_s: float) -> None:
        self.call("write the heartbeat", self.client.set, self.keys.host(host_id),
                  json.dumps({**beat, "at": time.time()}, sort_keys=True), px=int(ttl_s * 1000))

    def hosts(self) -> list[dict[str, Any]]:
        """Every host whose heartbeat has not expired, by host id."""
        names = sorted(self.call("list the hosts", lambda: list(self.client.scan_iter(self.keys.hosts_pattern))))
        if not names:
            return []
        beats = self.call("read the hosts", self.client.mget, names)
        return [json.loads(beat) for beat in beats if beat is not None]

    # ---- the rollout decider's lock -----------------------------------------------------

    def hold_lock(self, key: str, owner: str, ttl_s: float) -> bool:
        """Take ``key`` for ``owner`` (or renew it when ``owner`` holds it) for ``ttl_s``."""
        px = int(ttl_s * 1000)
        if self.call("take a lock", self.client.set, key, owner, nx=True, px=px):
            return True
        renewed = self.call("renew a lock", self.client.eval,
                            "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                            "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end",
                            1, key, owner, px)
        return bool(renewed)

    def lock_owner(self, key: str) -> str | None:
        owner = self.call("read a lock", self.client.get, key)
        return owner.decode() if owner is not None else None

    # ---- audit --------------------------------------------------------------------------

    def audit(self, record: dict[str, Any], max_len: int = 10_000) -> None:
        self.call("append to the audit stream", self.client.xadd, self.keys.audit,
                  {"record": json.dumps(record, sort_keys=True, default=str)}, maxlen=max_len, approximate=True)

    def audit_records(self, limit: int) -> list[dict[str, Any]]:
        """The latest ``limit`` audit records of the fleet, oldest first."""
        entries = self.call("read the audit stream", self.client.xrevrange, self.keys.audit, count=limit)
        return [json.loads(fields[b"record"]) for _, fields in reversed(entries)]

    def pubsub(self):
        """A subscription to the change channel (its calls raise redis-py errors: the syncer's loop)."""
        subscription = self.client.pubsub(ignore_subscribe_messages=True)
        subscription.subscribe(self.keys.changes)
        return subscription

    def close(self) -> None:
        self.client.close()
