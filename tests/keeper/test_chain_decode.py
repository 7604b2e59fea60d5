"""The fast accountStates decoder equals eth_abi's, and refuses truncated data."""

from __future__ import annotations

import pytest
from eth_abi import decode, encode
from hypothesis import given, settings
from hypothesis import strategies as st

from keeper.chain import ACCOUNT_STATES_TYPE, decode_account_states
from keeper.errors import ChainCallError

i256 = st.integers(min_value=-(2**255), max_value=2**255 - 1)
u256 = st.integers(min_value=0, max_value=2**256 - 1)
state = st.tuples(
    i256,
    st.integers(min_value=0, max_value=2**64 - 1),
    i256,
    i256,
    st.lists(st.integers(min_value=0, max_value=2**32 - 1), max_size=4),
    st.lists(i256, max_size=4),
    st.lists(i256, max_size=4),
    st.lists(u256, max_size=3),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(state, max_size=6))
def test_decoder_matches_eth_abi(states: list[tuple]) -> None:  # type: ignore[type-arg]
    data = encode([ACCOUNT_STATES_TYPE], [states])
    (expected,) = decode([ACCOUNT_STATES_TYPE], data)
    assert decode_account_states(data) == [
        tuple(list(x) if isinstance(x, tuple) else x for x in row) for row in expected
    ]


def test_truncated_data_is_refused() -> None:
    data = encode([ACCOUNT_STATES_TYPE], [[(1, 2, 3, 4, [1], [5], [0], [7, 8])]])
    with pytest.raises(ChainCallError, match="too short"):
        decode_account_states(data[:-32])
