"""keeper/account_view.py: greeks against Black-76, the liquidation move against the
engine, the withdrawable maximum against the vault's rounding, average-cost P&L."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from keeper.account_view import (
    CASH_SCALE,
    Fill,
    _withdraw_cost_wad,
    account_greeks,
    liquidation_distances,
    max_withdrawable_cash6,
    max_withdrawable_token,
    mm_surplus_at,
    position_pnl,
    shift_spot,
)
from risk_engine import (
    InstrumentKind,
    InstrumentTable,
    MarketSnapshot,
    Portfolios,
    black76_delta,
    load_params,
)
from risk_engine.synthetic import synthetic_market

PARAMS = load_params()


def _book(sizes: list[float], cash: float) -> tuple[Portfolios, MarketSnapshot]:
    market = synthetic_market(np.random.default_rng(7), underlyings=("BTC", "ETH"))
    j = 2  # a BTC slice some weeks out
    assert market.surface.underlying[j] == "BTC"
    k = round(float(market.surface.forward[j]), 0)
    table = InstrumentTable.build(
        [InstrumentKind.PERP, InstrumentKind.CALL, InstrumentKind.SPOT],
        ["BTC", "BTC", "ETH"],
        [0.0, k, 0.0],
        [0, int(market.surface.expiry[j]), 0],
    )
    ports = Portfolios.from_dense(table, np.array([sizes]), np.array([cash]))
    return ports, market


def test_a_perp_has_delta_one_per_unit_at_its_basis_and_no_gamma_or_vega() -> None:
    ports, market = _book([2.0, 0.0, 0.0], 50_000.0)
    g = account_greeks(ports, market, PARAMS, 0)
    (p,) = g.positions
    basis = float(market.perp_mark[0] / market.spot[0])  # the perp moves with spot
    assert p.delta == pytest.approx(2.0 * basis, rel=1e-9)
    assert (p.gamma, p.vega, p.theta) == (0.0, 0.0, 0.0)
    assert g.totals["BTC"][1] == pytest.approx(2.0 * float(market.perp_mark[0]), rel=1e-9)


def test_an_options_delta_is_near_black76s_spot_delta_and_its_vega_is_positive() -> None:
    ports, market = _book([0.0, 1.0, 0.0], 50_000.0)
    (p,) = account_greeks(ports, market, PARAMS, 0).positions
    s = market.surface
    t = (int(s.expiry[2]) - market.timestamp) / (365.0 * 86400.0)
    k = float(ports.instruments.strike[1])
    from risk_engine.market import smile_vol

    vol = smile_vol(
        s.atm_vol[2:3], s.skew[2:3], s.curvature[2:3], np.log(k / s.forward[2:3]), PARAMS.vol.floor
    )
    exact = float(black76_delta(s.forward[2], k, t, vol[0], market.rate, True)) * float(
        s.forward[2] / market.spot[0]
    )
    # near, not equal: the engine's smile moves with the forward (vol by log-moneyness)
    assert p.delta == pytest.approx(exact, rel=0.05)
    assert p.gamma > 0.0 and p.vega > 0.0
    assert p.theta is not None and p.theta < 0.0


def test_the_liquidation_move_takes_the_engines_mm_surplus_to_zero() -> None:
    market = _book([0.0, 0.0, 0.0], 0.0)[1]
    # long 1 BTC perp bought at the mark, 20,000 USD of margin left
    ports, market = _book([1.0, 0.0, 0.0], 20_000.0 - float(market.perp_mark[0]))
    (d,) = liquidation_distances(ports, market, PARAMS, 0)
    assert d.underlying == "BTC" and d.surplus > 0.0
    assert d.down is not None and -0.95 < d.down < 0.0
    assert mm_surplus_at(ports, market, PARAMS, 0, "BTC", d.down) <= 0.0
    assert mm_surplus_at(ports, market, PARAMS, 0, "BTC", d.down + 2e-3) > 0.0
    assert d.price_down == pytest.approx(market.spot[0] * (1 + d.down))


def test_a_liquidatable_account_is_at_distance_zero() -> None:
    ports, market = _book([-50.0, 0.0, 0.0], 1.0)
    (d,) = liquidation_distances(ports, market, PARAMS, 0)
    assert d.surplus <= 0.0 and d.down == 0.0 and d.up == 0.0


def test_shift_spot_moves_the_forwards_of_that_underlying_only() -> None:
    _, market = _book([1.0, 0.0, 0.0], 0.0)
    m2 = shift_spot(market, "BTC", 1.1)
    mine = np.array([u == "BTC" for u in market.surface.underlying])
    assert np.allclose(m2.surface.forward[mine], market.surface.forward[mine] * 1.1)
    assert np.array_equal(m2.surface.forward[~mine], market.surface.forward[~mine])
    assert m2.spot[1] == market.spot[1]


def test_max_withdrawable_cash_is_the_im_bound_in_whole_units() -> None:
    assert max_withdrawable_cash6(5 * CASH_SCALE + 7) == 5
    assert max_withdrawable_cash6(-1) == 0


@example(surplus=251511378, balance=10**24, price=251511378, up=251511378, decimals=18)
@given(
    surplus=st.integers(min_value=-(10**24), max_value=10**26),
    balance=st.integers(min_value=0, max_value=10**24),
    price=st.integers(min_value=1, max_value=10**23),
    up=st.integers(min_value=0, max_value=10**18),
    decimals=st.sampled_from([6, 8, 18]),
)
def test_max_withdrawable_token_is_the_largest_amount_the_vault_accepts(
    surplus: int, balance: int, price: int, up: int, decimals: int
) -> None:
    m = max_withdrawable_token(surplus, balance, price, up, decimals)
    assert 0 <= m <= balance
    if m > 0:
        assert _withdraw_cost_wad(m, price, up, decimals) <= surplus
    if m < balance:
        assert _withdraw_cost_wad(m + 1, price, up, decimals) > surplus


def test_average_cost_entry_realizes_on_reduction_and_reopens_after_crossing_zero() -> None:
    p = position_pnl([Fill(1.0, 100.0), Fill(1.0, 110.0)], mark=120.0)
    assert p.entry == pytest.approx(105.0) and p.unrealized == pytest.approx(30.0)
    p = position_pnl([Fill(2.0, 100.0), Fill(-1.0, 130.0)], mark=120.0)
    assert p.entry == pytest.approx(100.0) and p.realized == pytest.approx(30.0)
    p = position_pnl([Fill(1.0, 100.0), Fill(-3.0, 90.0)], mark=80.0, funding_payments=[1.5])
    assert p.size == -2.0 and p.entry == pytest.approx(90.0)
    assert p.realized == pytest.approx(-10.0) and p.unrealized == pytest.approx(20.0)
    assert p.funding_paid == 1.5
    flat = position_pnl([Fill(1.0, 100.0), Fill(-1.0, 90.0)], mark=95.0)
    assert flat.entry is None and flat.unrealized == 0.0 and flat.realized == pytest.approx(-10.0)
