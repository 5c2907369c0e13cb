"""``GET /_admin/audit?limit=N``: the latest writes newest first, read from the log's end,
its limit checked (400 problems), behind the admin token like every admin call."""

from __future__ import annotations

import json

import pytest

from mwhost.admin.audit import DEFAULT_AUDIT_LIMIT, MAX_AUDIT_LIMIT
from mwhost.registry import AuditLog
from tests.admin.support import WASM, admin_client, bearer, tagger

AUTH = bearer()


def test_the_latest_writes_come_newest_first_with_refusals_and_their_detail(tmp_path):
    """Two uploads and a refused one are listed newest first with who, action, result and detail."""
    client = admin_client(tmp_path, ("tag", tagger("v", "1"), {}))
    for body in (tagger("v", "2"), b"not a module", tagger("v", "3")):
        client.simulate_put("/_admin/middlewares/tag", body=body, headers={**AUTH, "Content-Type": WASM})
    result = client.simulate_get("/_admin/audit", params={"limit": "3"}, headers=AUTH)
    assert result.status_code == 200, result.text
    assert result.json["limit"] == 3
    entries = result.json["entries"]
    assert [(e["action"], e["result"], e["status"]) for e in entries] == \
        [("upload", "ok", 201), ("upload", "refused", 400), ("upload", "ok", 201)]
    assert entries[0]["who"] == "tests" and entries[0]["stage"] == "tag"
    assert "WebAssembly" in entries[1]["detail"]
    assert client.simulate_get("/_admin/audit", headers=AUTH).json["limit"] == DEFAULT_AUDIT_LIMIT


@pytest.mark.parametrize("limit", ["0", "-1", str(MAX_AUDIT_LIMIT + 1), "ten", "1.5", "", "٣", "9" * 400])
def test_a_bad_limit_is_a_400_problem_naming_the_parameter(tmp_path, limit):
    """A limit outside 1..MAX_AUDIT_LIMIT, or not a decimal integer, is refused with a problem."""
    client = admin_client(tmp_path, ("tag", tagger("v", "1"), {}))
    result = client.simulate_get("/_admin/audit", query_string=f"limit={limit}", headers=AUTH)
    assert result.status_code == 400, result.text
    assert result.headers["content-type"] == "application/problem+json"
    assert result.json["parameter"] == "limit" and f"1 to {MAX_AUDIT_LIMIT}" in result.json["detail"]
    assert len(result.text) < 400  # a long value is cut in the detail


def test_a_repeated_or_unknown_parameter_is_refused(tmp_path):
    """``limit`` twice, or a parameter the endpoint does not know, is a 400 problem."""
    client = admin_client(tmp_path, ("tag", tagger("v", "1"), {}))
    twice = client.simulate_get("/_admin/audit", query_string="limit=1&limit=2", headers=AUTH)
    assert twice.status_code == 400 and "more than once" in twice.json["detail"]
    unknown = client.simulate_get("/_admin/audit", query_string="since=1", headers=AUTH)
    assert unknown.status_code == 400 and unknown.json["parameter"] == "since"


def test_the_audit_needs_the_admin_token(tmp_path):
    """Without a token the audit answers 401 like every admin read."""
    client = admin_client(tmp_path, ("tag", tagger("v", "1"), {}))
    assert client.simulate_get("/_admin/audit").status_code == 401


def test_latest_reads_only_the_end_of_a_long_log_and_skips_a_cut_line(tmp_path):
    """Over several read blocks, ``latest`` returns exactly the last records, newest first;
    a line cut short (a full disk) is skipped rather than failing the page."""
    log = AuditLog(tmp_path / "audit.log")
    lines = [json.dumps({"n": n, "pad": "x" * 300}) for n in range(1000)]
    log.path.write_text("\n".join(lines[:500]) + '\n{"n": cut\n' + "\n".join(lines[500:]) + "\n")
    assert [r["n"] for r in log.latest(3)] == [999, 998, 997]
    assert [r["n"] for r in log.latest(600)][-1] == 401  # the cut line was one of the last 600
    assert len(log.latest(5000)) == 1000
    assert AuditLog(tmp_path / "missing.log").latest(10) == []
