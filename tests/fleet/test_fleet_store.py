"""The fleet store and its manifest writes against a real redis-server (no gunicorn)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
import threading

import pytest

from cryptography.hazmat.primitives import serialization

from mwhost.admin.signatures import encode_signature, keygen, sign
from mwhost.errors import FleetReseeding, FleetUnavailable
from mwhost.fleet.manifests import FleetManifestStore
from mwhost.fleet.rollouts import FleetRollouts
from mwhost.fleet.status import fleet_status
from mwhost.fleet.store import FleetStore, manifest_checksum
from mwhost.fleet.sync import FleetSyncer
from mwhost.fleet.trust import signature_check
from mwhost.registry import AuditLog, Manifest, ManifestStore, ModuleStore, StageEntry
from mwhost.settings import FleetSettings
from tests.fleet.hosts import wait_for
from tests.wat import const_guest


def tagger(version: str) -> bytes:
    return const_guest({"action": "continue", "ctx": {"v": version}})


class Host:
    """One host's data dir with its fleet-backed manifest store (what a LivePipeline holds)."""

    def __init__(self, data_dir, url: str, name: str = "default") -> None:
        self.modules = ModuleStore(data_dir / "modules")
        self.fleet = FleetStore(FleetSettings(url=url, name=name))
        self.manifests = FleetManifestStore(data_dir, self.fleet, self.modules)
        self.syncer = FleetSyncer(self.manifests, lambda: 0, threading.Event(), f"test:{data_dir.name}", "")

    def set_stage(self, name: str, wasm: bytes) -> Manifest:
        entry = StageEntry(name=name, sha256=self.modules.put(wasm), origin="admin")
        return self.manifests.update(lambda m: m.with_stages(
            [e for e in m.stages if e.name != name] + [entry]), source="test")

    def local_generation(self) -> int:
        manifest = self.manifests.read()
        return manifest.generation if manifest else 0


@pytest.fixture
def hosts(tmp_path, redis_server):
    made = [Host(tmp_path / f"host{i}", redis_server.url) for i in range(2)]
    yield made
    for host in made:
        host.fleet.close()


def test_a_write_lands_in_redis_then_locally_and_another_host_mirrors_it(hosts):
    """A write puts the blob and the manifest into Redis (CAS), mirrors it locally, and the
    other host's syncer fetches the blob and writes the same generation into its data dir."""
    first, second = hosts
    written = first.set_stage("tag", tagger("one"))
    assert first.fleet.generation() == written.generation == first.local_generation()
    assert second.syncer.sync_once() == written.generation
    mirrored = second.manifests.read()
    assert mirrored.to_bytes() == written.to_bytes()
    assert second.modules.has(written.stages[0].sha256)


