"""The codec's validation rules, one by one."""

from __future__ import annotations

import msgpack
import pytest

from mwhost.abi.codec import decode_action, decode_response_action
from mwhost.abi.messages import CONTINUE, UNCHANGED
from mwhost.errors import AbiDecodeError


def pack(obj) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def test_bare_continue_is_the_shared_constant():
    assert decode_action(pack({"action": "continue"})) is CONTINUE


def test_empty_response_action_is_the_shared_constant():
    assert decode_response_action(pack({})) is UNCHANGED


def test_unknown_keys_are_ignored_for_forward_compatibility():
    action = decode_action(pack({"action": "continue", "future_field": [1, 2], "path": "/a"}))
    assert action.path == "/a"


def test_header_names_are_lower_cased():
    action = decode_action(pack({"action": "continue", "set_headers": [["X-Mixed", "v"]],
                                 "remove_headers": ["Cookie"]}))
    assert action.set_headers == [("x-mixed", "v")]
    assert action.remove_headers == ["cookie"]


def test_str_body_is_sent_as_utf8():
    action = decode_action(pack({"action": "respond", "status": 200, "body": "h\u00e9"}))
    assert action.body == "h\u00e9".encode()


@pytest.mark.parametrize("status", [200, 599])
def test_status_bounds_are_inclusive(status):
    """The final statuses 200 and 599 are both accepted."""
    assert decode_action(pack({"action": "respond", "status": status})).status == status


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "a\x00b"])
def test_header_values_with_control_characters_are_refused(value):
    """CR, LF and NUL in a header value (header injection) are bad output."""
    with pytest.raises(AbiDecodeError, match="control character"):
        decode_action(pack({"action": "respond", "status": 200, "headers": [["x", value]]}))


def test_ctx_must_map_str_to_str():
    with pytest.raises(AbiDecodeError, match="'ctx'"):
        decode_action(pack({"action": "continue", "ctx": ["a"]}))


def test_map_with_integer_keys_is_refused():
    with pytest.raises(AbiDecodeError):
        decode_action(b"\x81\x01\xa1a")


def test_deeply_nested_garbage_is_refused_not_crashing():
    data = b"\x91" * 100_000 + b"\xc0"
    with pytest.raises(AbiDecodeError):
        decode_action(data)
