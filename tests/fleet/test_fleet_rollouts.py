"""Rollouts in a fleet: one decision-maker for the fleet (a Redis lock with expiry), which
moves to another host when its host is killed."""

from __future__ import annotations

import contextlib
import json
import os
import signal

import pytest

from tests.fleet.hosts import fleet_host, tagger, wait_converged, wait_for

pytestmark = pytest.mark.slow

DECIDER_KEY = "mwhost:default:decider"


def _rollout(served) -> dict:
    status, body = served.get_json("/_admin/middlewares/tag/rollout", served.admin_headers())
    assert status == 200, body
    return body


def _kill(served) -> None:
    """The whole host at once, as a machine dying: SIGKILL to the master and every worker."""
    pids = served.worker_pids()
    os.kill(served.process.pid, signal.SIGKILL)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    served.process.wait(10)


def test_the_fleet_decider_moves_when_its_host_is_killed_and_promotes_from_the_survivors_counts(
        tmp_path, redis_server):
    """A canary started on the fleet is decided by one host (the holder of the decider key);
    killing that host hands the key to the other one within the lock's expiry, and it goes on
    to promote the candidate from the traffic it sees."""
    client = redis_server.client()
    with contextlib.ExitStack() as stack:
        hosts = [stack.enter_context(fleet_host(tmp_path / f"host{i}", redis_server.url)) for i in range(2)]
        wait_converged(hosts, 1)
        query = "rollout=canary&steps=50,100&step_s=1&min_requests=20&key=header:x-user"
        status, _, body = hosts[0].request(
            "PUT", f"/_admin/middlewares/tag?{query}",
            {**hosts[0].admin_headers(), "Content-Type": "application/wasm"}, tagger("candidate"))
        assert status == 201, body
        wait_converged(hosts, json.loads(body)["generation"])

        owner = wait_for(lambda: client.get(DECIDER_KEY), 10, "a fleet decider").decode()
        decider = next(h for h in hosts if owner.endswith(f":127.0.0.1:{h.port}"))
        survivor = next(h for h in hosts if h is not decider)
        _kill(decider)

        wait_for(lambda: (client.get(DECIDER_KEY) or b"").decode().endswith(f":{survivor.port}"), 15,
                 "the decider key to move to the surviving host")
        assert "decides the rollouts of fleet 'default'" in survivor.output()
        for n in range(3000):
            survivor.request("GET", "/", {"X-User": f"user-{n}"})
            if n % 20 == 0 and _rollout(survivor)["state"] == "promoted":
                break
        rollout = _rollout(survivor)
        assert rollout["state"] == "promoted", rollout
    client.close()