def test_concurrent_writes_on_two_hosts_end_in_one_consistent_generation(hosts):
    """Writes racing from two hosts are serialized by the compare-and-set: every write lands
    on its own generation, none is lost, and both hosts end on the same manifest."""
    barrier = threading.Barrier(2)
    errors = []

    def write(host: Host, stage: str) -> None:
        barrier.wait()
        try:
            for round_ in range(5):
                host.set_stage(stage, tagger(f"{stage}-{round_}"))
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=write, args=(host, f"s{i}")) for i, host in enumerate(hosts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    final = hosts[0].fleet.manifest()
    assert final.generation == 10
    assert {e.name: e.sha256 for e in final.stages} == {
        "s0": hashlib.sha256(tagger("s0-4")).hexdigest(), "s1": hashlib.sha256(tagger("s1-4")).hexdigest()}
    for host in hosts:
        host.syncer.sync_once()
        assert host.manifests.read().to_bytes() == final.to_bytes()


def test_a_tampered_blob_is_refused_logged_and_never_stored(hosts, caplog):
    """A fleet manifest naming a blob whose bytes do not match its sha256 is not mirrored:
    the host keeps its generation, the bytes never reach its module store, the log says why."""
    first, second = hosts
    good = first.set_stage("tag", tagger("good"))
    second.syncer.sync_once()
    wanted = tagger("wanted")
    sha = hashlib.sha256(wanted).hexdigest()
    client = first.fleet.client
    client.set(first.fleet.keys.blob(sha), tagger("evil"))
    tampered = dataclasses.replace(good.with_stages([StageEntry(name="tag", sha256=sha, origin="admin")]),
                                   generation=good.generation + 1)
    assert first.fleet.compare_and_set(good.generation, tampered) == -1
    with caplog.at_level("ERROR", logger="mwhost.fleet"):
        assert second.syncer.sync_once() == good.generation
    assert second.local_generation() == good.generation
    assert not second.modules.has(sha)
    assert "does not match its sha256" in caplog.text


def test_redis_down_a_write_raises_fleet_unavailable_and_changes_nothing(hosts, redis_server):
    """With Redis stopped a write answers FleetUnavailable (503, "fleet store unavailable") and
    the local manifest keeps its generation."""
    first, _ = hosts
    written = first.set_stage("tag", tagger("one"))
    redis_server.stop()
    with pytest.raises(FleetUnavailable) as raised:
        first.set_stage("tag", tagger("two"))
    assert raised.value.status == 503
    assert "fleet store unavailable" in raised.value.detail
    assert first.local_generation() == written.generation


def test_redis_restarted_empty_is_reseeded_with_the_highest_generation(hosts, redis_server):
    """An empty Redis (restarted without persistence) is re-seeded by the syncers: the host
    with the highest generation wins, nobody drops its pipeline, nothing goes backwards."""
    first, second = hosts
    first.set_stage("tag", tagger("one"))
    second.syncer.sync_once()
    newest = first.set_stage("tag", tagger("two"))  # second is one generation behind
    redis_server.stop()
    redis_server.start()
    assert first.fleet.manifest() is None
    second.syncer.sync_once()  # seeds its older generation
    assert first.fleet.generation() == newest.generation - 1
    first.syncer.sync_once()  # over a lower one: the highest wins
    assert first.fleet.generation() == newest.generation
    assert second.syncer.sync_once() == newest.generation
    assert second.manifests.read().to_bytes() == newest.to_bytes()
    assert second.modules.has(newest.stages[0].sha256)


def test_after_redis_restarts_empty_a_behind_host_cannot_write_until_the_fleet_is_reseeded(hosts, redis_server):
    """With Redis restarted empty, a write on a host that is behind answers 503 (the fleet is
    being re-seeded) and changes nothing, also during the grace window after the highest host
    re-seeds; afterwards it mirrors the highest copy and its write lands above it, so the
    highest host's acknowledged write is never lost nor a generation reused with other content."""
    first, second = hosts
    for host in hosts:
        host.fleet.reseed_grace_s = 0.5
    first.set_stage("tag", tagger("one"))
    second.syncer.sync_once()
    acknowledged = first.set_stage("tag", tagger("two"))  # second is one generation behind
    redis_server.stop()
    redis_server.start()
    with pytest.raises(FleetReseeding) as raised:
        second.set_stage("other", tagger("behind"))
    assert raised.value.status == 503 and "the fleet is being re-seeded" in raised.value.detail
    assert first.fleet.manifest() is None and second.local_generation() == acknowledged.generation - 1
    first.syncer.sync_once()  # the highest host re-seeds
    with pytest.raises(FleetReseeding):
        second.set_stage("other", tagger("behind"))
    assert first.fleet.generation() == acknowledged.generation
    wait_for(lambda: not first.fleet.reseeding(), 5, "the re-seed grace window to end")
    assert second.syncer.sync_once() == acknowledged.generation
    written = second.set_stage("other", tagger("behind"))
    assert written.generation == acknowledged.generation + 1
    assert {e.name for e in written.stages} == {"tag", "other"}
    assert written.stage("tag").sha256 == acknowledged.stage("tag").sha256


def test_a_host_with_the_fleets_generation_but_other_content_takes_the_fleets_copy(hosts, tmp_path):
    """Hosts that hold one generation with different content are not in sync (the checksum
    is compared, not only the generation): the diverged host's syncer takes the fleet's copy,
    written again one generation up, and every host ends on the same bytes."""
    first, second = hosts
    first.set_stage("tag", tagger("one"))
    second.syncer.sync_once()
    fleet_copy = first.set_stage("tag", tagger("fleet"))
    diverged = dataclasses.replace(fleet_copy.with_stages(
        [StageEntry(name="tag", sha256=second.modules.put(tagger("diverged")), origin="admin")]))
    ManifestStore.mirror(second.manifests, diverged)  # NOTE: what a pre-fix behind host's write left
    first.fleet.heartbeat("test:host1", {"workers": {"1": fleet_copy.generation},
                                         "checksum": manifest_checksum(diverged)}, 5)
    assert fleet_status(first.fleet)["in_sync"] is False
    realigned = second.syncer.sync_once()
    assert realigned == fleet_copy.generation + 1 == first.fleet.generation()
    assert second.manifests.read().stage("tag").sha256 == fleet_copy.stage("tag").sha256
    assert first.syncer.sync_once() == realigned
    assert first.manifests.read().to_bytes() == second.manifests.read().to_bytes()


def test_fleets_with_different_names_share_one_redis_without_meeting(tmp_path, redis_server):
    """``[fleet] name`` namespaces every key: two fleets in one Redis keep their own generations."""
    blue = Host(tmp_path / "blue", redis_server.url, "blue")
    green = Host(tmp_path / "green", redis_server.url, "green")
    blue.set_stage("tag", tagger("blue"))
    blue.set_stage("tag", tagger("blue2"))
    green.set_stage("tag", tagger("green"))
    assert (blue.fleet.generation(), green.fleet.generation()) == (2, 1)
    assert all(key.startswith((b"mwhost:blue:", b"mwhost:green:")) for key in redis_server.client().keys())
    blue.fleet.close()
    green.fleet.close()


def test_without_a_fleet_redis_is_never_imported(tmp_path):
    """A host without [fleet] builds its app without loading redis-py at all."""
    code = ("import sys, pathlib, mwhost; mwhost.create_app(mwhost.registry.demo_settings("
            f"pathlib.Path({str(tmp_path / 'data')!r}))); print(json.dumps('redis' in sys.modules))")
    result = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) is False


