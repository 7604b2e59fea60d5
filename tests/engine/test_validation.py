"""Bad input raises a typed error naming the field; nothing is half-computed."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from risk_engine import (
    InstrumentKind,
    InstrumentTable,
    InvalidInputError,
    MarketSnapshot,
    Portfolios,
    RiskEngineError,
    RiskParams,
    build_risk_arrays,
    compute_margin,
    load_params,
)

from .conftest import TS, small_universe


@pytest.fixture(scope="module")
def universe() -> tuple[MarketSnapshot, InstrumentTable]:
    return small_universe(3)


def _with(arr: np.ndarray, i: int, v: float) -> np.ndarray:
    out = arr.copy()
    out.flat[i] = v
    return out


def _surf(m: MarketSnapshot, **kw: Any) -> MarketSnapshot:
    return dataclasses.replace(m, surface=dataclasses.replace(m.surface, **kw))


MARKET_CASES: list[tuple[str, Callable[[MarketSnapshot], MarketSnapshot], str]] = [
    ("nan spot", lambda m: dataclasses.replace(m, spot=_with(m.spot, 1, np.nan)), "market.spot[1]"),
    (
        "inf perp",
        lambda m: dataclasses.replace(m, perp_mark=_with(m.perp_mark, 0, np.inf)),
        "market.perp_mark[0]",
    ),
    (
        "negative spot",
        lambda m: dataclasses.replace(m, spot=_with(m.spot, 2, -5.0)),
        "market.spot[2]",
    ),
    (
        "zero perp",
        lambda m: dataclasses.replace(m, perp_mark=_with(m.perp_mark, 1, 0.0)),
        "market.perp_mark[1]",
    ),
    ("short spot array", lambda m: dataclasses.replace(m, spot=m.spot[:2]), "market.spot"),
    (
        "zero vol",
        lambda m: _surf(m, atm_vol=_with(m.surface.atm_vol, 3, 0.0)),
        "market.surface.atm_vol[3]",
    ),
    (
        "nan skew",
        lambda m: _surf(m, skew=_with(m.surface.skew, 0, np.nan)),
        "market.surface.skew[0]",
    ),
    (
        "negative forward",
        lambda m: _surf(m, forward=_with(m.surface.forward, 2, -1.0)),
        "market.surface.forward[2]",
    ),
    ("forward shape", lambda m: _surf(m, forward=m.surface.forward[:-1]), "market.surface.forward"),
    ("nan rate", lambda m: dataclasses.replace(m, rate=float("nan")), "market.rate"),
    ("bad timestamp", lambda m: dataclasses.replace(m, timestamp=0), "market.timestamp"),
    ("returns shape", lambda m: dataclasses.replace(m, returns=m.returns[:, :2]), "market.returns"),
    (
        "returns nan",
        lambda m: dataclasses.replace(m, returns=_with(m.returns, 7, np.nan)),
        "market.returns",
    ),
    ("returns short", lambda m: dataclasses.replace(m, returns=m.returns[:3]), "market.returns"),
    (
        "duplicate underlying",
        lambda m: dataclasses.replace(m, underlyings=("BTC", "BTC", "GOV")),
        "market.underlyings",
    ),
    (
        "slice expired",
        lambda m: _surf(m, expiry=_with(m.surface.expiry, 0, TS)),
        "market.surface.expiry[0]",
    ),
    (
        "slice unknown underlying",
        lambda m: _surf(m, underlying=("XRP",) + m.surface.underlying[1:]),
        "market.surface.underlying[0]",
    ),
]


@pytest.mark.parametrize(
    ("name", "mutate", "field"), MARKET_CASES, ids=[c[0] for c in MARKET_CASES]
)
def test_bad_market_names_field(
    universe: tuple[MarketSnapshot, InstrumentTable],
    params: RiskParams,
    name: str,
    mutate: Callable[[MarketSnapshot], MarketSnapshot],
    field: str,
) -> None:
    market, ins = universe
    with pytest.raises(InvalidInputError) as e:
        build_risk_arrays(ins, mutate(market), params)
    assert e.value.field == field, (name, e.value)
    assert isinstance(e.value, RiskEngineError)


def test_expired_option_is_rejected(
    universe: tuple[MarketSnapshot, InstrumentTable], params: RiskParams
) -> None:
    market, ins = universe
    i = int(np.flatnonzero(ins.kind == InstrumentKind.CALL)[0])
    later = dataclasses.replace(market, timestamp=int(ins.expiry[i]))
    with pytest.raises(InvalidInputError) as e:
        build_risk_arrays(ins, later, params)
    # the surface slice is expired too; whichever is checked first is named
    assert e.value.field in (f"instruments.expiry[{i}]", "market.surface.expiry[0]")
    # with the slice still listed as live, the instrument itself is named
    ins2 = dataclasses.replace(ins, expiry=_with(ins.expiry, i, TS - 1))
    with pytest.raises(InvalidInputError) as e:
        build_risk_arrays(ins2, market, params)
    assert e.value.field == f"instruments.expiry[{i}]"


def test_unknown_instrument_underlying(
    universe: tuple[MarketSnapshot, InstrumentTable], params: RiskParams
) -> None:
    market, ins = universe
    bad = dataclasses.replace(ins, underlying=ins.underlying[:-1] + ("DOGE",))
    with pytest.raises(InvalidInputError) as e:
        build_risk_arrays(bad, market, params)
    assert e.value.field == f"instruments.underlying[{ins.n_instruments - 1}]"


def test_option_without_smile(
    universe: tuple[MarketSnapshot, InstrumentTable], params: RiskParams
) -> None:
    market, ins = universe
    i = int(np.flatnonzero(ins.kind == InstrumentKind.PUT)[-1])
    bad = dataclasses.replace(ins, expiry=_with(ins.expiry, i, int(ins.expiry[i]) + 1))
    with pytest.raises(InvalidInputError) as e:
        build_risk_arrays(bad, market, params)
    assert e.value.field == "market.surface"


@pytest.mark.parametrize(
    ("kind", "strike", "expiry", "field"),
    [
        (9, 0.0, 0, "instruments.kind[0]"),
        (InstrumentKind.CALL, 0.0, TS + 100, "instruments.strike[0]"),
        (InstrumentKind.PUT, 100.0, 0, "instruments.expiry[0]"),
        (InstrumentKind.PERP, 100.0, 0, "instruments.strike[0]"),
    ],
)
def test_bad_instrument_rows(kind: int, strike: float, expiry: int, field: str) -> None:
    with pytest.raises(InvalidInputError) as e:
        InstrumentTable.build([kind], ["BTC"], [strike], [expiry])
    assert e.value.field == field


def test_bad_portfolios(
    universe: tuple[MarketSnapshot, InstrumentTable], params: RiskParams
) -> None:
    market, ins = universe
    arrays = build_risk_arrays(ins, market, params)
    n = ins.n_instruments
    good = Portfolios.from_dense(ins, np.zeros((2, n)), [0.0, 0.0])
    compute_margin(good, market, params, arrays=arrays)
    nan = np.zeros((2, n))
    nan[1, 3] = np.nan
    cases = [
        (Portfolios.from_dense(ins, nan, [0.0, 0.0]), "portfolios.positions"),
        (Portfolios.from_dense(ins, np.zeros((2, n)), [0.0, np.inf]), "portfolios.cash"),
        (Portfolios.from_dense(ins, np.zeros((2, n)), [0.0]), "portfolios.cash"),
        (Portfolios(ins, sp.csr_array(np.zeros((2, n + 1))), np.zeros(2)), "portfolios.positions"),
        (Portfolios(ins, sp.coo_array(np.zeros((2, n))), np.zeros(2)), "portfolios.positions"),  # type: ignore[arg-type]
    ]
    for pf, field in cases:
        with pytest.raises(InvalidInputError) as e:
            compute_margin(pf, market, params, arrays=arrays)
        assert e.value.field == field
    # arrays built for another snapshot are refused
    later = dataclasses.replace(market, timestamp=market.timestamp + 60)
    with pytest.raises(InvalidInputError) as e:
        compute_margin(good, later, params, arrays=arrays)
    assert e.value.field == "arrays"
    other_params = dataclasses.replace(params, mm_scale=0.5)
    with pytest.raises(InvalidInputError, match="parameters") as e:
        compute_margin(good, market, other_params, arrays=arrays)
    assert e.value.field == "arrays"
    other = InstrumentTable.build([InstrumentKind.SPOT] * n, ["BTC"] * n, [0.0] * n, [0] * n)
    with pytest.raises(InvalidInputError) as e:
        compute_margin(
            Portfolios.from_dense(other, np.zeros((1, n)), [0.0]), market, params, arrays=arrays
        )
    assert e.value.field == "portfolios.instruments"
    with pytest.raises(InvalidInputError) as e:
        compute_margin(good, market, params, arrays=arrays, chunk_size=0)
    assert e.value.field == "chunk_size"


def test_nothing_half_computed(
    universe: tuple[MarketSnapshot, InstrumentTable], params: RiskParams
) -> None:
    """A bad value anywhere means no result at all, and the inputs are left untouched."""
    market, ins = universe
    spot_before = market.spot.copy()
    bad = dataclasses.replace(market, returns=_with(market.returns, 5, np.inf))
    pf = Portfolios.from_dense(ins, np.ones((1, ins.n_instruments)), [0.0])
    result = None
    with pytest.raises(InvalidInputError):
        result = compute_margin(pf, bad, params)
    assert result is None
    np.testing.assert_array_equal(market.spot, spot_before)


_FIELDS = {
    "market.spot": lambda m, a: dataclasses.replace(m, spot=a),
    "market.perp_mark": lambda m, a: dataclasses.replace(m, perp_mark=a),
    "market.surface.forward": lambda m, a: _surf(m, forward=a),
    "market.surface.atm_vol": lambda m, a: _surf(m, atm_vol=a),
}


def _get(m: MarketSnapshot, field: str) -> np.ndarray:
    obj: Any = m
    for part in field.split(".")[1:]:
        obj = getattr(obj, part)
    return np.asarray(obj)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(sorted(_FIELDS)),
    st.integers(0, 10_000),
    st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -1.0, -1e-300]),
)
def test_any_bad_value_anywhere_is_named(field: str, where: int, value: float) -> None:
    market, ins = small_universe(3)
    arr = _get(market, field)
    i = where % arr.size
    bad = _FIELDS[field](market, _with(arr, i, value))
    with pytest.raises(InvalidInputError) as e:
        build_risk_arrays(ins, bad, load_params())
    assert e.value.field == f"{field}[{i}]"
