"""Shared pieces of the admin tests: guests, tokens, an in-process client, the bad inputs."""

from __future__ import annotations

import dataclasses
import pathlib
import time
from dataclasses import dataclass, field
from typing import Callable

import falcon.testing
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mwhost import create_app, testing
from mwhost.admin.signatures import encode_signature, sign
from mwhost.settings import AdminSettings
from tests.server.gunicorn_process import ADMIN_SECRET, admin_token
from tests.wat import const_guest, guest, guest_wat, packed

WASM = "application/wasm"


def tagger(key: str, value: str) -> bytes:
    """A stage that puts ``key = value`` into ctx (the demo echo shows ctx)."""
    return const_guest({"action": "continue", "ctx": {key: value}})


def bearer(secret: str = ADMIN_SECRET, **claims) -> dict[str, str]:
    return {"Authorization": f"Bearer {admin_token(secret, **claims)}"}


def raw_token(claims: dict, secret: str = ADMIN_SECRET, algorithm: str = "HS256") -> dict[str, str]:
    return {"Authorization": f"Bearer {jwt.encode(claims, secret, algorithm=algorithm)}"}


def admin_client(tmp_path: pathlib.Path, *stages, secret: str | None = ADMIN_SECRET,
                 **admin: object) -> falcon.testing.TestClient:
    """A falcon TestClient for the host app with ``stages`` and ``[admin]`` settings."""
    settings = testing.pipeline_settings(tmp_path, *stages)
    settings = dataclasses.replace(settings, admin=AdminSettings(jwt_secret=secret or "", **admin))
    return falcon.testing.TestClient(create_app(settings))


# ---- guests for the bad inputs ------------------------------------------------------------

def _no_memory_export() -> bytes:
    return testing.wat_guest(guest_wat().replace('(memory (export "memory") 2)', "(memory 2)"))


def _traps_on_long_requests() -> bytes:
    """Answers the golden requests, traps on any request message longer than 1000 bytes."""
    return guest("(if (i32.gt_u (local.get $len) (i32.const 1000)) (then unreachable)) "
                 "(i64.const 0x0000001000000011)")


GOOD = tagger("good", "yes")
#: a config nested 600 deep: past Python's recursion in the manifest code before issue 11
DEEP_CONFIG = '{"a": ' + "[" * 600 + "]" * 600 + "}"


def crit_token(secret: str = ADMIN_SECRET) -> dict[str, str]:
    """A valid admin token whose header marks a JWT extension as critical (RFC 7515 §4.1.11)."""
    claims = {"sub": "t", "scope": "mwhost:admin", "exp": int(time.time()) + 600}
    return {"Authorization": f"Bearer {jwt.encode(claims, secret, algorithm='HS256', headers={'crit': ['exp']})}"}


@dataclass(frozen=True)
class Bad:
    """One bad admin call and the answer it must get; ``sign`` signs the body with the trusted key."""

    id: str
    status: int
    detail: str
    method: str = "PUT"
    path: str = "/_admin/middlewares/newcomer"
    body: bytes | None = GOOD
    params: dict = field(default_factory=dict)
    headers: dict = field(default_factory=lambda: {"Content-Type": WASM})
    auth: Callable[[], dict] | None = None  # None: a valid admin token
    sign: bool = True
    signature: str | None = None  # sent as is instead of a valid one
    check: str | None = None


