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

#: a re-seed (a Redis restarted empty or behind) holds every other write off this long: long
#: enough for every live host's syncer to offer its copy (sync.py: BACKOFF_MAX_S after Redis
#: answers again + POLL_S + HEARTBEAT_TTL_S), so the highest copy wins before anyone writes
RESEED_GRACE_S = 11.0

#: compare-and-set of the manifest on its generation, and the change published, atomically.
#: KEYS: manifest hash, changes channel, re-seed marker. ARGV: expected generation (or "seed":
#: only over a lower one), new generation, body, checksum, grace ms, "force" (a realign: passes
#: the re-seed marker). Returns -1 when written, -2 while a re-seed holds writes off, else the
#: generation Redis holds.
_SET_MANIFEST = """
local current = tonumber(redis.call('HGET', KEYS[1], 'generation') or '0')
if ARGV[1] == 'seed' then
  if current >= tonumber(ARGV[2]) then return current end
  redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[5])
else
  if current ~= tonumber(ARGV[1]) then return current end
  if ARGV[6] ~= 'force' and redis.call('EXISTS', KEYS[3]) == 1 then return -2 end
end
redis.call('HSET', KEYS[1], 'generation', ARGV[2], 'body', ARGV[3], 'checksum', ARGV[4])
redis.call('PUBLISH', KEYS[2], ARGV[2])
return -1
"""

#: delete the hash fields named in ARGV (field, value pairs) that still hold that value: stale
#: heartbeats and counts pruned without racing a host that beats meanwhile
_PRUNE = """
local pruned = 0
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    pruned = pruned + redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return pruned
"""

WRITTEN = -1
RESEEDING = -2


def manifest_checksum(manifest: Manifest) -> str:
    """What tells two manifests of one generation apart: the sha256 of their bytes."""
    return hashlib.sha256(manifest.to_bytes()).hexdigest()


class FleetStore:
    """One fleet's keys in one Redis (``FleetSettings``): manifest, blobs, heartbeats, locks."""

    def __init__(self, settings: FleetSettings) -> None:
        self.settings = settings
        self.keys = FleetKeys(settings.name)
        self.client = redis.Redis.from_url(
            settings.url, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=CALL_TIMEOUT_S,
            retry=Retry(NoBackoff(), 0), health_check_interval=0)
        self._set_manifest = self.client.register_script(_SET_MANIFEST)
        self._prune = self.client.register_script(_PRUNE)
        self.reseed_grace_s = RESEED_GRACE_S

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

    def state(self) -> tuple[int, str]:
        """The fleet's generation and its manifest's checksum (0 and "" when the store is empty)."""
        generation, checksum = self.call("read the generation", self.client.hmget, self.keys.manifest,
                                         "generation", "checksum")
        if generation is not None and checksum is None:  # NOTE: a store written before the field
            manifest = self.manifest()
            return (manifest.generation, manifest_checksum(manifest)) if manifest else (0, "")
        return int(generation or 0), (checksum or b"").decode()

    def reseeding(self) -> bool:
        """Whether a re-seed holds writes off (``RESEED_GRACE_S`` after it)."""
        return bool(self.call("read the re-seed marker", self.client.exists, self.keys.reseeded))

    def compare_and_set(self, expected: int, manifest: Manifest, force: bool = False) -> int:
        """Write ``manifest`` if the fleet is still at generation ``expected``; WRITTEN, RESEEDING
        (a re-seed holds writes off; ``force``: a realign, which takes the fleet's own content,
        passes), or the generation the fleet moved to meanwhile."""
        return self._write_manifest("write the manifest", str(expected), manifest, force)

    def seed(self, manifest: Manifest) -> int:
        """Write ``manifest`` only over an empty store or a lower generation (a restarted,
        empty Redis is re-seeded; the highest generation wins), holding other writes off for
        ``reseed_grace_s``; WRITTEN or the fleet's generation."""
        return self._write_manifest("seed the manifest", "seed", manifest)

    def _write_manifest(self, what: str, expected: str, manifest: Manifest, force: bool = False) -> int:
        body = manifest.to_bytes()
        return int(self.call(what, self._set_manifest,
                             keys=[self.keys.manifest, self.keys.changes, self.keys.reseeded],
                             args=[expected, str(manifest.generation), body, hashlib.sha256(body).hexdigest(),
                                   str(max(1, int(self.reseed_grace_s * 1000))), "force" if force else ""]))

    # ---- module blobs -------------------------------------------------------------------

    def missing_blobs(self, shas: Iterable[str]) -> list[str]:
        """Which of ``shas`` the store has no blob for."""
        return self._missing(shas, self.keys.blob, "look up module blobs")

    def missing_signatures(self, shas: Iterable[str]) -> list[str]:
        """Which of ``shas`` the store has no signature for."""
        return self._missing(shas, self.keys.signature, "look up module signatures")

    def _missing(self, shas: Iterable[str], key, what: str) -> list[str]:
        shas = sorted(set(shas))
        if not shas:
            return []
        pipe = self.client.pipeline(transaction=False)
        for sha in shas:
            pipe.exists(key(sha))
        found = self.call(what, pipe.execute)
        return [sha for sha, there in zip(shas, found) if not there]

    def put_signature(self, sha256: str, signature: str) -> None:
        """Store a module's signature (set once, like its blob)."""
        self.call(f"store the signature of {sha256[:12]}", self.client.set, self.keys.signature(sha256), signature,
                  nx=True)

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
        """This host's field of the fleet's ``hosts`` hash, live until ``expires_at``."""
        now = time.time()
        self.call("write the heartbeat", self.client.hset, self.keys.hosts, host_id,
                  json.dumps({**beat, "at": now, "expires_at": now + ttl_s}, sort_keys=True))

    def hosts(self) -> list[dict[str, Any]]:
        """Every host whose heartbeat has not expired, by host id (expired ones are pruned).
        PERF: one HGETALL of this fleet's hash, never a scan of the whole database."""
        return [beat for _, beat in self.live_fields(self.keys.hosts, "expires_at")]

    def live_fields(self, key: str, expiry: str, ttl_s: float = 0.0) -> list[tuple[str, dict[str, Any]]]:
        """(field, value) of hash ``key`` whose JSON value has not expired: ``value[expiry]``
        (plus ``ttl_s``) still ahead; the others are deleted (only if unchanged meanwhile)."""
        fields = self.call("read " + key.rsplit(":", 1)[-1], self.client.hgetall, key)
        now, live, stale = time.time(), [], []
        for name, raw in sorted(fields.items()):
            try:
                value = json.loads(raw)
                fresh = float(value[expiry]) + ttl_s > now
            except (ValueError, KeyError, TypeError):
                fresh, value = False, None
            if fresh:
                live.append((name.decode(), value))
            else:
                stale += [name, raw]
        if stale:
            self.call("prune " + key.rsplit(":", 1)[-1], self._prune, keys=[key], args=stale)
        return live

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
