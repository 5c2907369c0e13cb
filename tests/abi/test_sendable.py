"""The decoder refuses output a WSGI server cannot send and output over the caps, and keeps
accepting everything a server can send up to the caps."""

from __future__ import annotations

import msgpack
import pytest

from mwhost.abi.codec import MAX_ENTRIES, MAX_FIELD_BYTES, decode_action, decode_response_action
from mwhost.errors import AbiDecodeError


def pack(message: object) -> bytes:
    return msgpack.packb(message, use_bin_type=True)


def respond_with(value: str, name: str = "x-a") -> bytes:
    return pack({"action": "respond", "status": 200, "headers": [[name, value]]})


@pytest.mark.parametrize("value", ["J\u00fcrgen", "a\tb", "", "~!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}\u00ff"])
def test_latin1_values_without_control_characters_are_accepted(value):
    """Tab, visible ASCII and Latin-1 obs-text are all a server can send, so all are kept."""
    assert decode_action(respond_with(value)).headers == [("x-a", value)]


@pytest.mark.parametrize("value", ["a\x01b", "a\x1f", "a\x7f", "snow \u2603", "\U0001f600"])
def test_control_characters_and_non_latin1_values_are_refused(value):
    """Control characters, DEL and characters outside Latin-1 are bad output."""
    with pytest.raises(AbiDecodeError, match="control character or a character outside Latin-1"):
        decode_action(respond_with(value))


@pytest.mark.parametrize("status", [100, 101, 103, 199, 600])
def test_statuses_that_are_not_final_are_refused_in_both_phases(status):
    """1xx statuses (interim) and anything past 599 cannot be a response's final status."""
    with pytest.raises(AbiDecodeError, match="final status"):
        decode_action(pack({"action": "respond", "status": status}))
    with pytest.raises(AbiDecodeError, match="final status"):
        decode_response_action(pack({"status": status}))


@pytest.mark.parametrize("status", [204, 304])
def test_bodiless_statuses_refuse_a_body_but_accept_none_or_empty(status):
    """204 and 304 never carry a body: a non-empty one is bad output, an empty one is not."""
    with pytest.raises(AbiDecodeError, match="has no body"):
        decode_action(pack({"action": "respond", "status": status, "body": b"x"}))
    with pytest.raises(AbiDecodeError, match="has no body"):
        decode_response_action(pack({"status": status, "body": "x"}))
    assert decode_action(pack({"action": "respond", "status": status, "body": b""})).status == status
    assert decode_response_action(pack({"status": status})).status == status


@pytest.mark.parametrize("value", ["abc", "-1", "1_000", " 5", "\u00b2"])
def test_content_length_must_be_digits(value):
    """gunicorn turns content-length into an int: anything but digits would be its 500."""
    with pytest.raises(AbiDecodeError, match="content-length"):
        decode_action(respond_with(value, "Content-Length"))
    assert decode_action(respond_with("42", "content-length")).headers == [("content-length", "42")]


@pytest.mark.parametrize("field", ["set_headers", "response_headers"])
def test_header_lists_are_capped_in_entries_and_bytes(field):
    """100 headers and 64 KiB of names and values per field pass; one more of either fails."""
    at_cap = [["x-a", "1"]] * MAX_ENTRIES
    assert len(getattr(decode_action(pack({"action": "continue", field: at_cap})), field)) == MAX_ENTRIES
    with pytest.raises(AbiDecodeError, match=f"'{field}' holds {MAX_ENTRIES + 1} entries"):
        decode_action(pack({"action": "continue", field: at_cap + [["x-b", "2"]]}))
    full = [["x-a", "v" * (MAX_FIELD_BYTES - 3)]]
    assert decode_action(pack({"action": "continue", field: full}))
    with pytest.raises(AbiDecodeError, match="bytes; at most 65536"):
        decode_action(pack({"action": "continue", field: [["x-a", "v" * (MAX_FIELD_BYTES - 2)]]}))


def test_respond_and_response_phase_headers_are_capped_too():
    """The caps hold for a respond action's headers and a response action's edits."""
    many = [["x-a", "1"]] * (MAX_ENTRIES + 1)
    with pytest.raises(AbiDecodeError, match="'headers' holds"):
        decode_action(pack({"action": "respond", "status": 200, "headers": many}))
    with pytest.raises(AbiDecodeError, match="'set_headers' holds"):
        decode_response_action(pack({"set_headers": many}))
    with pytest.raises(AbiDecodeError, match="'remove_headers' holds"):
        decode_response_action(pack({"remove_headers": ["x-a"] * (MAX_ENTRIES + 1)}))


def test_ctx_is_capped_and_must_be_text_both_ways():
    """ctx keys and values must be str (bin keys too are refused), 100 entries at most."""
    with pytest.raises(AbiDecodeError, match="a map of str to str"):
        decode_action(pack({"action": "continue", "ctx": {b"k": "v"}}))
    with pytest.raises(AbiDecodeError, match="a map of str to str"):
        decode_action(pack({"action": "continue", "ctx": {"k": b"v"}}))
    with pytest.raises(AbiDecodeError, match="'ctx' holds 101 entries"):
        decode_action(pack({"action": "continue", "ctx": {f"k{i}": "v" for i in range(101)}}))
    with pytest.raises(AbiDecodeError, match="'ctx' holds 65537 bytes"):
        decode_action(pack({"action": "continue", "ctx": {"k": "v" * MAX_FIELD_BYTES}}))


def test_two_hundred_thousand_headers_are_refused_before_any_is_examined():
    """The 200,000-header output that used to cost seconds per request is one quick refusal."""
    raw = pack({"action": "continue", "set_headers": [["x-a", "1"]] * 200_000})
    with pytest.raises(AbiDecodeError, match="200000 entries"):
        decode_action(raw)
