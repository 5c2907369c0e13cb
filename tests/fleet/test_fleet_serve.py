"""A fleet of real ``mwhost serve`` hosts (3 hosts x 2 workers) on a private redis-server."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import subprocess

import pytest

from tests.server.gunicorn_process import mwhost_command
from tests.fleet.hosts import fleet_host, tagger, upload, wait_converged, wait_for

pytestmark = pytest.mark.slow

HOSTS = 3


@pytest.fixture
def fleet(tmp_path, redis_server):
    """Three hosts of one fleet, every worker on the seeded generation."""
    with contextlib.ExitStack() as stack:
        hosts = [stack.enter_context(fleet_host(tmp_path / f"host{i}", redis_server.url)) for i in range(HOSTS)]
        wait_converged(hosts, 1)
        yield hosts


def _fleet_view(served) -> dict:
    status, body = served.get_json("/_admin/fleet", served.admin_headers())
    assert status == 200, body
    return body


def test_an_upload_to_any_host_reaches_every_worker_of_every_host(fleet):
    """An upload to one host is served by every worker of all three hosts, and /_admin/fleet
    on any host lists the three hosts in sync on that generation."""
    for round_, target in enumerate((1, 2)):
        status, body = upload(fleet[target], "tag", tagger(f"round{round_}"))
        assert status == 201, body
        wait_converged(fleet, body["generation"])
    view = wait_for(lambda: (v := _fleet_view(fleet[0]))["in_sync"] and len(v["hosts"]) == HOSTS and v,
                    10, "three hosts in sync in /_admin/fleet")
    assert view["generation"] == 3
    assert all(set(host["workers"].values()) == {3} for host in view["hosts"])
    status, _, echoed = fleet[0].request("GET", "/")
    assert status == 200 and b"round1" in echoed
    listed = subprocess.run(mwhost_command("list", "--url", fleet[2].url, "--token",
                                           fleet[2].admin_headers()["Authorization"].split()[1]),
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert "fleet 'default' at generation 3: 3 host(s), in sync" in listed.stdout


def test_concurrent_uploads_to_two_hosts_end_in_one_consistent_generation(fleet):
    """Uploads of two stages sent at once to two hosts both land (one after the other, by
    compare-and-set) and every host ends on one generation holding both."""
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda args: upload(*args),
                                [(fleet[0], "left", tagger("left")), (fleet[1], "right", tagger("right"))]))
    assert [status for status, _ in answers] == [201, 201], answers
    assert sorted(body["generation"] for _, body in answers) == [2, 3]
    wait_converged(fleet, 3)
    for served in fleet:
        status, pipeline = served.get_json("/_admin/pipeline", served.admin_headers())
        assert pipeline["generation"] == 3
        assert [stage["name"] for stage in pipeline["stages"]] in (["tag", "left", "right"], ["tag", "right", "left"])


def test_redis_outage_hosts_keep_serving_writes_answer_503_and_an_empty_redis_is_reseeded(tmp_path, redis_server):
    """Redis stopped: every host keeps serving, an upload answers 503 problem+json (fleet store
    unavailable) and changes nothing, a host restarted meanwhile serves its last pipeline;
    Redis back empty: the fleet is re-seeded with the newest generation, writes answer 503 (being
    re-seeded) for the grace window, then land and every host converges again."""
    with contextlib.ExitStack() as stack:
        hosts = [stack.enter_context(fleet_host(tmp_path / f"host{i}", redis_server.url)) for i in range(HOSTS)]
        status, body = upload(hosts[0], "tag", tagger("before"))
        assert status == 201, body
        wait_converged(hosts, 2)

        redis_server.stop()
        for served in hosts:
            wait_for(lambda s=served: "fleet sync failed" in s.output(), 10, "the syncer to see the outage")
            status, _, echoed = served.request("GET", "/")
            assert status == 200 and b"before" in echoed
        status, headers, raw = hosts[1].request(
            "PUT", "/_admin/middlewares/tag", {**hosts[1].admin_headers(), "Content-Type": "application/wasm"},
            tagger("during"))
        problem = json.loads(raw)
        assert status == 503 and headers["content-type"].startswith("application/problem+json"), problem
        assert "fleet store unavailable" in problem["detail"]
        assert hosts[1].health()["generation"] == 2

        # a host restarted during the outage serves its last pipeline from its local copy
        stack.close()
        restarted = stack.enter_context(fleet_host(tmp_path / "host2", redis_server.url))
        assert restarted.health()["generation"] == 2
        status, _, echoed = restarted.request("GET", "/")
        assert status == 200 and b"before" in echoed
        hosts = [stack.enter_context(fleet_host(tmp_path / f"host{i}", redis_server.url)) for i in range(2)] \
            + [restarted]

        redis_server.start()  # empty: nothing was persisted
        client = redis_server.client()
        wait_for(lambda: int(client.hget("mwhost:default:manifest", "generation") or 0) == 2, 15,
                 "the fleet re-seeded with generation 2")
        status, body = upload(hosts[2], "tag", tagger("too soon"))  # within the re-seed grace window
        assert status == 503 and "the fleet is being re-seeded" in body["detail"], body
        assert int(client.hget("mwhost:default:manifest", "generation")) == 2
        wait_for(lambda: not client.exists("mwhost:default:reseeded"), 20, "the re-seed grace window to end")
        client.close()
        status, body = upload(hosts[2], "tag", tagger("after"))
        assert status == 201, body
        assert body["generation"] == 3
        wait_converged(hosts, 3)


def test_a_module_dropped_on_one_host_is_served_by_every_host(tmp_path, redis_server):
    """The drop folder of a fleet host writes to the fleet: a module dropped on one host
    (joined by its config's [fleet] table) becomes a stage on every worker of the other host
    (joined by $MWHOST_FLEET_URL) too."""
    with contextlib.ExitStack() as stack:
        hosts = [stack.enter_context(fleet_host(tmp_path / f"host{i}", redis_server.url, joined_by=how))
                 for i, how in enumerate(("config", "env"))]
        wait_converged(hosts, 1)
        drop = tmp_path / "host0" / "data" / "drop"
        wait_for(lambda: drop.is_dir(), 10, "the drop folder")
        (drop / ".dropped.wasm.tmp").write_bytes(tagger("dropped"))
        (drop / ".dropped.wasm.tmp").rename(drop / "dropped.wasm")
        wait_converged(hosts, 2)
        status, pipeline = hosts[1].get_json("/_admin/pipeline", hosts[1].admin_headers())
        assert [(s["name"], s["origin"]) for s in pipeline["stages"]] == [("tag", "config"), ("dropped", "drop")]
