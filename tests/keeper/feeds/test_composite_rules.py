"""The composite feed's rules on in-process sources (no HTTP): one liar among honest
sources never moves the value, confidence stays in [0, 1], too few common bars refuse,
and the smile fit of the options adapter."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keeper.errors import FeedError
from keeper.feeds.composite import CompositeFeed, CompositeSettings
from keeper.feeds.deribit import fit_smile
from keeper.feeds.sources import MarketSource, Observation

NOW = 1_719_748_800
DAY = 86_400


class FakeSource(MarketSource):
    def __init__(self, name: str, price: float, *, age: int = 0, bars: int = 40) -> None:
        self.name = name
        self.price = price
        self.age = age
        self.bars = bars

    @property
    def provides(self) -> frozenset[str]:
        return frozenset({"spot", "bars"})

    @property
    def symbols(self) -> tuple[str, ...]:
        return ("BTC",)

    def fetch(self, now: int) -> Observation:
        today = now // DAY * DAY
        closes = tuple(
            (today - (self.bars - i) * DAY, 60_000.0 * math.exp(0.01 * math.sin(i)))
            for i in range(self.bars)
        )
        return Observation(
            self.name,
            now - self.age,
            spots={"BTC": self.price},
            closes={"BTC": closes},
            bar_seconds=DAY,
        )


def feed(*sources: MarketSource, **kw: object) -> CompositeFeed:
    return CompositeFeed(
        sources,
        CompositeSettings(symbols=("BTC",), tokens={"WBTC": "BTC"}, **kw),  # type: ignore[arg-type]
    )


@settings(max_examples=60, deadline=None)
@given(
    honest=st.lists(st.floats(59_000, 61_000), min_size=2, max_size=5),
    lie=st.floats(0.05, 10.0),
    ages=st.lists(st.integers(0, 59), min_size=6, max_size=6),
)
def test_one_liar_among_agreeing_honest_sources_never_moves_the_value(
    honest: list[float], lie: float, ages: list[int]
) -> None:
    if max(honest) > 1.01 * min(honest):  # honest sources agree within half the tolerance
        honest = [60_000.0 + (p - 60_000.0) / 100 for p in honest]
    sources = [FakeSource(f"h{i}", p, age=ages[i]) for i, p in enumerate(honest)]
    sources.append(FakeSource("liar", 60_000.0 * (1 + lie), age=ages[-1]))
    state = feed(*sources).tick(NOW)
    spot = state.underlying("BTC").spot
    assert min(honest) <= spot <= max(honest)
    conf = state.confidence["BTC"]
    assert 0.0 <= conf <= len(honest) / len(sources) + 1e-12


def test_the_median_of_three_is_the_middle_one_and_an_even_count_averages() -> None:
    assert (
        feed(*(FakeSource(n, p) for n, p in [("a", 100.0), ("b", 101.0), ("c", 101.5)]))
        .tick(NOW)
        .underlying("BTC")
        .spot
        == 101.0
    )
    two = feed(FakeSource("a", 100.0), FakeSource("b", 101.0)).tick(NOW)
    assert two.underlying("BTC").spot == 100.5


def test_too_few_consecutive_common_bars_refuse_the_tick() -> None:
    with pytest.raises(FeedError, match="BTC.returns: returns: 10 consecutive bars"):
        feed(FakeSource("a", 100.0, bars=10), min_bars=30).tick(NOW)


def test_a_source_ahead_of_the_keeper_clock_beyond_the_skew_is_stale() -> None:
    f = feed(FakeSource("a", 100.0), FakeSource("b", 100.0, age=-30), FakeSource("c", 100.0))
    assert f.tick(NOW).confidence["BTC"] == pytest.approx(2 / 3)


def test_the_smile_fit_recovers_a_quadratic_smile_and_needs_three_strikes() -> None:
    f = 100.0
    strikes = [80.0, 90.0, 100.0, 110.0, 125.0]
    vols = [0.5 - 0.1 * math.log(k / f) + 0.3 * math.log(k / f) ** 2 for k in strikes]
    s = fit_smile(NOW + 30 * DAY, f, strikes, vols)
    assert (s.atm_vol, s.skew, s.curvature) == pytest.approx((0.5, -0.1, 0.3), abs=1e-9)
    with pytest.raises(FeedError, match="need 3"):
        fit_smile(NOW + DAY, f, [90.0, 110.0, 110.0], [0.5, 0.5, 0.5])
