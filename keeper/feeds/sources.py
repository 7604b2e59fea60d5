"""One provider's observation of the market, and the interface every provider adapter has.

A :class:`MarketSource` (``keeper/feeds/deribit.py``, ``spot.py``, ``chainlink.py``) turns
one provider's public API into an :class:`Observation`: what that provider says now, in
the engine's units, with the provider's OWN timestamp. It judges nothing but the format:
whether a value is stale, frozen or a lie is decided by ``keeper/feeds/composite.py``,
which compares the sources.

Units: prices USD per whole unit; vols annualised decimal; times unix seconds; a close
is the last price of a bar of ``bar_seconds`` that starts at its bar time.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from keeper.errors import FeedError
from keeper.feeds.base import Smile

__all__ = ["MarketSource", "Observation", "number", "field_of"]


@dataclass(frozen=True)
class Observation:
    """What one source says at one fetch.

    Attributes
    ----------
    source : str
        The source's configured name.
    time : int
        The data's own time (unix seconds): the OLDEST of the provider's timestamps in
        this observation, so a fresh ticker cannot hide a stale one.
    spots, perp_marks : Mapping[str, float]
        USD per unit, by underlying symbol (only the symbols this source quotes).
    smiles : Mapping[str, tuple[Smile, ...]]
        Vol smiles by underlying, sorted by expiry (options venues only).
    closes : Mapping[str, tuple[tuple[int, float], ...]]
        Completed bars ``(bar start time, close USD)`` by symbol, oldest first.
    bar_seconds : int
        Length of one bar of ``closes`` (0 when there are none).
    """

    source: str
    time: int
    spots: Mapping[str, float] = field(default_factory=dict)
    perp_marks: Mapping[str, float] = field(default_factory=dict)
    smiles: Mapping[str, tuple[Smile, ...]] = field(default_factory=dict)
    closes: Mapping[str, tuple[tuple[int, float], ...]] = field(default_factory=dict)
    bar_seconds: int = 0

    def __post_init__(self) -> None:
        for name in ("spots", "perp_marks", "smiles", "closes"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))


class MarketSource(abc.ABC):
    """A provider adapter. :meth:`fetch` raises :class:`~keeper.errors.FeedError` (never
    another type) when the provider is down, slow, answers an error or a malformed body;
    the composite then drops this source for the tick and asks again at the next one."""

    name: str

    @property
    def provides(self) -> frozenset[str]:
        """What it quotes: a subset of ``{"spot", "perp", "vol", "bars"}``."""
        return frozenset({"spot"})

    @property
    @abc.abstractmethod
    def symbols(self) -> tuple[str, ...]:
        """The underlying symbols it is configured to quote."""

    @abc.abstractmethod
    def fetch(self, now: int) -> Observation:
        """The provider's current quotes (``now``: the keeper's clock, unix seconds, used
        only to ask for the right window of bars)."""


def field_of(payload: Any, *path: str | int, source: str) -> Any:
    """``payload[path[0]][path[1]]...``, or a FeedError naming the missing path."""
    cur = payload
    for key in path:
        try:
            cur = cur[key]
        except (KeyError, IndexError, TypeError):
            where = ".".join(str(p) for p in path)
            raise FeedError(f"{source}: no {where} in the answer") from None
    return cur


def number(value: Any, what: str, *, source: str, positive: bool = True) -> float:
    """A finite float from a JSON number or numeric string (exchanges quote prices as
    strings), > 0 when ``positive``; else a FeedError naming ``what``."""
    if isinstance(value, bool):
        raise FeedError(f"{source}: {what} is not a number: {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise FeedError(f"{source}: {what} is not a number: {value!r}") from None
    if not math.isfinite(x) or (positive and x <= 0):
        raise FeedError(f"{source}: {what} is {x}")
    return x
