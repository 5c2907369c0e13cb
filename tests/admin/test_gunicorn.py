"""The admin API under real gunicorn with 4 workers: every endpoint, 8 concurrent uploaders,
rollback in every worker, and the token ``mwhost serve`` makes when no secret is set."""

from __future__ import annotations

import concurrent.futures
import json
import threading
import urllib.parse

import pytest

from mwhost.admin import AuditLog
from tests.admin.support import WASM, tagger
from tests.server.gunicorn_process import serve
from tests.server.test_swap import swap_times, wait_for

pytestmark = pytest.mark.slow

WORKERS = 4


class Api:
    """The served host's admin API, as an operator with a token uses it."""

    def __init__(self, served, data_dir) -> None:
        self.served = served
        self.data_dir = data_dir

    def call(self, method: str, path: str, body: bytes | None = None, content_type: str | None = None,
             **params) -> tuple[int, dict]:
        headers = self.served.admin_headers()
        if content_type:
            headers["Content-Type"] = content_type
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        status, _, raw = self.served.request(method, path + query, headers, body)
        return status, json.loads(raw)

    def upload(self, name: str, wasm: bytes, **params) -> tuple[int, dict]:
        return self.call("PUT", f"/_admin/middlewares/{name}", wasm, WASM, **params)

    def everywhere(self, generation: int) -> None:
        """Wait until each of the 4 workers logged that it serves ``generation``."""
        assert wait_for(lambda: len(swap_times(self.served.output(), generation)) == WORKERS, timeout=10), \
            self.served.output()[-3000:]

    def health_of_every_worker(self) -> dict[int, dict]:
        """pid -> health, sampled until every worker answered."""
        seen: dict[int, dict] = {}
        wait_for(lambda: seen.update({(h := self.served.health())["pid"]: h}) or len(seen) == WORKERS,
                 timeout=20, interval=0)
        assert set(seen) == self.served.worker_pids(), seen.keys()
        return seen

    def echoed_ctx(self, times: int = 12) -> list[dict]:
        results = [self.served.get_json("/") for _ in range(times)]
        assert all(status == 200 for status, _ in results)
        return [echoed["ctx"] for _, echoed in results]


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("admin-gunicorn")
    (tmp_path / "base.wasm").write_bytes(tagger("base", "1"))
    (tmp_path / "mwhost.toml").write_text('[[middleware]]\nname = "base"\nmodule = "base.wasm"\n')
    with serve(tmp_path, "--config", str(tmp_path / "mwhost.toml"), workers=WORKERS) as served:
        yield Api(served, tmp_path / "data")


def test_every_endpoint_and_rollback_in_every_worker(api):
    status, document = api.call("GET", "/_admin/openapi.json")
    assert status == 200 and "/_admin/middlewares/{name}" in document["paths"]

    status, v1 = api.upload("flow", tagger("flow", "1"), position="0", config="{}")
    assert status == 201 and v1["position"] == 0
    api.everywhere(v1["generation"])
    status, v2 = api.upload("flow", tagger("flow", "2"))
    assert status == 201 and v2["position"] == 0
    api.everywhere(v2["generation"])
    assert all(ctx.get("flow") == "2" for ctx in api.echoed_ctx())

    status, pipeline = api.call("GET", "/_admin/pipeline")
    assert status == 200 and pipeline["generation"] == v2["generation"]
    flow = pipeline["stages"][0]
    assert (flow["name"], flow["sha256"], flow["kept_versions"]) == ("flow", v2["sha256"], 1)
    status, versions = api.call("GET", "/_admin/middlewares/flow/versions")
    assert status == 200 and [v["sha256"] for v in versions["versions"]] == [v2["sha256"], v1["sha256"]]

    status, rolled = api.call("POST", "/_admin/middlewares/flow/rollback")
    assert status == 200 and (rolled["sha256"], rolled["previous"]) == (v1["sha256"], v2["sha256"])
    api.everywhere(rolled["generation"])
    for pid, health in api.health_of_every_worker().items():
        assert health["generation"] == rolled["generation"], pid
        assert {"name": "flow", "version": v1["sha256"]} in health["stages"], pid
    assert all(ctx.get("flow") == "1" for ctx in api.echoed_ctx())

    status, named = api.call("POST", "/_admin/middlewares/flow/rollback", sha256=v2["sha256"][:12])
    assert status == 200 and named["sha256"] == v2["sha256"]

    order = [name for name in [s["name"] for s in pipeline["stages"]] if name != "flow"] + ["flow"]
    status, reordered = api.call("PUT", "/_admin/pipeline/order", json.dumps({"order": order}).encode(),
                                 "application/json")
    assert status == 200 and reordered["order"] == order

    status, removed = api.call("DELETE", "/_admin/middlewares/flow")
    assert status == 200 and removed["removed"] == v2["sha256"]
    api.everywhere(removed["generation"])
    assert all("flow" not in ctx for ctx in api.echoed_ctx())

    actions = [(r["action"], r["stage"], r["result"]) for r in AuditLog(api.data_dir / "audit.log").read()
               if r["stage"] in ("flow", None)]
    assert actions == [("upload", "flow", "ok"), ("upload", "flow", "ok"), ("rollback", "flow", "ok"),
                       ("rollback", "flow", "ok"), ("reorder", None, "ok"), ("remove", "flow", "ok")]


