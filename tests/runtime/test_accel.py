"""The C accelerator: built by the install, byte-identical to the Python codec, and refusing
(None) every input only the Python path may judge."""

from __future__ import annotations

import os
import string

import falcon.testing
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mwhost.abi import Codec
from mwhost.pipeline import RequestState
from mwhost.pipeline.environ import environ_headers
from mwhost.runtime import accel

LATIN1 = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=300)
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)  # msgpack refuses surrogates
NAMES = st.text(string.ascii_letters + string.digits + "-", min_size=1, max_size=40)


@pytest.fixture(autouse=True)
def both_hot_paths():
    """These tests choose their path themselves (overrides tests/hot_path.py's)."""


def packed_by_codec(method, path, query, headers, remote_addr, scheme, ctx) -> bytes:
    return Codec().encode_request(method, path, query, headers, remote_addr, scheme, ctx)


def test_the_accelerator_is_built_unless_switched_off():
    """./scripts/setup.sh (pip install -e) builds the extension; only the switch turns it off."""
    if os.environ.get(accel.ENV_SWITCH, "") not in ("", "0"):
        assert accel.ACCEL is None
    else:
        assert accel.ACCEL is not None, "mwhost.runtime._accel is missing: run ./scripts/setup.sh"


@pytest.fixture
def native():
    if accel.ACCEL is None:
        pytest.skip("the accelerator is switched off")
    return accel.ACCEL


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(headers=st.dictionaries(NAMES, LATIN1, max_size=40),
       ctx=st.dictionaries(TEXT, TEXT, max_size=20),
       content_type=st.sampled_from(["", "text/plain"]), query=TEXT)
def test_packing_from_the_environ_is_byte_identical_to_the_codec(headers, ctx, content_type, query):
    """The environ packed in C gives the bytes the codec gives for environ_headers' list."""
    if accel.ACCEL is None:
        pytest.skip("the accelerator is switched off")
    environ = falcon.testing.create_environ(path="/p", headers=headers)
    environ["CONTENT_TYPE"] = content_type  # servers set "" when absent: not a header
    args = ("GET", "/p", query, environ, "10.0.0.1", "https", ctx)
    expected = packed_by_codec(*args[:3], environ_headers(environ), *args[4:])
    assert accel.ACCEL.pack_request(*args) == expected
    listed = environ_headers(environ)
    native, accel.ACCEL = accel.ACCEL, None
    try:
        assert environ_headers(environ) == listed  # the Python loop and the C one agree
    finally:
        accel.ACCEL = native
    assert accel.ACCEL.pack_request(*args[:3], listed, *args[4:]) == expected
    assert accel.ACCEL.pack_request(*args[:3], [list(pair) for pair in listed], *args[4:]) == expected


@pytest.mark.parametrize("count, size", [(15, 10), (16, 31), (17, 32), (300, 255), (3, 256), (2, 70000)])
def test_container_and_string_sizes_take_msgpacks_formats(native, count, size):
    """Array, map and str headers switch format at the same sizes as msgpack-python's."""
    headers = [(f"x-{i}", "v" * size) for i in range(count)]
    ctx = {f"k{i}": "w" * size for i in range(count)}
    args = ("POST", "/" + "p" * size, "", headers, "::1", "http", ctx)
    assert native.pack_request(*args) == packed_by_codec(*args)


@pytest.mark.parametrize("change", [
    lambda env: env.update({"HTTP_X_NUMBER": 5}),               # a value that is not str
    lambda env: env.update({"HTTP_X_\u00e9": "v"}),              # a non-ASCII header key
    lambda env: env.update({"HTTP_X_SURROGATE": "\udcff"}),      # a lone surrogate
    lambda env: env.update({7: "v"}),                             # a key that is not str
])
def test_inputs_only_python_judges_are_handed_back(native, change):
    """For input a WSGI server does not make, C answers None and the codec decides."""
    environ = falcon.testing.create_environ(headers={"X-A": "1"})
    change(environ)
    assert native.pack_request("GET", "/", "", environ, "", "http", {}) is None


