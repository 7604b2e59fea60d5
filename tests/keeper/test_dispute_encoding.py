"""keeper/dispute_encoding.py: the risk vector and aggregation parameters a dispute hashes.

The bytes are ``abi.encode`` of the Solidity structs (the forge side,
tests/contracts/unit/AccountDispute.t.sol, recomputes the hashes the generator wrote into
tests/vectors/accounts/); here: the encoding decodes back to the same numbers, any change of
one number changes the hash, a value that does not fit its type is refused, and a vector built
from the engine's arrays is the nearest WAD of each float.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest
from eth_abi.abi import decode
from eth_utils.crypto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from keeper.dispute_encoding import (
    AGGREGATION_PARAMS_ABI,
    RISK_VECTOR_ABI,
    AggregationParamsWad,
    RiskVectorWad,
    hash_params,
    hash_vector,
    vector_hashes,
)
from keeper.errors import AttestationError
from keeper.wad_words import NEAREST_INT256_LIMIT
from risk_engine import build_risk_arrays, load_params
from risk_engine.errors import InvalidInputError
from risk_engine.risk_arrays import RiskArrays
from risk_engine.synthetic import synthetic_instruments, synthetic_market
from risk_engine.units import to_signed_wad_nearest
from scripts.gen_black76_vectors import LOW_CONFIDENCE, seeded_instruments, seeded_market

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


# ------------------------------------------------------------------ vector_hashes


def _reference_hashes(arrays: RiskArrays, n: int) -> tuple[bytes, ...]:
    return tuple(hash_vector(RiskVectorWad.from_arrays(arrays, i)) for i in range(n))


def _assert_same_as_reference(arrays: RiskArrays, n: int) -> None:
    """Equal hashes, or the reference's error (type and message) for the first bad row."""
    try:
        want = _reference_hashes(arrays, n)
    except (InvalidInputError, AttestationError) as exc:
        with pytest.raises(type(exc)) as got:
            vector_hashes(arrays, n)
        assert str(exc) in str(got.value)
        assert "risk_vector[" in str(got.value)
    else:
        assert vector_hashes(arrays, n) == want


@settings(max_examples=12)
@given(st.integers(0, 11), st.integers(0, 2**32 - 1))
def test_vector_hashes_are_the_reference_on_seeded_markets(m: int, seed: int) -> None:
    # options (padded rows), perps and spots (none); market 0 is a crash (capped ranges),
    # m % 3 == 2 has low feed confidence (add-ons)
    rng = np.random.default_rng(seed)
    market = seeded_market(rng, m)
    if m % 3 == 2:
        market = dataclasses.replace(market, confidence=np.array(LOW_CONFIDENCE))
    arrays = build_risk_arrays(seeded_instruments(rng, market), market, load_params())
    assert vector_hashes(arrays, arrays.n_instruments) == _reference_hashes(
        arrays, arrays.n_instruments
    )


def test_vector_hashes_of_the_first_rows_only(arrays: Any) -> None:
    for n in (0, 1, 7, arrays.n_instruments):
        assert vector_hashes(arrays, n) == _reference_hashes(arrays, n)


# Floats the conversion must get right: WAD ties (x * 1e18 = k + 1/2 exactly: x = q / 2**19,
# q odd), the floats either side of one, signed zeros, the tiniest and the largest values.
INSIDE = math.nextafter(NEAREST_INT256_LIMIT, 0.0)
TIES = st.integers(-(2**40), 2**40).map(lambda q: (2 * q + 1) / 2**19)
NEAR_TIES = st.builds(
    lambda x, up: math.nextafter(x, math.inf if up else -math.inf), TIES, st.booleans()
)
VALUES = st.one_of(
    st.sampled_from([0.0, -0.0, 5e-19, -5e-19, 1e-18, math.ldexp(1.0, -1074), INSIDE, -INSIDE]),
    TIES,
    NEAR_TIES,
    st.floats(-1e-15, 1e-15),
    st.floats(-1e12, 1e12),
)
#: A negative float whose nearest WAD is 0 is an unsigned field's value too (-0.5 rounds up).
UNSIGNED = st.one_of(VALUES.map(abs), st.sampled_from([-0.0, -1e-19, -math.ldexp(1.0, -61)]))
#: One number a row may be refused for: not finite, past int256, below zero (-5e-19 is a
#: float a little below -0.5e-18: its nearest WAD is -1).
POISON = st.tuples(
    st.sampled_from(["mark", "loss", "pad", "minimum_charge", "unit_notional"]),
    st.sampled_from([math.nan, math.inf, NEAREST_INT256_LIMIT, -NEAREST_INT256_LIMIT, -5e-19]),
)


def _with(arrays: RiskArrays, field: str, row: int, value: float, col: int = 0) -> RiskArrays:
    """``arrays`` with one number changed: ``field[row]`` (or ``field[row, col]``)."""
    a = np.array(getattr(arrays, field))
    if a.ndim == 2:
        a[row, col] = value
    else:
        a[row] = value
    return dataclasses.replace(arrays, **{field: a})


