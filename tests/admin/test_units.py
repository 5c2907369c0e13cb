"""The admin layer's parts on their own: probe vectors, signatures, tokens, startup, manifest changes."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mwhost.admin import changes
from mwhost.admin.auth import SCOPE, Authenticator, load_private_key, mint_token
from mwhost.admin.probes import parse_samples
from mwhost.pipeline.probes import GOLDEN_REQUESTS, GOLDEN_RESPONSE
from mwhost.admin.signatures import TrustedKeys, decode_signature, encode_signature, fingerprint, keygen, sign
from mwhost.admin.startup import announce, prepare_admin
from mwhost.errors import AdminBadRequest, AdminConflict, AdminNotFound, ConfigError, SignatureRefused
from mwhost.registry import Manifest, StageEntry
from mwhost.settings import AdminSettings, Settings
from tests.conftest import VECTORS

SECRET = "unit-test-secret-0123456789-0123456789"


def _from_vector(value):
    if isinstance(value, dict) and set(value) == {"$bin"}:
        return base64.b64decode(value["$bin"])
    if isinstance(value, dict):
        return {k: _from_vector(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_vector(v) for v in value]
    return value


def test_the_shipped_probe_requests_are_the_golden_request_vectors():
    files = sorted(VECTORS.glob("request_*.json"))
    assert {path.stem for path in files} == set(GOLDEN_REQUESTS)
    for path in files:
        assert GOLDEN_REQUESTS[path.stem] == _from_vector(json.loads(path.read_text())), path.stem
    assert GOLDEN_RESPONSE == json.loads((VECTORS / "response_typical.json").read_text())


def test_sample_requests_get_defaults_and_lower_case_header_names():
    (sample,) = parse_samples('{"path": "/x", "headers": [["X-A", "1"]]}')
    assert sample["method"] == "GET" and sample["headers"] == [["x-a", "1"]] and sample["ctx"] == {}
    with pytest.raises(AdminBadRequest, match="unknown field 'body'"):
        parse_samples('[{"body": "x"}]')


# ---- signatures ---------------------------------------------------------------------------

def test_a_signature_is_ed25519_over_the_raw_sha256_digest(tmp_path):
    private, public = keygen(tmp_path / "pub")
    key = load_private_key(private)
    wasm = b"\0asm\x01\0\0\0"
    signature = sign(wasm, key)
    key.public_key().verify(signature, hashlib.sha256(wasm).digest())  # raises if not
    trusted = TrustedKeys.from_paths((public,))
    assert trusted.check(hashlib.sha256(wasm).hexdigest(), encode_signature(signature)) == fingerprint(key.public_key())
    with pytest.raises(SignatureRefused, match="does not match"):
        trusted.check(hashlib.sha256(b"other").hexdigest(), encode_signature(signature))


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites(tmp_path):
    private, public = keygen(tmp_path / "k")
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o600
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    with pytest.raises(ConfigError, match="exists"):
        keygen(tmp_path / "k")


@pytest.mark.parametrize("form", ["standard", "urlsafe", "unpadded", "raw"])
def test_signatures_decode_from_each_common_form(form):
    raw = Ed25519PrivateKey.generate().sign(b"x")
    text = {"standard": base64.b64encode(raw).decode(), "urlsafe": base64.urlsafe_b64encode(raw).decode(),
            "unpadded": base64.b64encode(raw).decode().rstrip("="), "raw": raw}[form]
    assert decode_signature(text) == raw


def test_without_trusted_keys_any_upload_is_accepted_and_nothing_claims_a_signer():
    assert TrustedKeys().check("00" * 32, None) is None
    assert TrustedKeys().check("00" * 32, "c2ln") is None


def test_a_trusted_key_that_is_not_ed25519_is_a_config_error(tmp_path):
    (tmp_path / "bad.pub").write_text("not a key")
    with pytest.raises(ConfigError, match="trusted_keys"):
        TrustedKeys.from_paths((tmp_path / "bad.pub",))


# ---- tokens and serve's startup -----------------------------------------------------------

def test_minted_tokens_carry_sub_scope_and_exp():
    claims = jwt.decode(mint_token(SECRET, sub="ops", ttl_s=60), SECRET, algorithms=["HS256"])
    assert claims["sub"] == "ops" and claims["scope"] == SCOPE and 55 <= claims["exp"] - time.time() <= 60


def test_serve_generates_a_secret_and_a_token_only_when_none_is_configured():
    startup = prepare_admin(Settings(), environ={})
    secret = startup.settings.admin.jwt_secret
    assert len(secret) >= 32 and startup.token
    assert Authenticator(secret).verify(f"Bearer {startup.token}")["scope"] == SCOPE
    text = announce(startup, "127.0.0.1:8000")
    assert f"MWHOST_TOKEN={startup.token}" in text and "accepted unsigned" in text
    configured = prepare_admin(Settings(), environ={"MWHOST_ADMIN_JWT_SECRET": SECRET})
    assert configured.token is None and configured.settings.admin.jwt_secret == ""
    assert "MWHOST_TOKEN" not in announce(configured, "127.0.0.1:8000")


def test_serve_refuses_a_bad_key_file_before_starting(tmp_path):
    with pytest.raises(ConfigError, match="jwt_public_key"):
        prepare_admin(Settings(admin=AdminSettings(jwt_public_key=tmp_path / "missing.pub")), environ={})


# ---- manifest changes ---------------------------------------------------------------------

def entry(name: str, version: str) -> StageEntry:
    return StageEntry(name=name, sha256=hashlib.sha256(version.encode()).hexdigest(), origin="admin")


def test_placing_a_stage_keeps_its_place_or_moves_it_and_checks_the_range():
    manifest = Manifest(stages=(entry("a", "1"), entry("b", "1")))
    assert [e.name for e in changes.placed(manifest, entry("c", "1"), None, 5).stages] == ["a", "b", "c"]
    assert [e.name for e in changes.placed(manifest, entry("a", "2"), None, 5).stages] == ["a", "b"]
    assert [e.name for e in changes.placed(manifest, entry("a", "2"), 1, 5).stages] == ["b", "a"]
    with pytest.raises(AdminBadRequest, match="0..1"):
        changes.placed(manifest, entry("a", "2"), 2, 5)
    with pytest.raises(changes.Unchanged):
        changes.placed(manifest, entry("a", "1"), None, 5)


def test_rollback_targets_the_newest_earlier_version_or_a_unique_prefix():
    manifest = Manifest(stages=(entry("a", "1"),))
    for version in ("2", "3"):
        manifest = changes.placed(manifest, entry("a", version), None, 5)
    assert changes.rollback_target(manifest, "a", None) == entry("a", "2")
    assert changes.rollback_target(manifest, "a", entry("a", "1").sha256[:8]) == entry("a", "1")
    with pytest.raises(AdminConflict, match="already the active one"):
        changes.rollback_target(manifest, "a", entry("a", "3").sha256)
    with pytest.raises(AdminNotFound):
        changes.rollback_target(manifest, "b", None)

