"""Bad admin calls against real gunicorn with 4 workers: each gets the right status and a
problem+json body that says what is wrong, and changes nothing (manifest bytes, module store,
compile cache, and what every worker serves)."""

from __future__ import annotations

import http.client
import json
import pathlib
import socket
import urllib.parse

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mwhost.admin.signatures import encode_signature, keygen, sign
from mwhost.admin.auth import load_private_key
from tests.admin.support import GOOD, WASM, Bad, bad_inputs, tagger
from tests.server.gunicorn_process import serve
from tests.server.test_swap import swap_times, wait_for

pytestmark = pytest.mark.slow

WORKERS = 4
OTHER_KEY = Ed25519PrivateKey.generate()
BAD_INPUTS = bad_inputs(OTHER_KEY)
BASELINE_CTX = {"version": "2", "solo": "yes"}


class Host:
    """The served host and the publisher key it trusts."""

    def __init__(self, served, key, data_dir: pathlib.Path) -> None:
        self.served = served
        self.key = key
        self.data_dir = data_dir

    def call(self, case: Bad) -> tuple[int, dict[str, str], bytes]:
        headers = dict(case.headers)
        headers.update(case.auth() if case.auth else self.served.admin_headers())
        if case.body is not None and case.signature is not None:
            headers["X-Mwhost-Signature"] = case.signature
        elif case.body is not None and case.sign and case.headers.get("Content-Type") == WASM:
            headers["X-Mwhost-Signature"] = encode_signature(sign(case.body, self.key))
        path = case.path + (f"?{urllib.parse.urlencode(case.params)}" if case.params else "")
        if case.id == "oversize":
            return self._headers_only(path, headers, 2 * 1024 * 1024)
        return self.served.request(case.method, path, headers, case.body)

    def _headers_only(self, path: str, headers: dict, length: int) -> tuple[int, dict[str, str], bytes]:
        """Announce ``length`` bytes and send none: the server must answer from the headers alone."""
        conn = http.client.HTTPConnection("127.0.0.1", self.served.port, timeout=10)
        try:
            conn.putrequest("PUT", path)
            for name, value in {**headers, "Content-Length": str(length)}.items():
                conn.putheader(name, value)
            conn.endheaders()
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()

    def state(self) -> tuple:
        """Everything a refused call must leave as it was."""
        listing = lambda folder: sorted(p.name for p in (self.data_dir / folder).iterdir())  # noqa: E731
        return ((self.data_dir / "manifest.json").read_bytes(), listing("modules"), listing("cache"))

    def serves_baseline(self, generation: int) -> None:
        for _ in range(8):
            status, echoed = self.served.get_json("/")
            assert status == 200 and echoed["ctx"] == BASELINE_CTX
        assert self.served.health()["generation"] == generation


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("bad-inputs")
    private, public = keygen(tmp_path / "publisher")
    (tmp_path / "tag.wasm").write_bytes(tagger("version", "1"))
    (tmp_path / "solo.wasm").write_bytes(tagger("solo", "yes"))
    (tmp_path / "mwhost.toml").write_text(
        '[admin]\ntrusted_keys = ["publisher.pub"]\nmax_module_mb = 1\n\n'
        '[[middleware]]\nname = "tag"\nmodule = "tag.wasm"\n\n'
        '[[middleware]]\nname = "solo"\nmodule = "solo.wasm"\n')
    with serve(tmp_path, "--config", str(tmp_path / "mwhost.toml"), workers=WORKERS) as served:
        host = Host(served, load_private_key(private), tmp_path / "data")
        # a second version of "tag" through the API, so it has one to roll back to
        v2 = tagger("version", "2")
        status, _, body = served.request("PUT", "/_admin/middlewares/tag", {
            **served.admin_headers(), "Content-Type": WASM,
            "X-Mwhost-Signature": encode_signature(sign(v2, host.key))}, v2)
        assert status == 201, body
        generation = json.loads(body)["generation"]
        assert wait_for(lambda: len(swap_times(served.output(), generation)) == WORKERS, timeout=10), \
            served.output()
        host.generation = generation
        yield host
        host.serves_baseline(generation)
        # and every one of the 4 workers still serves it after all the bad calls
        seen = {}
        wait_for(lambda: seen.update({(h := served.health())["pid"]: h["generation"]}) or
                 len(seen) == WORKERS, timeout=20, interval=0)
        assert set(seen) == served.worker_pids() and set(seen.values()) == {generation}, seen


