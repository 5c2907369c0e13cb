"""The control-plane bypass: no stage sees a request falcon routes to the admin API or
/metrics, however the path is spelled; every other request goes through the stages."""

from __future__ import annotations

import json

import falcon
import falcon.testing
import pytest

from mwhost import testing
from mwhost.web.app import load_live
from mwhost.web.middleware import WasmMiddleware
from tests.admin.support import WASM, admin_client, bearer, tagger
from tests.server.gunicorn_process import serve
from tests.wat import const_guest

#: a stage that answers 418 to everything it sees: a 418 means the stage saw the request
TEAPOT = const_guest({"action": "respond", "status": 418})

# (path as the client sends it, how falcon routes it): %2F and %5F are decoded into PATH_INFO
# by gunicorn and by falcon.testing alike, and the router ignores leading slashes.
PIPELINE_SPELLINGS = ["/_admin/pipeline", "//_admin/pipeline", "///_admin/pipeline",
                      "/%2F_admin/pipeline", "/%5Fadmin/pipeline", "//%5Fadmin/pipeline"]
METRICS_SPELLINGS = ["/metrics", "//metrics", "/%2Fmetrics", "/%6Detrics"]
#: answered by the admin API's /_admin/ sink (a problem+json 404), still no stage
ADMIN_SINK_SPELLINGS = ["/_admin/", "/_admin//pipeline", "/_admin/pipeline/", "/_admin/nothing"]
#: falcon routes these to the app, not the control plane: the stages must see them
APP_SPELLINGS = ["/_admin", "//_admin", "/metrics/", "/./_admin/pipeline", "//_admin/nothing",
                 "/%2E/_admin/pipeline", "/metricsx", "/x/_admin/pipeline"]


@pytest.fixture
def client(tmp_path):
    return admin_client(tmp_path, ("teapot", TEAPOT, {}))


@pytest.mark.parametrize("path", PIPELINE_SPELLINGS)
def test_every_spelling_of_an_admin_route_bypasses_the_stages(client, path):
    """A path the router sends to the admin API gets the admin answer, never the stage's."""
    result = client.simulate_get(path, headers=bearer())
    assert result.status_code == 200, (path, result.status_code, result.text[:200])
    assert [stage["name"] for stage in result.json["stages"]] == ["teapot"]


@pytest.mark.parametrize("path", METRICS_SPELLINGS)
def test_every_spelling_of_metrics_bypasses_the_stages(client, path):
    """/metrics however spelled is answered by the metrics resource, not the stage."""
    result = client.simulate_get(path, headers=bearer())
    assert result.status_code == 200, (path, result.status_code, result.text[:200])
    assert result.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize("path", ADMIN_SINK_SPELLINGS)
def test_unknown_admin_paths_are_answered_by_the_admin_api(client, path):
    """Paths the admin sink catches get its problem+json 404, and no stage sees them."""
    result = client.simulate_get(path, headers=bearer())
    assert result.status_code == 404, (path, result.status_code, result.text[:200])
    assert result.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("path", APP_SPELLINGS)
def test_paths_falcon_routes_to_the_app_go_through_the_stages(client, path):
    """A path that only looks like the control plane reaches the app, so the stages run."""
    result = client.simulate_get(path, headers=bearer())
    assert result.status_code == 418, (path, result.status_code, result.text[:200])


def test_an_upload_through_a_double_slash_reaches_the_admin_api(client):
    """PUT //_admin/middlewares/x (a MWHOST_URL ending in /) is the admin call, not the stage's."""
    result = client.simulate_put("//_admin/middlewares/tag", body=tagger("k", "v"),
                                 headers={**bearer(), "Content-Type": WASM})
    assert result.status_code == 201, result.text
    stages = client.simulate_get("//_admin/pipeline", headers=bearer()).json["stages"]
    assert [stage["name"] for stage in stages] == ["teapot", "tag"]


def test_a_bare_middleware_bypasses_the_normalised_control_paths(tmp_path):
    """Without create_app's router the middleware applies the router's leading-slash rule."""
    settings = testing.pipeline_settings(tmp_path, ("teapot", TEAPOT, {}))
    app = falcon.App(middleware=[WasmMiddleware(load_live(settings).holder)])
    app.add_sink(lambda req, resp, **_: setattr(resp, "text", "app"), "/")
    plain = falcon.testing.TestClient(app)
    assert plain.simulate_get("//metrics").text == "app"
    assert plain.simulate_get("///_admin/x").text == "app"
    assert plain.simulate_get("/api").status_code == 418


@pytest.mark.slow
def test_gunicorn_routes_every_control_spelling_past_a_blocking_stage(tmp_path):
    """Under gunicorn (which decodes %2F and %5F into PATH_INFO) the admin call and /metrics
    get their own answers through a stage that answers 418 to all it sees, and an upload
    through a double slash is the admin's 201."""
    (tmp_path / "teapot.wasm").write_bytes(TEAPOT)
    (tmp_path / "mwhost.toml").write_text('[[middleware]]\nname = "teapot"\nmodule = "teapot.wasm"\n')
    with serve(tmp_path, "--config", str(tmp_path / "mwhost.toml"), workers=1) as served:
        auth = served.admin_headers()
        for path in PIPELINE_SPELLINGS:
            status, _, body = served.request("GET", path, auth)
            assert status == 200 and json.loads(body)["stages"][0]["name"] == "teapot", (path, status, body[:200])
        for path in METRICS_SPELLINGS:
            assert served.request("GET", path, auth)[0] == 200, path
        for path in APP_SPELLINGS:
            assert served.request("GET", path, auth)[0] == 418, path
        status, _, body = served.request("PUT", "//_admin/middlewares/tag", {**auth, "Content-Type": WASM},
                                         tagger("k", "v"))
        assert status == 201, body[:300]
        assert served.request("GET", "/anything")[0] == 418


@pytest.mark.parametrize("target", ["/_admin/pipeline", "//_admin/middlewares/x", "/metrics"])
def test_a_stage_cannot_rewrite_a_request_into_the_control_plane(tmp_path, target):
    """A stage that rewrites the path (and adds a token) to reach the admin API gets a 403,
    and the admin API never sees the request."""
    rewriter = const_guest({"action": "continue", "path": target,
                            "set_headers": [["authorization", "Bearer stolen"]]})
    result = admin_client(tmp_path, ("rewriter", rewriter, {})).simulate_put("/public", body=WASM)
    assert result.status_code == 403
    assert result.headers["content-type"] == "application/problem+json"
    assert "control plane" in result.json["detail"]
