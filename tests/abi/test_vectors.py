"""The golden vectors: committed files match their generator, and the host's codec agrees with them."""

from __future__ import annotations

import importlib.util

import msgpack
import pytest

from mwhost.abi import Codec
from mwhost.abi.codec import decode_action, decode_response_action
from mwhost.errors import AbiDecodeError
from tests.conftest import ROOT, VECTORS, vector_bytes, vector_index


def _generator():
    spec = importlib.util.spec_from_file_location("make_vectors", ROOT / "abi" / "make_vectors.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_vectors_match_the_generator():
    """abi/vectors holds exactly what abi/make_vectors.py writes (no hand edits, no drift)."""
    expected = _generator().expected_files()
    on_disk = {path.name: path.read_bytes() for path in VECTORS.iterdir()}
    assert on_disk == expected


def _valid(kind: str) -> list[str]:
    return [v["name"] for v in vector_index() if v["valid"] and v["kind"] == kind]


@pytest.mark.parametrize("name", _valid("request"))
def test_host_encodes_requests_byte_for_byte(name):
    """The host's request encoding reproduces each request vector exactly (canonical order)."""
    message = msgpack.unpackb(vector_bytes(name), raw=False)
    encoded = Codec().encode_request(
        message["method"], message["path"], message["query"],
        [tuple(pair) for pair in message["headers"]], message["remote_addr"],
        message["scheme"], message["ctx"], message.get("body"))
    assert encoded == vector_bytes(name)


@pytest.mark.parametrize("name", _valid("response"))
def test_host_encodes_responses_byte_for_byte(name):
    message = msgpack.unpackb(vector_bytes(name), raw=False)
    encoded = Codec().encode_response(
        message["status"], message["headers"], message["ctx"],
        message["request"]["method"], message["request"]["path"], message.get("body"))
    assert encoded == vector_bytes(name)


def test_host_encodes_config_byte_for_byte():
    message = msgpack.unpackb(vector_bytes("config_example"), raw=False)
    assert Codec().encode_config(message) == vector_bytes("config_example")


@pytest.mark.parametrize("name", _valid("action"))
def test_host_decodes_every_valid_action(name):
    """Each valid action vector decodes to the fields it carries."""
    message = msgpack.unpackb(vector_bytes(name), raw=False)
    action = decode_action(vector_bytes(name))
    assert action.respond == (message["action"] == "respond")
    if action.respond:
        assert action.status == message["status"]
        assert action.body == message.get("body")
        assert action.headers == [tuple(p) for p in message.get("headers", [])] or action.headers is None
    else:
        assert action.path == message.get("path")
        assert action.query == message.get("query")
        assert action.ctx == message.get("ctx")
        assert action.set_headers == ([tuple(p) for p in message["set_headers"]]
                                      if "set_headers" in message else None)
        assert action.remove_headers == message.get("remove_headers")


@pytest.mark.parametrize("name", _valid("response_action"))
def test_host_decodes_every_valid_response_action(name):
    message = msgpack.unpackb(vector_bytes(name), raw=False)
    action = decode_response_action(vector_bytes(name))
    assert action.status == message.get("status")
    assert action.body == message.get("body")
    assert action.remove_headers == message.get("remove_headers")


@pytest.mark.parametrize("entry", [v for v in vector_index() if not v["valid"]], ids=lambda v: v["name"])
def test_host_refuses_every_invalid_vector(entry):
    """Every bad_* vector is an AbiDecodeError with a message, never another exception."""
    decode = decode_action if entry["kind"] == "action" else decode_response_action
    with pytest.raises(AbiDecodeError) as caught:
        decode(vector_bytes(entry["name"]))
    assert str(caught.value)
