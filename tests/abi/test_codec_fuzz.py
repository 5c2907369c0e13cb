"""Property: whatever bytes a guest returns, decoding raises nothing but AbiDecodeError."""

from __future__ import annotations

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from host.abi.codec import decode_action, decode_response_action
from host.abi.messages import Action, ResponseAction
from host.errors import AbiDecodeError

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**64 - 1), st.floats(),
                     st.text(max_size=20), st.binary(max_size=20))
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)), max_leaves=12)
_fields = st.sampled_from(["action", "status", "headers", "body", "set_headers", "remove_headers",
                           "path", "query", "ctx", "response_headers"])
_actionish = st.dictionaries(_fields, st.one_of(_values, st.sampled_from(["continue", "respond", 200, "/p"])),
                             max_size=6)


def _decode_both(data: bytes) -> None:
    for decode, result_type in ((decode_action, Action), (decode_response_action, ResponseAction)):
        try:
            assert isinstance(decode(data), result_type)
        except AbiDecodeError:
            pass


@settings(max_examples=3000, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_only_raise_abi_errors(data):
    _decode_both(data)


@settings(max_examples=3000, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(_actionish)
def test_action_shaped_maps_only_raise_abi_errors(message):
    _decode_both(msgpack.packb(message, use_bin_type=True))