def test_audit_records_of_every_host_are_read_from_the_fleets_stream(hosts, tmp_path, redis_server):
    """A fleet host's audit log also goes to the fleet's stream: records written on one host
    are read on another; with Redis down a host reads its own file."""
    first, second = hosts
    AuditLog(tmp_path / "host0" / "audit.log", stream=first.fleet).record("alice", "PUT /x", "x", "ok", 201)
    AuditLog(tmp_path / "host1" / "audit.log", stream=second.fleet).record("bob", "DELETE /y", "y", "ok", 200)
    read = AuditLog(tmp_path / "host1" / "audit.log", stream=second.fleet).read()
    assert [(r["who"], r["action"]) for r in read] == [("alice", "PUT /x"), ("bob", "DELETE /y")]
    redis_server.stop()
    local = AuditLog(tmp_path / "host1" / "audit.log", stream=second.fleet).read()
    assert [r["who"] for r in local] == ["bob"]


def test_with_trusted_keys_a_host_mirrors_only_modules_signed_by_one_of_them(tmp_path, redis_server):
    """Trusted-key signatures are checked on every host: a module that reached Redis unsigned
    (or signed by another key) is refused there; a signed one is mirrored with its signature."""
    trusted_key = keygen(tmp_path / "publisher")[0]
    other_key = keygen(tmp_path / "stranger")[0]
    writer = Host(tmp_path / "writer", redis_server.url)
    reader = Host(tmp_path / "reader", redis_server.url)
    reader.manifests.verify = signature_check((tmp_path / "publisher.pub",))

    def signed_by(key_path, wasm: bytes) -> None:
        key = serialization.load_pem_private_key(key_path.read_bytes(), None)
        writer.modules.put(wasm)
        writer.modules.put_signature(hashlib.sha256(wasm).hexdigest(), encode_signature(sign(wasm, key)))

    unsigned = writer.set_stage("tag", tagger("unsigned"))
    assert reader.syncer.sync_once() == 0
    assert not reader.modules.has(unsigned.stages[0].sha256)
    strange = tagger("stranger")
    signed_by(other_key, strange)
    writer.set_stage("tag", strange)
    assert reader.syncer.sync_once() == 0
    good = tagger("publisher")
    signed_by(trusted_key, good)
    written = writer.set_stage("tag", good)
    assert reader.syncer.sync_once() == written.generation
    assert reader.modules.signature(written.stages[0].sha256)
    writer.fleet.close()
    reader.fleet.close()