def test_there_are_at_least_twenty_bad_inputs():
    assert len(BAD_INPUTS) >= 20
    assert len({case.id for case in BAD_INPUTS}) == len(BAD_INPUTS)


@pytest.mark.parametrize("case", BAD_INPUTS, ids=lambda case: case.id)
def test_a_bad_call_is_refused_with_a_problem_and_changes_nothing(host, case):
    before = host.state()
    status, headers, body = host.call(case)
    assert status == case.status, body
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["status"] == case.status and problem["title"]
    assert case.detail in problem["detail"], problem
    if case.check:
        assert problem["check"] == case.check, problem
    if status == 401:
        assert headers["www-authenticate"].startswith("Bearer")
    assert host.state() == before
    host.serves_baseline(host.generation)


def test_a_chunked_body_over_the_limit_is_refused_after_reading_one_byte_past_it(host):
    before = host.state()
    body = b"\0asm\x01\0\0\0" + bytes(1024 * 1024)
    conn = http.client.HTTPConnection("127.0.0.1", host.served.port, timeout=10)
    try:
        conn.request("PUT", "/_admin/middlewares/chunky", encode_chunked=True,
                     body=(body[i:i + 65536] for i in range(0, len(body), 65536)),
                     headers={**host.served.admin_headers(), "Content-Type": WASM})
        response = conn.getresponse()
        status, problem = response.status, json.loads(response.read())
    finally:
        conn.close()
    assert status == 413 and "over 1048576 bytes" in problem["detail"]
    assert host.state() == before
    host.serves_baseline(host.generation)


def _cut_short(port: int, head: str, body: bytes) -> tuple[int, dict]:
    """Send ``head`` and part of a body, then close our side: the server sees the body end early."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode() + b"\r\n" + body)
        sock.shutdown(socket.SHUT_WR)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, json.loads(response.read())


def _upload_head(host, path: str, *headers: str) -> str:
    auth = host.served.admin_headers()["Authorization"]
    return "\r\n".join([f"PUT {path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: {auth}",
                        f"Content-Type: {WASM}", *headers, ""])


def test_a_truncated_chunked_upload_is_a_400_not_a_500(host):
    """A chunked body whose chunk never completes (the client closes early) gets 400 and changes nothing."""
    before = host.state()
    head = _upload_head(host, "/_admin/middlewares/cut", "Transfer-Encoding: chunked")
    status, problem = _cut_short(host.served.port, head, b"100\r\n\0asm\x01\0\0\0")
    assert status == 400 and "could not be read whole" in problem["detail"], problem
    assert host.state() == before
    host.serves_baseline(host.generation)


def test_a_body_shorter_than_its_content_length_is_a_400(host):
    """A Content-Length body cut short gets 400 naming both sizes, and changes nothing."""
    before = host.state()
    head = _upload_head(host, "/_admin/middlewares/cut", "Content-Length: 1000")
    status, problem = _cut_short(host.served.port, head, b"\0asm\x01\0\0\0")
    assert status == 400 and "ended after 8 of the 1000 bytes" in problem["detail"], problem
    assert host.state() == before


def test_a_newline_in_an_admin_path_cannot_forge_a_log_line(host):
    """%0A in an admin path (refused with and without a token) shows up escaped, never as a new line."""
    path = "/_admin/middlewares/x%0AFORGED-LINE%20INFO%20mwhost:%20all%20good"
    for headers in ({}, host.served.admin_headers()):
        status, _, _ = host.served.request("PUT", path, {**headers, "Content-Type": WASM}, GOOD)
        assert status in (400, 401)
    assert wait_for(lambda: host.served.output().count("x\\nFORGED-LINE") >= 2, timeout=10), \
        host.served.output()[-2000:]
    assert not [line for line in host.served.output().splitlines() if line.startswith("FORGED-LINE")]