def test_eight_concurrent_uploaders_end_with_one_manifest_every_worker_serves(api):
    before = api.call("GET", "/_admin/pipeline")[1]["generation"]
    start = threading.Barrier(8)

    def upload(i: int) -> tuple[int, dict]:
        start.wait()
        return api.upload(f"c{i}", tagger(f"c{i}", str(i)))

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(upload, range(8)))
    assert [status for status, _ in results] == [201] * 8, results
    generations = sorted(body["generation"] for _, body in results)
    assert generations == list(range(before + 1, before + 9))  # no write lost, none merged

    status, pipeline = api.call("GET", "/_admin/pipeline")
    assert pipeline["generation"] == before + 8
    stages = {s["name"]: s["sha256"] for s in pipeline["stages"]}
    assert {f"c{i}": body["sha256"] for i, (_, body) in enumerate(results)}.items() <= stages.items()
    api.everywhere(before + 8)
    for pid, health in api.health_of_every_worker().items():
        assert health["generation"] == before + 8
        assert {s["name"]: s["version"] for s in health["stages"]} == stages, pid
    for ctx in api.echoed_ctx():
        assert {key: ctx[key] for key in ctx if key.startswith("c")} == {f"c{i}": str(i) for i in range(8)}


def test_eight_concurrent_uploads_of_one_stage_keep_one_active_and_the_rest_as_versions(api):
    start = threading.Barrier(8)

    def upload(i: int) -> tuple[int, dict]:
        start.wait()
        return api.upload("same", tagger("same", str(i)))

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(upload, range(8)))
    assert [status for status, _ in results] == [201] * 8, results
    last = max((body for _, body in results), key=lambda body: body["generation"])
    status, versions = api.call("GET", "/_admin/middlewares/same/versions")
    assert versions["active"] == last["sha256"]  # the last write wins, and it is the one served
    kept = [v["sha256"] for v in versions["versions"][1:]]
    assert len(kept) == 5 and len(set(kept)) == 5 and last["sha256"] not in kept  # [admin] keep_versions
    api.everywhere(last["generation"])
    for health in api.health_of_every_worker().values():
        assert {"name": "same", "version": last["sha256"]} in health["stages"]


def test_serve_without_a_secret_makes_one_prints_a_token_and_warns_about_unsigned_uploads(tmp_path):
    with serve(tmp_path, workers=2, admin_secret=None) as served:
        output = served.output()
        assert "accepted unsigned" in output
        token = served.printed_token()
        status, health = served.get_json("/_admin/health", {"Authorization": f"Bearer {token}"})
        assert status == 200 and health["generation"] >= 1
        status, headers, body = served.request("GET", "/_admin/pipeline")
        assert status == 401 and headers["content-type"] == "application/problem+json"