def test_heartbeats_and_rollout_counts_live_in_one_hash_per_fleet_never_a_scan(hosts, redis_server):
    """hosts() and the rollout counts read one hash each (no SCAN over the database, however
    many unrelated keys it holds); an expired heartbeat is left out and its field pruned."""
    first, second = hosts
    client = redis_server.client()
    client.mset({f"unrelated:{i}": "x" for i in range(5000)})
    client.config_resetstat()
    first.fleet.heartbeat("a", {"host": "a"}, 5.0)
    first.fleet.heartbeat("gone", {"host": "gone"}, 0.001)
    wait_for(lambda: first.fleet.hosts() == [{"host": "a", **_times(first.fleet, "a")}], 5, "the stale beat to expire")
    assert client.hkeys(first.fleet.keys.hosts) == [b"a"]
    mine, theirs = FleetRollouts(first.fleet, "a"), FleetRollouts(second.fleet, "b")
    mine.push({"tag@1": {"requests": 3}})
    theirs.push({"tag@1": {"requests": 4}, "other@2": {"requests": 1}})
    assert mine.others("tag@1") == [{"requests": 4}] and theirs.others("tag@1") == [{"requests": 3}]
    assert mine.others("nothing@0") == []
    assert "cmdstat_scan" not in client.info("commandstats")
    client.close()


def _times(fleet: FleetStore, host: str) -> dict:
    beat = json.loads(fleet.client.hget(fleet.keys.hosts, host))
    return {"at": beat["at"], "expires_at": beat["expires_at"]}


def test_a_tampered_blob_is_repaired_by_deleting_its_key_and_a_host_with_the_good_bytes_pushes_it(hosts):
    """The operator's repair of a tampered blob (SET NX keeps it otherwise): delete its key; a
    host that has the good bytes puts them back (the syncer's repair round), and the host that
    refused the generation mirrors it on its next round."""
    first, second = hosts
    first.set_stage("tag", tagger("one"))
    second.syncer.sync_once()
    wanted = tagger("wanted")
    sha = hashlib.sha256(wanted).hexdigest()
    first.fleet.client.set(first.fleet.keys.blob(sha), tagger("evil"))  # tampered before the write
    written = first.set_stage("tag", wanted)  # NX: the good bytes are not written over it
    assert second.syncer.sync_once() == written.generation - 1
    first.syncer.repair()
    assert second.syncer.sync_once() == written.generation - 1  # still tampered: nothing pushed
    first.fleet.client.delete(first.fleet.keys.blob(sha))  # the operator's repair
    thread = first.syncer.start()  # NOTE: the running syncer's loop repairs on its first round
    try:
        wait_for(lambda: first.fleet.client.exists(first.fleet.keys.blob(sha)), 10, "the blob pushed again")
    finally:
        first.syncer.stop.set()
        thread.join(10)
    assert first.fleet.blob(sha)[0] == wanted
    assert second.syncer.sync_once() == written.generation
    assert second.modules.get(sha) == wanted


def test_the_reseed_grace_window_outlasts_every_live_hosts_way_back_to_the_fleet():
    """Writes wait after a re-seed long enough for any live host's syncer to offer its copy:
    its longest backoff after Redis answers again, a poll, and a heartbeat's lifetime."""
    from mwhost.fleet import store, sync
    assert store.RESEED_GRACE_S >= sync.BACKOFF_MAX_S + sync.POLL_S + sync.HEARTBEAT_TTL_S