@st.composite
def drawn_rows(draw: st.DrawFn, base: RiskArrays) -> RiskArrays:
    """``base`` (its scenarios, parameters) with 1 to 6 rows of drawn floats: some rows with
    pads (``has_pad``: a pad above zero), the others with pads at or below zero; and maybe
    one :data:`POISON` number."""
    k = draw(st.integers(1, 6))
    shape = (k, base.loss.shape[1])

    def column(elements: st.SearchStrategy[float]) -> np.ndarray:
        return draw(hnp.arrays(np.float64, k, elements=elements))

    padded = draw(hnp.arrays(np.bool_, k))
    pad = np.abs(draw(hnp.arrays(np.float64, shape, elements=VALUES)))
    drawn = dataclasses.replace(
        base,
        underlying_index=draw(hnp.arrays(np.int64, k, elements=st.integers(0, 7))),
        mark=column(UNSIGNED),
        loss=draw(hnp.arrays(np.float64, shape, elements=VALUES)),
        pad=np.where(padded[:, None], pad, -pad),
        minimum_charge=column(UNSIGNED),
        short_option_charge=column(UNSIGNED),
        unit_notional=column(UNSIGNED),
    )
    poison = draw(st.none() | POISON)
    if poison is None:
        return drawn
    field, value = poison
    return _with(drawn, field, draw(st.integers(0, k - 1)), value, col=draw(st.integers(0, 3)))


@settings(max_examples=80)
@given(st.data())
def test_vector_hashes_are_the_reference_on_drawn_rows(arrays: Any, data: st.DataObject) -> None:
    drawn = data.draw(drawn_rows(arrays))
    _assert_same_as_reference(drawn, drawn.n_instruments)


def _padded_row(arrays: RiskArrays) -> int:
    return int(np.flatnonzero(arrays.has_pad)[0])


@pytest.mark.parametrize(
    ("field", "value", "error", "message"),
    [
        (
            "mark",
            NEAREST_INT256_LIMIT,
            InvalidInputError,
            r"risk_vector\[5\]\.mark: exceeds int256",
        ),
        ("mark", -1.0, AttestationError, r"risk_vector\[5\]: mark must be an integer in"),
        ("loss", -NEAREST_INT256_LIMIT, InvalidInputError, r"\[5\]\.loss\[0\]: exceeds int256"),
        ("loss", math.nan, InvalidInputError, r"risk_vector\[5\]\.loss\[0\]: not finite"),
        ("unit_notional", math.inf, InvalidInputError, r"\[5\]\.notional: not finite"),
        ("unit_notional", -1e-18, AttestationError, r"risk_vector\[5\]: notional must be"),
        ("minimum_charge", -2e-18, AttestationError, r"\[5\]: minimum_charge must be"),
        ("underlying_index", -1, AttestationError, r"risk_vector\[5\]: underlying must be"),
    ],
)
def test_vector_hashes_refuse_a_value_outside_its_type(
    arrays: Any, field: str, value: float, error: type[Exception], message: str
) -> None:
    bad = _with(arrays, field, 5, value)
    with pytest.raises(error, match=message):
        vector_hashes(bad, bad.n_instruments)
    with pytest.raises(error):
        RiskVectorWad.from_arrays(bad, 5)


def test_vector_hashes_refuse_a_negative_pad_of_a_padded_row_only(arrays: Any) -> None:
    i = _padded_row(arrays)
    bad = _with(arrays, "pad", i, -1.0, col=1)
    assert bad.has_pad[i]
    with pytest.raises(AttestationError, match=rf"risk_vector\[{i}\]: pad\[1\] must be"):
        vector_hashes(bad, bad.n_instruments)
    # a row without pads ignores them: a NaN or negative pad there is no error
    j = int(np.flatnonzero(~arrays.has_pad)[0])
    ignored = _with(_with(arrays, "pad", j, math.nan, col=0), "pad", j, -1.0, col=1)
    assert not ignored.has_pad[j]
    assert vector_hashes(ignored, ignored.n_instruments) == _reference_hashes(
        ignored, ignored.n_instruments
    )


def test_vector_hashes_name_the_first_refused_row(arrays: Any) -> None:
    i = _padded_row(arrays)
    j = int(np.flatnonzero(~arrays.has_pad)[0])
    first, last = sorted((i, j))
    bad = _with(_with(arrays, "mark", first, -1.0), "mark", last, math.nan)
    with pytest.raises(AttestationError, match=rf"risk_vector\[{first}\]: mark"):
        vector_hashes(bad, bad.n_instruments)
    # rows past n are not read
    assert vector_hashes(bad, first) == _reference_hashes(bad, first)


@pytest.mark.parametrize("n", [-1, 10**6])
def test_vector_hashes_refuse_a_row_count_outside_the_arrays(arrays: Any, n: int) -> None:
    with pytest.raises(AttestationError, match="risk vectors asked"):
        vector_hashes(arrays, n)
