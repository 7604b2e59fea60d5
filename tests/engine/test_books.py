"""The named books: legs, delta hedge, pair beta, guards."""

import numpy as np
import pytest
from scipy.special import ndtr

from risk_engine.books import BOOKS, LegKind, build_book, gross_notional

SPOT = {"BTC": 60_000.0, "ETH": 3_000.0, "SOL": 150.0}
VOL = {"BTC": 0.6, "ETH": 0.7, "SOL": 0.9}


def test_BOOKS_namesTheIssueBooks() -> None:
    assert set(BOOKS) == {
        "covered_call",
        "short_straddle_hedged",
        "calendar_spread",
        "cash_and_carry",
        "pair",
        "naked_short_put",
        "naked_long_call",
    }
    assert not BOOKS["naked_short_put"].hedged and not BOOKS["naked_long_call"].hedged


def test_build_book_coveredCallStrikeAndExpiry() -> None:
    book = build_book(BOOKS["covered_call"], "ETH", spot=SPOT, vol=VOL)
    token, call = book.legs
    assert token.kind is LegKind.TOKEN and token.quantity == 1.0
    assert call.kind is LegKind.CALL and call.quantity == -1.0
    assert call.strike == pytest.approx(3_300.0)
    assert call.expiry_years == pytest.approx(30 / 365)
    assert gross_notional(book, SPOT) == pytest.approx(6_000.0)


def test_build_book_straddleIsDeltaNeutral() -> None:
    book = build_book(BOOKS["short_straddle_hedged"], "BTC", spot=SPOT, vol=VOL)
    call, put, hedge = book.legs
    assert hedge.kind is LegKind.PERP
    t, s = 30 / 365, 0.6
    d1 = 0.5 * s * np.sqrt(t)
    straddle_delta = -(ndtr(d1) + ndtr(d1) - 1.0)
    assert hedge.quantity == pytest.approx(-straddle_delta, rel=1e-12)
    assert hedge.quantity > 0  # a short ATM straddle is net short delta


def test_build_book_pairScalesSecondLegByBeta() -> None:
    book = build_book(BOOKS["pair"], "BTC", spot=SPOT, vol=VOL, beta=0.8)
    long_btc, short_eth = book.legs
    assert book.underlying == "BTC/ETH"
    assert long_btc.underlying == "BTC" and long_btc.quantity == 1.0
    assert short_eth.underlying == "ETH"
    assert short_eth.quantity * SPOT["ETH"] == pytest.approx(-0.8 * SPOT["BTC"])


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_build_book_revertsWhenSpotBad(bad: float) -> None:
    with pytest.raises(ValueError, match="spot"):
        build_book(BOOKS["naked_short_put"], "SOL", spot={"SOL": bad}, vol=VOL)


def test_build_book_revertsWhenHedgeVolMissing() -> None:
    with pytest.raises(ValueError, match="vol"):
        build_book(BOOKS["short_straddle_hedged"], "SOL", spot=SPOT, vol={})
