"""The published bucketing hash: its vectors, its shares, stickiness, monotonicity, key forms."""

from __future__ import annotations

import base64
import json

import pytest

from mwhost.pipeline.bucket import BUCKETS, bucket, key_reader
from mwhost.pipeline.messages import RequestState
from mwhost.pipeline.rollout_stage import CanaryStage

#: (salt, key) -> bucket, frozen here and in docs/rollouts.md ("The hash"); checked by hand
#: with ``printf '%s' "$salt:$key" | sha256sum`` (first 8 hex digits, as an integer, % 10000)
VECTORS = [
    ("a1b2c3d4e5f60718", "user-1", 1166),
    ("a1b2c3d4e5f60718", "user-2", 1649),
    ("a1b2c3d4e5f60718", "203.0.113.7", 6017),
    ("0000000000000000", "alice", 1251),
    ("ffffffffffffffff", "alice", 6322),
    ("", "", 1014),
]
KEYS = [f"user-{i}" for i in range(5000)]


@pytest.mark.parametrize(("salt", "key", "expected"), VECTORS)
def test_the_published_vectors_hold(salt, key, expected):
    """bucket(salt, key) gives the published value for each test vector."""
    assert bucket(salt, key) == expected


@pytest.mark.parametrize("salt", ["a1b2c3d4e5f60718", "0000000000000000", "9f8e7d6c5b4a3921"])
@pytest.mark.parametrize("percent", [1, 5, 25, 50, 75])
def test_the_candidate_share_is_within_two_points_over_5000_keys(salt, percent):
    """Over 5,000 distinct keys the share below ``percent * 100`` is within 2 points of it."""
    share = sum(bucket(salt, key) < percent * 100 for key in KEYS) / len(KEYS) * 100
    assert abs(share - percent) <= 2, share


def test_buckets_are_sticky_and_every_key_stays_on_the_candidate_as_the_share_grows():
    """A key's bucket never changes within a rollout, so the candidate set at 1% is inside the
    one at 5%, at 25%, ... (monotone), and at 100% every key is on the candidate."""
    salt = "5a17ed0000000001"
    first = {key: bucket(salt, key) for key in KEYS}
    assert {key: bucket(salt, key) for key in KEYS} == first
    chosen = [{key for key in KEYS if first[key] < percent * 100} for percent in (1, 5, 25, 50, 100)]
    for smaller, larger in zip(chosen, chosen[1:]):
        assert smaller <= larger
    assert chosen[-1] == set(KEYS)
    assert all(0 <= value < BUCKETS for value in first.values())


def test_two_salts_pick_mostly_different_users_first():
    """Two rollouts (two salts) at 5% share about 5% of their users, not all of them."""
    picked = [{key for key in KEYS if bucket(salt, key) < 500} for salt in ("salt-one", "salt-two")]
    overlap = len(picked[0] & picked[1]) / len(picked[0])
    assert overlap < 0.25, overlap


def _state(headers=(), remote_addr="198.51.100.4") -> RequestState:
    return RequestState("GET", "/", "", list(headers), remote_addr, "http")


def _token(claims: dict) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"eyJhbGciOiJub25lIn0.{payload}.sig"


@pytest.mark.parametrize(("form", "headers", "expected"), [
    ("header:X-User", [("x-user", "u-7")], "u-7"),
    ("header:X-User", [], None),
    ("cookie:uid", [("cookie", "a=1; uid=u-9; b=2")], "u-9"),
    ("cookie:uid", [("cookie", "a=1")], None),
    ("jwt:sub", [("authorization", "Bearer " + _token({"sub": "u-11"}))], "u-11"),
    ("jwt:sub", [("authorization", "Bearer not-a-token")], None),
    ("jwt:sub", [("authorization", "Bearer " + _token({"sub": 12}))], None),
    ("remote_addr", [], "198.51.100.4"),
])
def test_each_key_form_reads_its_value_or_none(form, headers, expected):
    """Each key form reads its value from the request, or None when the request lacks it."""
    assert key_reader(form)(_state(headers)) == expected


@pytest.mark.parametrize("form", ["header:", "cookie:", "jwt:iss", "ip", "header: x"])
def test_an_unknown_key_form_is_refused(form):
    """An unknown or malformed key form is a ValueError naming it."""
    with pytest.raises(ValueError, match="is not one of"):
        key_reader(form)


class _Part:
    def __init__(self, name: str) -> None:
        self.name = name
        self.key = (name,)
        self.version = "0" * 64
        self.has_on_response = False
        self.fail_open = False


def _canary(percent: int, force: bool = True) -> CanaryStage:
    return CanaryStage(_Part("tag"), _Part("tag"), percent=percent, salt="a1b2c3d4e5f60718",
                       key="header:x-user", step_key=f"test-bucket/{percent}/{force}", force=force)


def test_a_request_without_the_key_is_bucketed_by_its_remote_address():
    """No X-User header: the variant is the one of the remote address's bucket."""
    canary = _canary(61)  # 203.0.113.7 is in bucket 6017, user-1 in 1166
    assert canary.variant(_state([], remote_addr="203.0.113.7")) == "candidate"
    assert _canary(60).variant(_state([], remote_addr="203.0.113.7")) == "baseline"
    assert _canary(12).variant(_state([("x-user", "user-1")], remote_addr="203.0.113.7")) == "candidate"


def test_the_force_header_picks_the_variant_unless_it_is_turned_off():
    """x-mwhost-variant overrides the bucket both ways; with force off it is ignored."""
    assert _canary(1).variant(_state([("x-mwhost-variant", "candidate")])) == "candidate"
    assert _canary(100).variant(_state([("x-mwhost-variant", "Baseline ")])) == "baseline"
    assert _canary(1, force=False).variant(_state([("x-mwhost-variant", "candidate"),
                                                   ("x-user", "user-2")])) == "baseline"


def test_a_cold_start_stays_out_of_the_latency_histogram(tmp_path):
    """A candidate call that had to make an instance counts as a request but not as a latency
    sample; calls on a warm instance are timed."""
    from mwhost.pipeline.stage import Stage
    from mwhost.runtime import GuestModule, default_runtime
    from mwhost.settings import StageSettings
    from tests.wat import guest

    module = GuestModule.from_bytes(default_runtime(), guest())
    baseline, candidate = (Stage.isolated(StageSettings(name="tag"), module) for _ in range(2))
    candidate.close()  # no idle instance: its next call is a cold start
    canary = CanaryStage(baseline, candidate, percent=100, salt="a1b2c3d4e5f60718", key="header:x-user",
                         step_key=f"test-bucket/cold/{tmp_path.name}")  # tallies are per step key
    try:
        for _ in range(3):
            canary.call_request(_state([("x-user", "user-1")]))
        tally = canary.tallies["candidate"]
        assert tally.requests == 3 and sum(tally.latency) == 2
    finally:
        canary.close()