def bad_inputs(other_key: Ed25519PrivateKey) -> list[Bad]:
    """Bad admin calls against the served pipeline of tests/admin/test_gunicorn.py."""
    expired = {"sub": "t", "scope": "mwhost:admin", "exp": int(time.time()) - 3600}
    return [
        # the body is not a (core, whole) WebAssembly module
        Bad("not-wasm", 400, "not a WebAssembly binary", body=b"hello, this is text", check="binary"),
        Bad("wat-text", 400, "wat2wasm", body=b"(module)", check="binary"),
        Bad("empty-body", 400, "module is empty", body=b"", check="binary"),
        Bad("truncated", 400, "does not compile", body=GOOD[: len(GOOD) // 2], check="compile"),
        Bad("component", 400, "component", body=b"\0asm\x0d\x00\x01\x00", check="binary"),
        Bad("oversize", 413, "max_module_mb", body=None),  # a 2 MiB Content-Length, body never sent
        Bad("wrong-content-type", 415, "application/wasm", headers={"Content-Type": "application/octet-stream"}),
        # ABI: exports, imports, version
        Bad("missing-export", 422, "'mw_on_request'", body=guest(exports=("mw_abi_version", "mw_alloc")),
            check="abi"),
        Bad("wrong-abi-version", 422, "mw_abi_version returned 2", body=guest(version=2), check="abi"),
        Bad("foreign-import", 422, "'env.system'",
            body=guest(imports='(import "env" "system" (func (param i32) (result i32)))'), check="abi"),
        Bad("wrong-export-signature", 422, "'mw_alloc' must have the signature",
            body=guest(exports=("mw_abi_version", "mw_on_request"),
                       extra='(func (export "mw_alloc") (result i32) (i32.const 0))'), check="abi"),
        Bad("no-memory-export", 422, "memory", body=_no_memory_export(), check="abi"),
        # start: instantiate within limits, mw_init with its config
        Bad("trap-in-mw-init", 422, "mw_init failed", body=guest(init="(unreachable)"), check="init"),
        Bad("mw-init-refuses-config", 422, "refused the config", body=guest(init="(i32.const 1)"),
            params={"config": '{"mode": "strict"}'}, check="init"),
        Bad("memory-over-limit", 422, "instantiate", body=guest(memory="200"), params={"max_memory_mb": "1"},
            check="init"),
        # probes
        Bad("probe-loops", 422, "timeout", body=guest("(loop (br 0)) (unreachable)"), check="probe"),
        Bad("probe-traps", 422, "trap", body=guest("(unreachable)"), check="probe"),
        Bad("probe-invalid-action", 422, "golden request", body=const_guest({"action": "explode"}),
            check="probe"),
        Bad("probe-out-of-bounds", 422, "outside guest memory", body=guest(packed(0x7FFF0000, 64)), check="probe"),
        Bad("sample-request-traps", 422, "sample request #0", body=_traps_on_long_requests(),
            params={"samples": '[{"path": "/big", "headers": [["x-big", "' + "a" * 1200 + '"]]}]'},
            check="probe"),
        # parameters
        Bad("bad-json-config", 400, "config is not valid JSON", params={"config": "{not json"}),
        Bad("config-not-object", 400, "must be a JSON object", params={"config": "[1, 2]"}),
        Bad("bad-samples", 400, "samples[0].path", params={"samples": '[{"path": "no-slash"}]'}),
        Bad("negative-position", 400, "position must be 0 or more", params={"position": "-1"}),
        Bad("position-not-integer", 400, "position must be an integer", params={"position": "first"}),
        Bad("position-out-of-range", 400, "out of range", params={"position": "99"}),
        Bad("bad-on-error", 400, "on_error must be one of", params={"on_error": "sometimes"}),
        Bad("zero-timeout", 400, "timeout_ms must be greater than 0", params={"timeout_ms": "0"}),
        Bad("unknown-parameter", 400, "unknown parameter 'timeout'", params={"timeout": "5"}),
        Bad("invalid-stage-name", 400, "stage name", path="/_admin/middlewares/bad%20name"),
        # signatures (the server trusts one publisher key)
        Bad("unsigned", 403, "signed modules only", sign=False, check="signature"),
        Bad("signature-of-other-bytes", 403, "does not match", check="signature",
            signature=encode_signature(sign(b"other bytes", other_key))),
        Bad("untrusted-key", 403, "does not match", check="signature",
            signature=encode_signature(sign(GOOD, other_key))),
        Bad("signature-not-base64", 403, "not valid base64", signature="***", check="signature"),
        # auth
        Bad("no-token", 401, "needs an admin token", auth=lambda: {}),
        Bad("not-bearer", 401, "must be 'Bearer <JWT>'", auth=lambda: {"Authorization": "Basic dXNlcjpwYXNz"}),
        Bad("expired-token", 401, "expired", auth=lambda: raw_token(expired)),
        Bad("token-without-exp", 401, "'exp'", auth=lambda: raw_token({"sub": "t", "scope": "mwhost:admin"})),
        Bad("wrong-secret", 401, "signature does not match",
            auth=lambda: bearer("another-secret-of-enough-length-0123456789")),
        Bad("alg-none", 401, "not accepted",
            auth=lambda: raw_token({"scope": "mwhost:admin", "exp": int(time.time()) + 60}, "", "none")),
        Bad("wrong-scope", 403, "lacks the scope 'mwhost:admin'", auth=lambda: bearer(scope="mwhost:read")),
        Bad("wrong-scope-on-rollback", 403, "lacks the scope", method="POST",
            path="/_admin/middlewares/tag/rollback", body=None, auth=lambda: bearer(scope="")),
        # unknown stages and versions, impossible rollbacks and orders
        Bad("remove-unknown-stage", 404, "no stage 'ghost'", method="DELETE", path="/_admin/middlewares/ghost",
            body=None),
        Bad("rollback-unknown-stage", 404, "no stage 'ghost'", method="POST",
            path="/_admin/middlewares/ghost/rollback", body=None),
        Bad("versions-of-unknown-stage", 404, "no stage 'ghost'", method="GET",
            path="/_admin/middlewares/ghost/versions", body=None),
        Bad("rollback-to-unknown-sha", 404, "no kept version", method="POST",
            path="/_admin/middlewares/tag/rollback", body=None, params={"sha256": "0123456789abcdef"}),
        Bad("rollback-to-non-hex", 400, "hex digits", method="POST", path="/_admin/middlewares/tag/rollback",
            body=None, params={"sha256": "not-a-sha"}),
        Bad("rollback-without-earlier-version", 409, "no earlier version", method="POST",
            path="/_admin/middlewares/solo/rollback", body=None),
        Bad("reorder-with-wrong-names", 409, "must name each current stage once", path="/_admin/pipeline/order",
            body=b'{"order": ["tag", "ghost"]}', headers={"Content-Type": "application/json"}),
        Bad("reorder-bad-json", 400, "not valid JSON", path="/_admin/pipeline/order", body=b"{order",
            headers={"Content-Type": "application/json"}),
        Bad("unknown-admin-path", 404, "no admin endpoint", method="GET", path="/_admin/nothing/here", body=None),
        Bad("method-not-allowed", 405, "PATCH is not allowed", method="PATCH", path="/_admin/pipeline", body=None),
        *issue_11_inputs(),
    ]


def issue_11_inputs() -> list[Bad]:
    """Calls that got a 500 (or worse, a 2xx) before issue 11; each must get a 4xx and change nothing."""
    no_token = lambda: {}  # noqa: E731
    return [
        Bad("crit-header-token", 401, "Unsupported critical extension", auth=crit_token),
        Bad("config-600-deep", 400, "nested deeper than 32 levels", params={"config": DEEP_CONFIG}),
        Bad("config-41-deep-tables", 400, "nested deeper than 32 levels",
            params={"config": '{"a": ' + '{"b": ' * 40 + "1" + "}" * 40 + "}"}),
        Bad("fuel-1e30", 400, "fuel must be at most 1000000000000", params={"fuel": "1" + "0" * 30}),
        Bad("timeout-1e29", 400, "timeout_ms must be at most 10000", params={"timeout_ms": "1" + "0" * 29}),
        Bad("memory-over-4-gib", 400, "max_memory_mb must be at most 4096", params={"max_memory_mb": "5000"}),
        Bad("output-huge", 400, "max_output_kb must be at most", params={"max_output_kb": "9" * 30}),
        Bad("options-without-token", 401, "needs an admin token", method="OPTIONS", path="/_admin/pipeline",
            body=None, auth=no_token),
        Bad("options-on-a-stage-without-token", 401, "needs an admin token", method="OPTIONS",
            path="/_admin/middlewares/tag", body=None, auth=no_token),
        Bad("options-on-health-without-token", 401, "needs an admin token", method="OPTIONS",
            path="/_admin/health", body=None, auth=no_token),
        Bad("patch-without-token", 401, "needs an admin token", method="PATCH", path="/_admin/pipeline",
            body=None, auth=no_token),
        Bad("name-dot", 400, "stage name '.'", path="/_admin/middlewares/."),
        Bad("name-dot-dot", 400, "stage name '..'", path="/_admin/middlewares/.."),
        Bad("name-trailing-dot", 400, "stage name 'tag.'", path="/_admin/middlewares/tag."),
        Bad("name-homoglyph", 400, "ASCII", path="/_admin/middlewares/%D1%81ors"),  # Cyrillic "с"
        Bad("name-4000-characters", 400, "4000 characters", path="/_admin/middlewares/" + "a" * 4000),
        Bad("remove-name-dot-dot", 400, "stage name '..'", method="DELETE", path="/_admin/middlewares/..",
            body=None),
    ]