@pytest.mark.parametrize("ctx", [{"a": 1}, {b"a": "b"}, [("a", "b")]])
def test_a_ctx_that_is_not_str_to_str_is_handed_back(native, ctx):
    assert native.pack_request("GET", "/", "", [], "", "http", ctx) is None


def test_a_state_packs_what_the_codec_packs_on_both_paths(monkeypatch):
    """RequestState.pack gives the same bytes with and without the accelerator, lazily or not."""
    environ = falcon.testing.create_environ(path="/a", headers={"X-Request-Id": "r1", "Accept": "*/*"})
    lazy = RequestState.from_environ("GET", "/a", "q=1", environ, "1.2.3.4", "http")
    listed = RequestState("GET", "/a", "q=1", environ_headers(environ), "1.2.3.4", "http")
    expected = packed_by_codec("GET", "/a", "q=1", environ_headers(environ), "1.2.3.4", "http", {})
    assert lazy.pack(Codec()) == listed.pack(Codec()) == expected
    monkeypatch.setattr(accel, "ACCEL", None)
    assert lazy.pack(Codec()) == expected
    assert lazy.request_id() == listed.request_id() == "r1"


def test_a_lazy_state_reads_its_headers_only_when_asked():
    """The environ's headers become a list on first read of ``headers``, not before."""
    environ = falcon.testing.create_environ(headers={"X-A": "1"})
    state = RequestState.from_environ("GET", "/", "", environ, "", "http")
    assert state._headers is None
    state.pack(Codec())
    assert state._headers is None or accel.ACCEL is None
    assert ("x-a", "1") in state.headers
    assert state._headers is not None


def test_environ_headers_in_c_keep_the_python_rules(native):
    """Empty HTTP_ headers count, empty CONTENT_* do not, other keys are skipped, order kept."""
    environ = {"HTTP_X_EMPTY": "", "CONTENT_TYPE": "", "CONTENT_LENGTH": "3", "wsgi.input": object(),
               "PATH_INFO": "/", "HTTP_ACCEPT": "*/*"}
    assert environ_headers(environ) == [("x-empty", ""), ("content-length", "3"), ("accept", "*/*")]
    with pytest.raises(TypeError):
        environ_headers({7: "x"})  # as the Python loop: a key that is not str is a TypeError


@pytest.mark.parametrize("edits", [
    [(None, [("x-new", "1")])],
    [(["accept"], None)],
    [(None, [("accept", "a"), ("accept", "b")]), (["x-new"], [("x-other", "2")])],
    [(None, [("x-new", "1")]), (None, [("x-new", "2"), ("x-new", "3")]), (["accept", "x-a"], None)],
    [(["content-length"], [("content-type", "text/plain")])],
    [(None, [("x-request-id", "new")]), (["x-a"], None)],
])
def test_edits_on_a_lazy_state_give_what_edits_on_the_list_give(monkeypatch, edits):
    """Header edits kept as an overlay over the environ: the same headers, packed bytes,
    written-back names and request id as the same edits on the header list."""
    from mwhost.abi.messages import Action
    from mwhost.web.wsgi_headers import write_environ_headers

    environ = falcon.testing.create_environ(path="/a", headers={"X-A": "1", "Accept": "*/*", "X-Request-Id": "r"},
                                            body="abc")
    lazy = RequestState.from_environ("GET", "/a", "", dict(environ), "", "http")
    listed = RequestState("GET", "/a", "", environ_headers(environ), "", "http")
    for remove, set_ in edits:
        action = Action(remove_headers=remove, set_headers=set_)
        lazy.apply(action)
        listed.apply(action)
        assert lazy.pack(Codec()) == listed.pack(Codec())  # after each edit (packed entries reused)
    assert lazy._headers is None or accel.ACCEL is None  # still an overlay (Python packs from a list)
    assert lazy.pack(Codec()) == listed.pack(Codec())
    written_lazy, written_listed = dict(environ), dict(environ)
    write_environ_headers(written_lazy, lazy.edited_headers(), lazy.edited_names)
    write_environ_headers(written_listed, listed.edited_headers(), listed.edited_names)
    assert written_lazy == written_listed
    assert lazy.request_id() == listed.request_id()
    assert lazy.headers == listed.headers  # made from the overlay once asked for
    monkeypatch.setattr(accel, "ACCEL", None)
    fresh = RequestState.from_environ("GET", "/a", "", dict(environ), "", "http")
    for remove, set_ in edits:
        fresh.apply(Action(remove_headers=remove, set_headers=set_))
    assert fresh.pack(Codec()) == listed.pack(Codec())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(headers=st.dictionaries(NAMES, LATIN1, max_size=40), data=st.data(),
       added=st.lists(st.tuples(NAMES.map(str.lower), LATIN1), max_size=5),
       content_type=st.sampled_from(["", "text/plain"]))
