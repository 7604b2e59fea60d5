"""A signer's own market against the keeper's snapshot (keeper/epoch_check.py:
market_deviation): prices, smile vols and the return history, each with its tolerance."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from keeper.epoch_check import MarketTolerances, market_deviation
from keeper.feeds import SimConfig, SimulatedFeed
from keeper.feeds.base import MarketState

NOW = 1_719_748_800
TOL = MarketTolerances(price=0.02, vol=0.05, returns=0.01)


@pytest.fixture(scope="module")
def market() -> MarketState:
    return SimulatedFeed(SimConfig(), np.random.default_rng(3), start_time=NOW).tick(NOW)


def check(market: MarketState, own: MarketState) -> str | None:
    return market_deviation(
        market, own, TOL.price, max_vol_deviation=TOL.vol, max_return_deviation=TOL.returns
    )


def with_vol_shift(state: MarketState, sym: str, dv: float) -> MarketState:
    unds = tuple(
        dataclasses.replace(
            u,
            smiles=tuple(dataclasses.replace(s, atm_vol=s.atm_vol + dv) for s in u.smiles),
        )
        if u.symbol == sym
        else u
        for u in state.underlyings
    )
    return dataclasses.replace(state, underlyings=unds)


def test_the_same_market_passes(market: MarketState) -> None:
    assert check(market, market) is None


def test_vols_four_points_apart_pass_and_six_points_apart_are_refused(
    market: MarketState,
) -> None:
    assert check(with_vol_shift(market, "ETH", 0.04), market) is None
    found = check(with_vol_shift(market, "ETH", 0.06), market)
    assert found is not None and found.startswith("ETH vol at expiry")


def test_vols_are_not_compared_without_a_vol_tolerance(market: MarketState) -> None:
    assert market_deviation(with_vol_shift(market, "BTC", 0.5), market, 0.02) is None


def test_a_signer_feed_without_vols_refuses_a_snapshot_with_them(market: MarketState) -> None:
    own = dataclasses.replace(
        market,
        underlyings=tuple(dataclasses.replace(u, smiles=()) for u in market.underlyings),
    )
    assert "does not quote them" in (check(market, own) or "")


def test_one_return_off_by_two_percent_is_refused(market: MarketState) -> None:
    r = np.array(market.returns)
    r[-3, market.return_symbols.index("BTC")] += 0.02
    found = check(dataclasses.replace(market, returns=r), market)
    assert found is not None and found.startswith("BTC return 3 observations back")


def test_returns_within_the_tolerance_and_a_shorter_history_pass(market: MarketState) -> None:
    r = np.array(market.returns)[-100:] + 0.005
    assert check(dataclasses.replace(market, returns=r), market) is None


def test_another_return_interval_is_refused(market: MarketState) -> None:
    own = dataclasses.replace(market, return_interval_seconds=3600)
    assert "returns every 86400 s" in (check(market, own) or "")


def test_a_price_three_percent_off_is_refused_before_vols(market: MarketState) -> None:
    unds = tuple(dataclasses.replace(u, spot=u.spot * 1.03) for u in market.underlyings)
    found = check(dataclasses.replace(market, underlyings=unds), with_vol_shift(market, "BTC", 1))
    assert found is not None and "spot" in found


def test_tolerances_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError):
        MarketTolerances(price=1.5)
