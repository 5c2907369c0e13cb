"""Issue 11, item 8 in-process: admin inputs that used to get a 500 (or a 2xx) are refused with
a 4xx problem and change nothing; the checks behind them (names, config shape, numeric ranges,
log escaping) as units."""

from __future__ import annotations

import json
import logging
import pathlib
import sys
import urllib.parse

import pytest

from mwhost.logs import TRACEBACK_MARK, EscapeControls, TextFormatter, escape_controls
from mwhost.settings import CONFIG_MAX_BYTES, CONFIG_MAX_DEPTH, STAGE_KEYS, STAGE_RANGES, check_config
from mwhost.web import live_pipeline
from tests.admin.support import WASM, Bad, admin_client, bearer, issue_11_inputs, tagger

CASES = issue_11_inputs()


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    return admin_client(tmp_path_factory.mktemp("refusals"), ("tag", tagger("tag", "1"), {}))


def _state(client) -> tuple:
    """What a refused call must leave as it was: manifest bytes, module store, served generation."""
    live = live_pipeline(client.app)
    modules = sorted(p.name for p in (live.data_dir / "modules").iterdir())
    return (live.data_dir / "manifest.json").read_bytes(), modules, live.generation


def _call(client, case: Bad):
    headers = {**case.headers, **(case.auth() if case.auth else bearer())}
    # NOTE: falcon.testing takes the path already decoded, as a WSGI server would pass it
    path = urllib.parse.unquote(case.path)
    return client.simulate_request(case.method, path, params=case.params, headers=headers,
                                   body=case.body if case.body is not None else b"")


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_an_issue_11_input_gets_a_4xx_problem_and_changes_nothing(client, case):
    """Each input of issue 11 gets its 4xx problem, and the manifest, store and served generation stay as they were."""
    before = _state(client)
    result = _call(client, case)
    assert result.status_code == case.status, result.text
    assert result.headers["content-type"] == "application/problem+json"
    assert case.detail in result.json["detail"], result.json
    assert _state(client) == before


def test_a_refused_parameter_is_named_in_the_problem(client):
    """A deep config or an out-of-range number names its parameter in the problem's ``parameter`` member."""
    for params, parameter in [({"config": json.dumps({"a": json.loads("[" * 600 + "]" * 600)})}, "config"),
                              ({"fuel": str(10 ** 30)}, "fuel"), ({"timeout_ms": str(10 ** 29)}, "timeout_ms")]:
        result = client.simulate_put("/_admin/middlewares/n", body=tagger("n", "1"), params=params,
                                     headers={**bearer(), "Content-Type": WASM})
        assert result.status_code == 400 and result.json["parameter"] == parameter, result.text


def test_options_with_a_token_still_answers_with_the_allowed_methods(client):
    """With a token, OPTIONS still answers 200 with the route's ``Allow`` list."""
    result = client.simulate_options("/_admin/middlewares/tag", headers=bearer())
    assert result.status_code == 200
    assert set(result.headers["allow"].split(", ")) >= {"PUT", "DELETE"}


@pytest.mark.parametrize("name", ["a", "auth", "add_header", "v1.2", "A-b_c", "x" * 64])
def test_ordinary_names_are_accepted(name):
    """Names in use today (examples, versions with dots, 64 characters) stay valid."""
    assert STAGE_KEYS["name"].check(name) is None


@pytest.mark.parametrize("name", ["", ".", "..", ".hidden", "-x", "_x", "tag.", "a b", "a/b", "a\nb",
                                  "\u0430uth", "ｆｕｌｌ", "x" * 65])
def test_names_outside_the_ascii_pattern_are_refused(name):
    """Dot names, leading punctuation, spaces, slashes, controls, homoglyphs and 65 characters are refused."""
    assert STAGE_KEYS["name"].check(name)


def test_every_numeric_stage_setting_has_a_range_that_holds_its_default():
    """Every numeric stage setting accepts its default and both ends of its range, and refuses past them."""
    for key, (low, high) in STAGE_RANGES.items():
        check = STAGE_KEYS[key].check
        assert check(STAGE_KEYS[key].default) is None and check(low) is None and check(high) is None
        assert check(low - 1) and check(high + 1) and check(10 ** 30), key


@pytest.mark.parametrize("config, complaint", [
    ([], "must be a table"),
    ({1: "x"}, "not a string"),
    ({"a": {"b": [{"c": None}]}, "n": 2 ** 64}, "msgpack cannot carry"),
    ({"when": pathlib.Path("x")}, "PosixPath"),
    ({"blob": "x" * (CONFIG_MAX_BYTES + 1)}, "bytes as msgpack"),
])
def test_check_config_names_what_cannot_be_a_stage_config(config, complaint):
    """check_config names non-tables, non-string keys, values msgpack cannot carry and oversize configs."""
    assert complaint in check_config(config, "[[middleware]] #1 config")


def test_check_config_walks_any_depth_without_recursion():
    """A config 100000 levels deep gets a complaint, not a RecursionError; a normal one passes."""
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    assert f"deeper than {CONFIG_MAX_DEPTH} levels" in check_config({"a": deep}, "config")
    assert check_config({"a": {"b": [1, 2.5, "x", b"y", True, None, -(2 ** 63)]}}, "config") is None


def test_control_characters_in_a_logged_value_cannot_start_a_line():
    """The log filter turns newlines, escapes and Unicode line separators in args into visible escapes."""
    record = logging.LogRecord("mwhost.admin", logging.WARNING, __file__, 1, "admin %s %s refused",
                               ("GET", "/_admin/x\nFORGED\r\x1b[31m\u2028"), None)
    assert EscapeControls().filter(record)
    message = logging.Formatter("%(message)s").format(record)
    assert "\n" not in message and "\r" not in message and "\x1b" not in message and "\u2028" not in message
    assert message == "admin GET /_admin/x\\nFORGED\\r\\x1b[31m\\u2028 refused"
    assert escape_controls("tab\tstays") == "tab\tstays"


def test_a_traceback_in_text_logs_cannot_forge_a_record():
    """Every line of a logged traceback starts with the traceback mark, even a forged line in its message."""
    try:
        raise ValueError("bad path /x\n2026-11-30 12:00:00,000 [1] INFO mwhost: forged\r")
    except ValueError:
        record = logging.LogRecord("mwhost.web", logging.ERROR, __file__, 1, "stage failed", (), sys.exc_info())
    text = TextFormatter().format(record)
    head, *traceback_lines = text.split("\n")
    assert head.endswith("ERROR mwhost.web: stage failed")
    assert traceback_lines and all(line.startswith(TRACEBACK_MARK) for line in traceback_lines)
    assert "\r" not in text