def test_packed_entries_with_an_overlay_give_the_environs_bytes(native, headers, data, added, content_type):
    """The environ's headers packed once (header_entries) and then cut by removed names and
    extended by added pairs give the bytes the environ itself gives, and the codec's."""
    environ = falcon.testing.create_environ(path="/p", headers=headers)
    environ["CONTENT_TYPE"] = content_type
    listed = environ_headers(environ)
    names = sorted({name for name, _ in listed} | {"x-absent"})
    removed = set(data.draw(st.lists(st.sampled_from(names), max_size=len(names))))
    entries = native.header_entries(environ)
    assert entries is not None
    args = ("GET", "/p", "q", "10.0.0.1", "https", {"k": "v"})
    from_environ = native.pack_request(*args[:3], environ, *args[3:], removed, list(added))
    from_entries = native.pack_request(*args[:3], entries, *args[3:], removed, list(added))
    kept = [pair for pair in listed if pair[0] not in removed] + list(added)
    assert from_entries == from_environ == packed_by_codec(*args[:3], kept, *args[3:])
    assert native.pack_request(*args[:3], entries, *args[3:]) == packed_by_codec(*args[:3], listed, *args[3:])


@pytest.mark.parametrize("change", [
    lambda env: env.update({"HTTP_X_NUMBER": 5}),
    lambda env: env.update({"HTTP_X_\u00e9": "v"}),
    lambda env: env.update({"HTTP_X_SURROGATE": "\udcff"}),
    lambda env: env.update({7: "v"}),
])
def test_header_entries_hand_back_what_only_python_judges(native, change):
    """header_entries answers None wherever pack_request would (and for an environ that is
    not a plain dict): the state then keeps the environ and the Python path decides."""
    environ = falcon.testing.create_environ(headers={"X-A": "1"})
    change(environ)
    assert native.header_entries(environ) is None
    assert native.header_entries(type("Env", (dict,), {})(a="b")) is None


def test_a_state_repacks_from_the_environ_after_an_http_wasm_stage_changed_it(native):
    """Packed entries are this request's and only until an http-wasm stage edits the environ
    (a buffered body's new content-length): the next pack reads the environ again."""
    from mwhost.abi.messages import Action

    environ = falcon.testing.create_environ(headers={"X-A": "1", "Transfer-Encoding": "chunked"})
    state = RequestState.from_environ("GET", "/", "", environ, "", "http")
    state.pack(Codec())
    environ["CONTENT_LENGTH"] = "3"  # what httpwasm_stage._read_body does, with env_edited
    state.env_edited = True
    state.apply(Action(set_headers=[("x-b", "2")]))
    expected = RequestState("GET", "/", "", environ_headers(environ), "", "http")
    expected.apply(Action(set_headers=[("x-b", "2")]))
    assert state.pack(Codec()) == expected.pack(Codec())
    assert ("content-length", "3") in environ_headers(environ)
