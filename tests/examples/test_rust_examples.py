"""Every Rust example, built from guest_examples/rust, through the host with falcon.testing."""

from __future__ import annotations

import time

import falcon
import jwt
import pytest

from mwhost import StageLoadError

SECRET = "correct horse battery staple, 32+ bytes"


# ---- add_header ---------------------------------------------------------------------------

def test_add_header_sets_request_and_response_headers_from_config(example_client):
    app = example_client("add_header", {"request_headers": {"x-a": "1", "x-b": "two"},
                                          "response_headers": {"x-served-by": "mwhost"}})
    result = app.simulate_get("/", headers={"X-A": "old"})
    assert ["x-a", "1"] in result.json["headers"] and ["x-b", "two"] in result.json["headers"]
    assert ["x-a", "old"] not in result.json["headers"]
    assert result.headers["x-served-by"] == "mwhost"


# ---- bearer_auth --------------------------------------------------------------------------

def token(secret: str = SECRET, **claims) -> str:
    claims.setdefault("exp", int(time.time()) + 300)
    return jwt.encode(claims, secret, algorithm="HS256")


@pytest.fixture
def auth(example_client):
    return example_client("bearer_auth", {"secret": SECRET, "realm": "mwhost"})


def test_bearer_auth_lets_a_valid_token_through_with_its_subject_in_ctx(auth):
    result = auth.simulate_get("/", headers={"Authorization": f"Bearer {token(sub='alice')}"})
    assert result.status_code == 200
    assert result.json["ctx"]["sub"] == "alice"


def test_bearer_auth_challenges_a_request_without_a_token(auth):
    result = auth.simulate_get("/")
    assert result.status_code == 401
    assert result.headers["www-authenticate"] == 'Bearer realm="mwhost"'


@pytest.mark.parametrize("bad", [
    token(secret="another secret of at least 32 bytes"),            # wrong signature
    token(exp=int(time.time()) - 60),                                # expired
    token(nbf=int(time.time()) + 3600),                              # not yet valid
    jwt.encode({"exp": int(time.time()) + 300}, SECRET * 2, algorithm="HS512"),  # not HS256
    "not.a.jwt",
    "a.b",
    token()[:-3],                                                    # truncated signature
])
def test_bearer_auth_refuses_bad_tokens_with_invalid_token(auth, bad):
    result = auth.simulate_get("/", headers={"Authorization": f"Bearer {bad}"})
    assert result.status_code == 401
    challenge = result.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="mwhost"') and 'error="invalid_token"' in challenge


def test_bearer_auth_refuses_alg_none(auth):
    unsigned = jwt.encode({"exp": int(time.time()) + 300, "sub": "mallory"}, key=None, algorithm="none")
    result = auth.simulate_get("/", headers={"Authorization": f"Bearer {unsigned}"})
    assert result.status_code == 401


def test_bearer_auth_requires_exp(auth):
    no_exp = jwt.encode({"sub": "alice"}, SECRET, algorithm="HS256")
    assert auth.simulate_get("/", headers={"Authorization": f"Bearer {no_exp}"}).status_code == 401


def test_bearer_auth_without_a_secret_is_refused_at_load(example_client):
    with pytest.raises(StageLoadError, match="bearer_auth.*mw_init refused"):
        example_client("bearer_auth", {})


# ---- block_paths --------------------------------------------------------------------------

@pytest.mark.parametrize("path, status", [
    ("/admin", 403), ("/admin/", 403), ("/admin/users", 403), ("/internal/x", 403),
    ("/administrator", 200), ("/", 200), ("/public/admin", 200),
])
def test_block_paths_blocks_configured_prefixes_by_segment(example_client, path, status):
    app = example_client("block_paths", {"prefixes": ["/admin", "/internal"]})
    assert app.simulate_get(path).status_code == status


def test_block_paths_uses_the_configured_status(example_client):
    app = example_client("block_paths", {"prefixes": ["/secret"], "status": 404})
    assert app.simulate_get("/secret/plans").status_code == 404


# ---- security_headers ---------------------------------------------------------------------

def server_app() -> falcon.App:
    class Page:
        def on_get(self, req, resp):
            resp.set_header("Server", "falcon-dev")
            resp.set_header("X-Powered-By", "python")
            resp.text = "page"

    app = falcon.App()
    app.add_route("/", Page())
    return app


def test_security_headers_adds_defaults_and_removes_server_banners(example_client):
    result = example_client("security_headers", app=server_app()).simulate_get("/")
    assert result.text == "page"
    assert result.headers["x-content-type-options"] == "nosniff"
    assert result.headers["x-frame-options"] == "DENY"
    assert result.headers["referrer-policy"] == "no-referrer"
    assert result.headers["strict-transport-security"].startswith("max-age=")
    assert result.headers["content-security-policy"] == "default-src 'self'"
    assert "server" not in result.headers and "x-powered-by" not in result.headers


def test_security_headers_config_overrides_and_drops_defaults(example_client):
    config = {"headers": {"x-frame-options": "SAMEORIGIN", "content-security-policy": ""}, "remove": []}
    result = example_client("security_headers", config, app=server_app()).simulate_get("/")
    assert result.headers["x-frame-options"] == "SAMEORIGIN"
    assert "content-security-policy" not in result.headers
    assert result.headers["server"] == "falcon-dev"
