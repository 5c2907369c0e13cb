"""The drop folder of a fleet host with trusted keys (in-process, the drop process's objects)
on a real redis-server: signatures checked before anything reaches the fleet."""

from __future__ import annotations

import hashlib
import json

import pytest

from cryptography.hazmat.primitives import serialization

from mwhost.admin.signatures import encode_signature, keygen, sign
from mwhost.errors import BlobRefused
from mwhost.fleet.manifests import FleetManifestStore
from mwhost.fleet.store import FleetStore
from mwhost.fleet.trust import signature_check
from mwhost.registry import AuditLog, CompileCache, ModuleStore
from mwhost.runtime import default_runtime
from mwhost.settings import FleetSettings
from mwhost.watch import DropFolder
from tests.fleet.test_fleet_store import Host, tagger


def _drop_host(tmp_path, url: str, trusted: tuple) -> DropFolder:
    data = tmp_path / "dropper"
    modules = ModuleStore(data / "modules")
    fleet = FleetStore(FleetSettings(url=url))
    manifests = FleetManifestStore(data, fleet, modules, signature_check(trusted))
    return DropFolder(tmp_path / "drop", modules, CompileCache(default_runtime(), data / "cache"), manifests,
                      audit=AuditLog(data / "audit.log"), trusted_keys=trusted)


def test_an_unsigned_drop_on_a_host_with_trusted_keys_is_refused_and_a_signed_one_reaches_every_host(
        tmp_path, redis_server):
    """With trusted keys, a dropped module without NAME.wasm.sig is refused and audited and the
    fleet does not change (so no host with trusted keys is wedged on it); with a valid signature
    file it is written to the fleet with its signature, and a host with trusted keys mirrors it;
    a later admin write on that host still works."""
    key_path = keygen(tmp_path / "publisher")[0]
    trusted = (tmp_path / "publisher.pub",)
    drop = _drop_host(tmp_path, redis_server.url, trusted)
    reader = Host(tmp_path / "reader", redis_server.url)
    reader.manifests.verify = signature_check(trusted)
    (tmp_path / "drop").mkdir()
    wasm = tagger("dropped")
    (tmp_path / "drop" / "tag.wasm").write_bytes(wasm)
    assert drop.apply("tag") is False
    assert drop.manifests.fleet.manifest() is None
    refused = json.loads((tmp_path / "dropper" / "audit.log").read_text().splitlines()[-1])
    assert refused["result"] == "refused" and "tag.wasm.sig" in refused["detail"]

    key = serialization.load_pem_private_key(key_path.read_bytes(), None)
    (tmp_path / "drop" / "tag.wasm.sig").write_text(encode_signature(sign(wasm, key)))
    assert drop.apply("tag") is True
    sha = hashlib.sha256(wasm).hexdigest()
    assert drop.manifests.fleet.blob(sha)[1]
    assert reader.syncer.sync_once() == 1 and reader.modules.signature(sha)
    signed = tagger("admin")
    reader.modules.put(signed)
    reader.modules.put_signature(hashlib.sha256(signed).hexdigest(), encode_signature(sign(signed, key)))
    assert reader.set_stage("other", signed).generation == 2
    drop.manifests.fleet.close()
    reader.fleet.close()


def test_a_signature_missing_from_the_fleet_is_pushed_even_when_the_blob_is_there(tmp_path, redis_server):
    """A module whose blob reached the fleet unsigned gets its signature pushed by the next
    write of a host that has it, so hosts with trusted keys can mirror it."""
    key_path = keygen(tmp_path / "publisher")[0]
    key = serialization.load_pem_private_key(key_path.read_bytes(), None)
    writer = Host(tmp_path / "writer", redis_server.url)
    wasm = tagger("late-signed")
    sha = hashlib.sha256(wasm).hexdigest()
    writer.fleet.put_blob(sha, wasm)  # unsigned, as a host without the signature left it
    writer.modules.put(wasm)
    writer.modules.put_signature(sha, encode_signature(sign(wasm, key)))
    writer.set_stage("tag", wasm)
    assert writer.fleet.blob(sha)[1] == writer.modules.signature(sha)
    writer.fleet.close()


def test_a_write_on_a_host_that_refuses_a_fleet_module_changes_nothing_anywhere(tmp_path, redis_server):
    """A fleet manifest naming a module a host with trusted keys refuses (unsigned, from a host
    without keys): a write on that host fails before the compare-and-set (BlobRefused), so the
    fleet keeps its generation instead of moving while the host answers "nothing changed"."""
    key_path = keygen(tmp_path / "publisher")[0]
    careless = Host(tmp_path / "careless", redis_server.url)
    strict = Host(tmp_path / "strict", redis_server.url)
    strict.manifests.verify = signature_check((tmp_path / "publisher.pub",))
    unsigned = careless.set_stage("tag", tagger("unsigned"))
    signed = tagger("other")  # the write's own module is signed: only the fleet's one is refused
    key = serialization.load_pem_private_key(key_path.read_bytes(), None)
    strict.modules.put_signature(strict.modules.put(signed), encode_signature(sign(signed, key)))
    with pytest.raises(BlobRefused, match="from the fleet store is refused.*no signature"):
        strict.set_stage("other", signed)
    assert strict.fleet.generation() == unsigned.generation and strict.local_generation() == 0
    careless.fleet.close()
    strict.fleet.close()
