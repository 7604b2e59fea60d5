"""keeper/dispute_encoding.py: the risk vector and aggregation parameters a dispute hashes.

The bytes are ``abi.encode`` of the Solidity structs (the forge side,
tests/contracts/unit/AccountDispute.t.sol, recomputes the hashes the generator wrote into
tests/vectors/accounts/); here: the encoding decodes back to the same numbers, any change of
one number changes the hash, a value that does not fit its type is refused, and a vector built
from the engine's arrays is the nearest WAD of each float.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from eth_abi.abi import decode
from eth_utils.crypto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from keeper.dispute_encoding import (
    AGGREGATION_PARAMS_ABI,
    RISK_VECTOR_ABI,
    AggregationParamsWad,
    RiskVectorWad,
    hash_params,
    hash_vector,
)
from keeper.errors import AttestationError
from risk_engine import build_risk_arrays, load_params
from risk_engine.synthetic import synthetic_instruments, synthetic_market
from risk_engine.units import to_signed_wad_nearest

UINT = st.integers(min_value=0, max_value=2**256 - 1)
INT = st.integers(min_value=-(2**255), max_value=2**255 - 1)


@st.composite
def vectors(draw: st.DrawFn) -> RiskVectorWad:
    n = draw(st.integers(min_value=1, max_value=8))
    return RiskVectorWad(
        underlying=draw(UINT),
        mark=draw(UINT),
        loss=tuple(draw(st.lists(INT, min_size=n, max_size=n))),
        pad=tuple(draw(st.one_of(st.just([]), st.lists(UINT, min_size=n, max_size=n + 3)))),
        basis_up=draw(INT),
        basis_down=draw(INT),
        delta=draw(INT),
        minimum_charge=draw(UINT),
        short_option_charge=draw(UINT),
        notional=draw(UINT),
    )


@st.composite
def params(draw: st.DrawFn) -> AggregationParamsWad:
    def uints(lo: int = 0) -> tuple[int, ...]:
        return tuple(draw(st.lists(UINT, min_size=lo, max_size=6)))

    return AggregationParamsWad(
        n_mm=draw(UINT),
        im_copies=uints(),
        mm_scale=draw(UINT),
        concentration_rate=uints(1),
        concentration_threshold=uints(1),
        node_weight=uints(1),
        left=uints(),
        right=uints(),
    )


def _plain(x: Any) -> Any:
    """Decoded tuples and our lists/tuples as one shape (tuples all the way down)."""
    return tuple(_plain(v) for v in x) if isinstance(x, list | tuple) else x


def _changed(value: Any, data: st.DataObject, signed: bool) -> Any:
    """``value`` (an int or a tuple of ints) with one number moved, kept in its type."""
    lo, hi = (-(2**255), 2**255 - 1) if signed else (0, 2**256 - 1)
    if isinstance(value, tuple):
        if not value:
            return (data.draw(st.integers(lo, hi)),)  # an element more
        k = data.draw(st.integers(0, len(value) - 1))
        return value[:k] + (_changed(value[k], data, signed),) + value[k + 1 :]
    return data.draw(st.integers(lo, hi).filter(lambda v: v != value))


@settings(max_examples=150)
@given(vectors())
def test_a_vector_encoding_decodes_to_its_numbers(v: RiskVectorWad) -> None:
    (decoded,) = decode([RISK_VECTOR_ABI], v.encode())
    assert _plain(decoded) == _plain(v.to_abi())
    assert hash_vector(v) == keccak(v.encode())


@settings(max_examples=150)
@given(params())
def test_a_params_encoding_decodes_to_its_numbers(p: AggregationParamsWad) -> None:
    (decoded,) = decode([AGGREGATION_PARAMS_ABI], p.encode())
    assert _plain(decoded) == _plain(p.to_abi())
    assert hash_params(p) == keccak(p.encode())


SIGNED_VECTOR_FIELDS = {"loss", "basis_up", "basis_down", "delta"}


@settings(max_examples=200)
@given(vectors(), st.sampled_from([f.name for f in dataclasses.fields(RiskVectorWad)]), st.data())
def test_any_change_of_one_vector_number_changes_its_hash(
    v: RiskVectorWad, field: str, data: st.DataObject
) -> None:
    moved = _changed(getattr(v, field), data, field in SIGNED_VECTOR_FIELDS)
    w = dataclasses.replace(v, **{field: moved})
    assert hash_vector(w) != hash_vector(v)


@settings(max_examples=200)
@given(
    params(), st.sampled_from([f.name for f in dataclasses.fields(AggregationParamsWad)]), st.data()
)
def test_any_change_of_one_parameter_changes_its_hash(
    p: AggregationParamsWad, field: str, data: st.DataObject
) -> None:
    q = dataclasses.replace(p, **{field: _changed(getattr(p, field), data, signed=False)})
    assert hash_params(q) != hash_params(p)


def test_a_small_vector_is_encoded_word_by_word() -> None:
    v = RiskVectorWad(7, 5, (-1,), (), 2, -3, 4, 0, 1, 9)

    def word(x: int) -> bytes:
        return (x % 2**256).to_bytes(32, "big")

    # the struct is dynamic: an offset to it, then its head (arrays by offset from its start)
    head = [7, 5, 10 * 32, 12 * 32, 2, -3, 4, 0, 1, 9]
    tail = [1, -1, 0]  # loss: length 1, its element; pad: length 0
    expected = word(32) + b"".join(word(x) for x in head + tail)
    assert v.encode() == expected
    assert hash_vector(v) == keccak(expected)


@pytest.mark.parametrize(
    ("field", "value"),
    [("mark", -1), ("notional", 2**256), ("delta", 2**255), ("underlying", True)],
)
def test_a_vector_number_outside_its_type_is_refused(field: str, value: int) -> None:
    v = RiskVectorWad(0, 1, (1,), (), 0, 0, 0, 0, 0, 1)
    with pytest.raises(AttestationError, match=field):
        dataclasses.replace(v, **{field: value})


def test_a_negative_pad_or_parameter_is_refused() -> None:
    with pytest.raises(AttestationError, match=r"pad\[1\]"):
        RiskVectorWad(0, 1, (1, 2), (0, -1), 0, 0, 0, 0, 0, 1)
    with pytest.raises(AttestationError, match=r"node_weight\[0\]"):
        AggregationParamsWad(1, (), 0, (0,), (0,), (-1,), (), ())
    with pytest.raises(AttestationError, match=r"loss\[0\]"):
        RiskVectorWad(0, 1, (2**255,), (), 0, 0, 0, 0, 0, 1)


@pytest.fixture(scope="module")
def arrays() -> Any:
    market = synthetic_market(np.random.default_rng(3))
    instruments = synthetic_instruments(market, strikes_per_expiry=4)
    return build_risk_arrays(instruments, market, load_params())


def test_a_vector_from_the_engine_is_the_nearest_wad_of_its_row(arrays: Any) -> None:
    n_t, n_scan = arrays.n_scenarios, arrays.n_scan_columns
    for i in range(arrays.n_instruments):
        v = RiskVectorWad.from_arrays(arrays, i)
        row = arrays.loss[i]
        assert v.underlying == int(arrays.underlying_index[i])
        assert v.mark == to_signed_wad_nearest(float(arrays.mark[i]))
        assert v.loss == tuple(to_signed_wad_nearest(float(x)) for x in row[:n_t])
        assert len(v.pad) == (n_scan if arrays.has_pad[i] else 0)
        assert v.delta == to_signed_wad_nearest(float(row[arrays.col_delta]))
        assert v.notional == to_signed_wad_nearest(float(arrays.unit_notional[i]))
    assert any(arrays.has_pad) and not all(arrays.has_pad)


def test_params_from_the_engine_list_the_tree_children_first(arrays: Any) -> None:
    p = AggregationParamsWad.from_arrays(arrays)
    n_u = arrays.n_underlyings
    assert len(p.concentration_rate) == len(p.concentration_threshold) == n_u
    assert len(p.node_weight) == n_u + len(p.left) == n_u + len(p.right)
    for j, (a, b) in enumerate(zip(p.left, p.right, strict=True)):
        assert a < n_u + j and b < n_u + j
    assert p.n_mm == arrays.scenarios.n_mm
    assert all(k < p.n_mm for k in p.im_copies)
    assert p.mm_scale == to_signed_wad_nearest(float(arrays.mm_scale))
    assert p.node_weight == tuple(to_signed_wad_nearest(float(w)) for w in arrays.tree.weight)
