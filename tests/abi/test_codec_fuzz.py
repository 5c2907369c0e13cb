"""Property: whatever bytes a guest returns, decoding raises nothing but AbiDecodeError."""

from __future__ import annotations

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mwhost.abi.codec import decode_action, decode_response_action
from mwhost.abi.messages import Action, ResponseAction
from mwhost.errors import AbiDecodeError

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


def test_one_hundred_thousand_mutated_outputs_only_raise_abi_errors():
    """A seeded mutation fuzzer over every vector: bit flips, truncations, insertions,
    splices and length-field overwrites. 100,000 inputs, each decoded as an action and as a
    response action; anything but AbiDecodeError fails the test."""
    import random

    from tests.conftest import vector_bytes, vector_index

    rng = random.Random(20261125)
    seeds = [vector_bytes(entry["name"]) for entry in vector_index()] + [b"\x80", b"\xc0"]
    interesting = [0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xc4, 0xc6,
                   0xca, 0xcb, 0xcc, 0xcf, 0xd0, 0xd3, 0xd9, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xff]

    def mutate(data: bytes) -> bytes:
        data = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            choice = rng.randrange(5)
            if choice == 0 and data:
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            elif choice == 1 and data:
                del data[rng.randrange(len(data)):]
            elif choice == 2:
                data.insert(rng.randrange(len(data) + 1), rng.choice(interesting))
            elif choice == 3:
                other = rng.choice(seeds)
                cut = rng.randrange(len(other) + 1)
                data[rng.randrange(len(data) + 1):] = other[cut:]
            elif data:
                at = rng.randrange(len(data))
                data[at:at + 4] = rng.randbytes(4)
        return bytes(data)

    for _ in range(100_000):
        _decode_both(mutate(rng.choice(seeds)))
