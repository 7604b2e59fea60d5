"""Market feeds: one interface (:class:`MarketFeed`) producing validated :class:`MarketState`.

- :mod:`keeper.feeds.base`: the interface, the record and its validation (units there);
- :mod:`keeper.feeds.sim`: the seeded simulator with regimes, jumps and scripted shocks;
- :mod:`keeper.feeds.replay`: historical CSV replay (../shared/data layout).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

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

if TYPE_CHECKING:
    from keeper.config import FeedConfig


def build_feed(
    config: FeedConfig, *, start_time: int, expiries: Sequence[int] | None = None
) -> MarketFeed:
    """The feed ``config`` names: ``sim`` seeded with ``config.seed`` (default
    :class:`SimConfig` with ``config.time_scale``) or ``replay`` of ``config.path``
    (default :class:`ReplayConfig`). ``expiries``: option expiries (unix seconds) to quote."""
    if config.kind == "sim":
        sim = SimConfig(time_scale=config.time_scale)
        rng = np.random.default_rng(config.seed)
        return SimulatedFeed(sim, rng, start_time=start_time, expiries=expiries)
    if config.path is None:
        from keeper.errors import FeedError

        raise FeedError("replay feed needs a data directory", field="feed.path")
    return ReplayFeed(config.path, ReplayConfig(), expiries=expiries)


__all__ = [
    "build_feed",
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
