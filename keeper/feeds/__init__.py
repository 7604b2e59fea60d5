"""Market feeds: one interface (:class:`MarketFeed`) producing validated :class:`MarketState`.

- :mod:`keeper.feeds.base`: the interface, the record and its validation (units there);
- :mod:`keeper.feeds.sim`: the seeded simulator with regimes, jumps and scripted shocks;
- :mod:`keeper.feeds.replay`: historical CSV replay (../shared/data layout).
"""

from keeper.feeds.base import (
    SECONDS_PER_YEAR,
    FeedBounds,
    MarketFeed,
    MarketState,
    Smile,
    UnderlyingState,
)
from keeper.feeds.replay import ReplayConfig, ReplayFeed
from keeper.feeds.sim import Shock, SimConfig, SimulatedFeed, default_expiries

__all__ = [
    "SECONDS_PER_YEAR",
    "FeedBounds",
    "MarketFeed",
    "MarketState",
    "ReplayConfig",
    "ReplayFeed",
    "Shock",
    "SimConfig",
    "SimulatedFeed",
    "Smile",
    "UnderlyingState",
    "default_expiries",
]
