"""MarketState validation: every value that cannot be priced is refused with the field
named; a valid but extreme one is kept as given (the engine input caps it)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from keeper.errors import FeedError
from keeper.feeds import MarketState, Smile, UnderlyingState
from keeper.feeds.base import SECONDS_PER_YEAR

NOW = 1_780_000_000
DAY = 86_400


def smile(expiry: int = NOW + 7 * DAY, **kw: float) -> Smile:
    base = {"forward": 60_100.0, "atm_vol": 0.5, "skew": -0.1, "curvature": 0.3}
    base.update(kw)
    return Smile(expiry, base["forward"], base["atm_vol"], base["skew"], base["curvature"])


def state(**kw: object) -> MarketState:
    btc = UnderlyingState(
        "BTC", 60_000.0, 60_010.0, (smile(), smile(NOW + 30 * DAY, forward=60_300.0))
    )
    args: dict[str, object] = {
        "timestamp": NOW,
        "underlyings": (btc,),
        "rate": 0.04,
        "token_prices": {"WBTC": 60_000.0, "GOV": 2.0},
        "return_symbols": ("BTC", "GOV"),
        "returns": np.full((10, 2), 0.01),
        "return_interval_seconds": DAY,
    }
    args.update(kw)
    return MarketState(**args)  # type: ignore[arg-type]


def with_btc(**kw: object) -> MarketState:
    btc = dataclasses.replace(state().underlyings[0], **kw)
    return state(underlyings=(btc,))


def test_validState_roundTripsThroughJsonExactly():
    s = state()
    again = MarketState.from_json(s.to_json())
    assert again.to_json() == s.to_json()
    assert again.source_time == NOW and again.returns.shape == (10, 2)
    assert not s.returns.flags.writeable
    with pytest.raises(TypeError):
        s.token_prices["WBTC"] = 1.0  # type: ignore[index]


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: with_btc(spot=math.nan), "BTC.spot"),
        (lambda: with_btc(spot=-1.0), "BTC.spot"),
        (lambda: with_btc(spot=0.0), "BTC.spot"),
        (lambda: with_btc(spot=1e12), "BTC.spot"),
        (lambda: with_btc(perp_mark=math.inf), "BTC.perp_mark"),
        (lambda: with_btc(smiles=(smile(atm_vol=math.nan),)), "BTC.smiles[0].atm_vol"),
        (lambda: with_btc(smiles=(smile(atm_vol=-0.2),)), "BTC.smiles[0].atm_vol"),
        (lambda: with_btc(smiles=(smile(atm_vol=0.0),)), "BTC.smiles[0].atm_vol"),
        (lambda: with_btc(smiles=(smile(skew=math.nan),)), "BTC.smiles[0].skew"),
        (lambda: with_btc(smiles=(smile(forward=-5.0),)), "BTC.smiles[0].forward"),
        (lambda: with_btc(smiles=(smile(expiry=NOW),)), "BTC.smiles[0].expiry"),
        (
            lambda: with_btc(smiles=(smile(NOW + 9 * DAY), smile(NOW + 8 * DAY))),
            "BTC.smiles[1].expiry",
        ),
        (lambda: state(token_prices={"GOV": math.nan}), "tokens.GOV"),
        (lambda: state(token_prices={"GOV": -2.0}), "tokens.GOV"),
        (lambda: state(token_prices={}), "tokens"),
        (lambda: state(rate=math.nan), "rate"),
        (lambda: state(rate=3.0), "rate"),
        (lambda: state(timestamp=-5), "timestamp"),
        (lambda: state(timestamp=1.5), "timestamp"),
        (lambda: state(returns=np.array([[0.01, math.nan]] * 5)), "returns.GOV"),
        (lambda: state(returns=np.zeros((5, 3))), "returns"),
        (lambda: state(returns=np.zeros((1, 2))), "returns"),
        (lambda: state(underlyings=()), "underlyings"),
        (lambda: state(return_interval_seconds=0), "return_interval_seconds"),
    ],
)
def test_badValue_raisesFeedErrorNamingField(make, field):
    with pytest.raises(FeedError) as exc:
        make()
    assert exc.value.field == field


@pytest.mark.parametrize(
    "make",
    [
        lambda: with_btc(perp_mark=95_000.0),  # basis +58 %
        lambda: with_btc(smiles=(smile(atm_vol=12.0),)),  # 1200 % vol
        lambda: with_btc(smiles=(smile(curvature=1e3),)),
        lambda: with_btc(smiles=(smile(forward=99_000.0),)),  # forward basis +65 %
        lambda: state(returns=np.array([[0.01, 0.0]] * 4 + [[-4.6, 0.0]])),  # a -99 % day
    ],
)
def test_an_extreme_but_valid_value_is_kept_as_given_not_refused(make):
    s = make()
    assert MarketState.from_json(s.to_json()).to_json() == s.to_json()


def test_smile_volFormulaAndFloor():
    s = smile(atm_vol=0.5, skew=-0.1, curvature=0.3, forward=100.0)
    k = math.log(120.0 / 100.0)
    assert s.vol(120.0) == pytest.approx(0.5 - 0.1 * k + 0.3 * k * k)
    assert s.vol(100.0) == pytest.approx(0.5)
    low = smile(atm_vol=0.05, skew=1.0, curvature=0.0, forward=100.0)
    assert low.vol(10.0) == pytest.approx(0.01)  # floored
    np.testing.assert_allclose(s.vols(np.array([100.0, 120.0])), [s.vol(100.0), s.vol(120.0)])


def test_smileAt_interpolatesTotalVariance_andExtrapolatesFlat():
    u = state().underlyings[0]
    a, b = u.smiles
    assert u.smile_at(a.expiry, NOW) is a
    mid = (a.expiry + b.expiry) // 2
    s = u.smile_at(mid, NOW)
    ta, tb, t = ((e - NOW) / SECONDS_PER_YEAR for e in (a.expiry, b.expiry, mid))
    w = (t - ta) / (tb - ta)
    assert s.atm_vol**2 * t == pytest.approx((1 - w) * a.atm_vol**2 * ta + w * b.atm_vol**2 * tb)
    assert a.forward < s.forward < b.forward
    far = u.smile_at(NOW + 365 * DAY, NOW)
    assert far.atm_vol == b.atm_vol and far.forward > b.forward
    with pytest.raises(FeedError):
        u.smile_at(NOW, NOW)


def test_accessors():
    s = state()
    np.testing.assert_array_equal(s.spots(), [60_000.0])
    np.testing.assert_array_equal(s.perp_marks(), [60_010.0])
    assert s.underlying("BTC").perp_basis == pytest.approx(10 / 60_000)
    assert s.token_price("GOV") == 2.0
    assert s.returns_of("GOV").shape == (10,)
    for bad in (
        lambda: s.underlying("XRP"),
        lambda: s.token_price("XRP"),
        lambda: s.returns_of("XRP"),
    ):
        with pytest.raises(FeedError):
            bad()
