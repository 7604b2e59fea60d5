"""Market feeds: one interface (:class:`MarketFeed`) producing validated :class:`MarketState`.

- :mod:`keeper.feeds.base`: the interface, the record and its validation (units there);
- :mod:`keeper.feeds.sim`: the seeded simulator with regimes, jumps and scripted shocks;
- :mod:`keeper.feeds.replay`: historical CSV replay (../shared/data layout);
- :mod:`keeper.feeds.composite`: live providers combined, with a confidence per value, over
  the adapters :mod:`keeper.feeds.deribit` (options venue), :mod:`keeper.feeds.spot`
  (Binance- and Coinbase-format spot exchanges) and :mod:`keeper.feeds.chainlink`
  (AggregatorV3 over JSON-RPC), each a :class:`~keeper.feeds.sources.MarketSource`.
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
    from keeper.config import FeedConfig, SourceConfig
    from keeper.feeds.composite import CompositeFeed
    from keeper.feeds.sources import MarketSource
    from keeper.metrics import KeeperMetrics


def build_source(config: SourceConfig, *, bar_seconds: int, bars: int) -> MarketSource:
    """The adapter ``config.kind`` names, asking for ``bars`` bars of ``bar_seconds``."""
    from keeper.feeds.chainlink import ChainlinkSource
    from keeper.feeds.deribit import DeribitSource
    from keeper.feeds.spot import BinanceSpotSource, CoinbaseSpotSource

    t = config.timeout_seconds
    if config.kind == "deribit":
        return DeribitSource(
            config.name, config.url, config.symbols, timeout=t, bar_seconds=bar_seconds, bars=bars
        )
    if config.kind == "binance":
        return BinanceSpotSource(
            config.name, config.url, config.symbols, timeout=t, bar_seconds=bar_seconds, bars=bars
        )
    if config.kind == "coinbase":
        return CoinbaseSpotSource(
            config.name, config.url, config.symbols, timeout=t, bar_seconds=bar_seconds, bars=bars
        )
    return ChainlinkSource(config.name, config.url, config.symbols, timeout=t)


def build_composite(config: FeedConfig, *, metrics: KeeperMetrics | None = None) -> CompositeFeed:
    """The composite feed of ``config`` (kind ``composite``): its sources and settings."""
    from keeper.errors import FeedError
    from keeper.feeds.composite import CompositeFeed

    settings = config.composite
    if settings is None or not config.sources:
        raise FeedError("composite feed needs sources and [feed.composite]", field="feed")
    sources = [
        build_source(s, bar_seconds=settings.bar_seconds, bars=settings.max_bars + 1)
        for s in config.sources
    ]
    max_age = {s.name: s.max_age_seconds for s in config.sources if s.max_age_seconds is not None}
    return CompositeFeed(sources, settings, metrics=metrics, max_age=max_age)


def build_feed(
    config: FeedConfig,
    *,
    start_time: int,
    expiries: Sequence[int] | None = None,
    metrics: KeeperMetrics | None = None,
) -> MarketFeed:
    """The feed ``config`` names: ``sim`` seeded with ``config.seed`` (default
    :class:`SimConfig` with ``config.time_scale``), ``replay`` of ``config.path``
    (default :class:`ReplayConfig`) or ``composite`` (:func:`build_composite`).
    ``expiries``: option expiries (unix seconds) the simulator and the replay quote."""
    if config.kind == "composite":
        return build_composite(config, metrics=metrics)
    if config.kind == "sim":
        sim = SimConfig(time_scale=config.time_scale)
        rng = np.random.default_rng(config.seed)
        return SimulatedFeed(sim, rng, start_time=start_time, expiries=expiries)
    if config.path is None:
        from keeper.errors import FeedError

        raise FeedError("replay feed needs a data directory", field="feed.path")
    return ReplayFeed(config.path, ReplayConfig(), expiries=expiries)


__all__ = [
    "build_composite",
    "build_feed",
    "build_source",
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
