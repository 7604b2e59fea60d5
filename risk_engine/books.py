"""The named books of the backtest and the capital-efficiency table, as data.

A book is defined once, relative to the market of the day it is opened: strikes as a
fraction of spot, expiries as days from that day, sizes per one unit of the underlying.
:func:`build_book` turns a definition and a day's market into concrete legs (absolute
strikes in USD per unit, expiry in years from the day), which the caller maps onto the
engine's instrument table. The backtest opens every book afresh each day (a
constant-maturity book), so each day's loss is that of the same shape of risk.

| book | legs (per 1 unit of the underlying) |
|---|---|
| covered_call | hold 1 unit as collateral; short 1 call, strike 110 %, 30 days |
| short_straddle_hedged | short 1 call + 1 put, strike 100 %, 30 days; perp hedges the delta |
| calendar_spread | short 1 call 30 days, long 1 call 90 days, strike 100 % |
| cash_and_carry | hold 1 unit as collateral; short 1 perp |
| pair | long 1 BTC perp; short ETH perp of beta x the BTC notional |
| naked_short_put | short 1 put, strike 90 %, 30 days |
| naked_long_call | long 1 call, strike 100 %, 30 days |
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from risk_engine.pricing import black76_delta

__all__ = [
    "BOOKS",
    "Book",
    "BookSpec",
    "Leg",
    "LegKind",
    "LegSpec",
    "PAIR_UNDERLYINGS",
    "build_book",
    "gross_notional",
    "hedge_size",
]

DAYS_PER_YEAR = 365.0


class LegKind(StrEnum):
    TOKEN = "token"  # collateral held in the account: a spot position in the scenarios
    PERP = "perp"
    CALL = "call"
    PUT = "put"


@dataclass(frozen=True, kw_only=True)
class LegSpec:
    """One leg relative to the opening day's market.

    Attributes
    ----------
    kind : LegKind
    quantity : float
        Units of the underlying per unit of book; > 0 long (or held), < 0 short.
    strike_ratio : float
        Strike / spot on the opening day (options only).
    tenor_days : float
        Days from the opening day to expiry (options only).
    second : bool
        The leg is on the book's second underlying (the pair's short leg), and its
        quantity is scaled by ``beta * spot_first / spot_second``.
    """

    kind: LegKind
    quantity: float
    strike_ratio: float = 0.0
    tenor_days: float = 0.0
    second: bool = False


@dataclass(frozen=True, kw_only=True)
class BookSpec:
    name: str
    description: str
    legs: tuple[LegSpec, ...]
    hedged: bool
    delta_hedge: bool = False  # add a perp leg that makes the book delta-neutral at open
    pair: bool = False  # the book spans two underlyings (PAIR_UNDERLYINGS)


PAIR_UNDERLYINGS = ("BTC", "ETH")

_C, _P, _PERP, _TOKEN = LegKind.CALL, LegKind.PUT, LegKind.PERP, LegKind.TOKEN

BOOKS: dict[str, BookSpec] = {
    spec.name: spec
    for spec in (
        BookSpec(
            name="covered_call",
            description="hold 1 unit as collateral, short 1 call 110% 30d",
            legs=(
                LegSpec(kind=_TOKEN, quantity=1.0),
                LegSpec(kind=_C, quantity=-1.0, strike_ratio=1.10, tenor_days=30.0),
            ),
            hedged=True,
        ),
        BookSpec(
            name="short_straddle_hedged",
            description="short 1 call + 1 put 100% 30d, delta-hedged with the perp",
            legs=(
                LegSpec(kind=_C, quantity=-1.0, strike_ratio=1.0, tenor_days=30.0),
                LegSpec(kind=_P, quantity=-1.0, strike_ratio=1.0, tenor_days=30.0),
            ),
            hedged=True,
            delta_hedge=True,
        ),
        BookSpec(
            name="calendar_spread",
            description="short 1 call 100% 30d, long 1 call 100% 90d",
            legs=(
                LegSpec(kind=_C, quantity=-1.0, strike_ratio=1.0, tenor_days=30.0),
                LegSpec(kind=_C, quantity=1.0, strike_ratio=1.0, tenor_days=90.0),
            ),
            hedged=True,
        ),
        BookSpec(
            name="cash_and_carry",
            description="hold 1 unit as collateral, short 1 perp",
            legs=(LegSpec(kind=_TOKEN, quantity=1.0), LegSpec(kind=_PERP, quantity=-1.0)),
            hedged=True,
        ),
        BookSpec(
            name="pair",
            description="long 1 BTC perp, short beta x its notional in ETH perp",
            legs=(
                LegSpec(kind=_PERP, quantity=1.0),
                LegSpec(kind=_PERP, quantity=-1.0, second=True),
            ),
            hedged=True,
            pair=True,
        ),
        BookSpec(
            name="naked_short_put",
            description="short 1 put 90% 30d",
            legs=(LegSpec(kind=_P, quantity=-1.0, strike_ratio=0.90, tenor_days=30.0),),
            hedged=False,
        ),
        BookSpec(
            name="naked_long_call",
            description="long 1 call 100% 30d",
            legs=(LegSpec(kind=_C, quantity=1.0, strike_ratio=1.0, tenor_days=30.0),),
            hedged=False,
        ),
    )
}


@dataclass(frozen=True, kw_only=True)
class Leg:
    """A concrete leg on the opening day.

    Attributes
    ----------
    kind : LegKind
    underlying : str
    quantity : float
        Units of the underlying; > 0 long (held), < 0 short.
    strike : float
        USD per unit (0 for token and perp).
    expiry_years : float
        Years from the opening day to expiry (0 for token and perp).
    """

    kind: LegKind
    underlying: str
    quantity: float
    strike: float = 0.0
    expiry_years: float = 0.0


@dataclass(frozen=True)
class Book:
    name: str
    underlying: str  # "BTC", or "BTC/ETH" for the pair
    legs: tuple[Leg, ...]
    hedged: bool


def _option_delta(spot: float, leg: Leg, vol: float) -> float:
    """Black-76 delta per unit with the forward at spot (zero rate and basis)."""
    is_call = leg.kind is LegKind.CALL
    return float(black76_delta(spot, leg.strike, leg.expiry_years, vol, 0.0, is_call))


def hedge_size(legs: Iterable[tuple[float, float]]) -> float:
    """Units of the perp that flatten a book's delta: ``-sum(quantity * delta)`` over the
    ``(quantity, delta per unit)`` of its legs (units of the underlying; a perp or a token
    has delta 1, an option :func:`~risk_engine.pricing.black76_spot_delta`)."""
    return -sum(q * d for q, d in legs)


def build_book(
    spec: BookSpec,
    underlying: str,
    *,
    spot: Mapping[str, float],
    vol: Mapping[str, float],
    beta: float = 1.0,
) -> Book:
    """Open ``spec`` on ``underlying`` in the market given by ``spot`` and ``vol``.

    Parameters
    ----------
    spec : BookSpec
    underlying : str
        The book's underlying; for a pair book, its first underlying (the second is
        ``PAIR_UNDERLYINGS[1]``).
    spot : Mapping[str, float]
        USD per unit, > 0, for every underlying the book uses.
    vol : Mapping[str, float]
        Annualised implied vol (flat smile) of the underlying, > 0; used for the delta hedge.
    beta : float
        Pair only: units of second-underlying notional per unit of first-underlying notional.
    """
    second = PAIR_UNDERLYINGS[1] if spec.pair else underlying
    for name in {underlying, second}:
        value = spot.get(name)
        if value is None or not np.isfinite(value) or value <= 0.0:
            raise ValueError(f"spot[{name!r}]={value} must be a finite number > 0")
    s0 = spot[underlying]
    legs: list[Leg] = []
    for leg in spec.legs:
        if leg.second:
            legs.append(
                Leg(
                    kind=leg.kind,
                    underlying=second,
                    quantity=leg.quantity * beta * s0 / spot[second],
                )
            )
            continue
        legs.append(
            Leg(
                kind=leg.kind,
                underlying=underlying,
                quantity=leg.quantity,
                strike=leg.strike_ratio * s0,
                expiry_years=leg.tenor_days / DAYS_PER_YEAR,
            )
        )
    if spec.delta_hedge:
        sigma = vol.get(underlying)
        if sigma is None or not np.isfinite(sigma) or sigma <= 0.0:
            raise ValueError(f"vol[{underlying!r}]={sigma} must be a finite number > 0")
        size = hedge_size(
            (
                leg_.quantity,
                _option_delta(s0, leg_, sigma) if leg_.kind in (LegKind.CALL, LegKind.PUT) else 1.0,
            )
            for leg_ in legs
        )
        legs.append(Leg(kind=LegKind.PERP, underlying=underlying, quantity=size))
    label = f"{underlying}/{second}" if spec.pair else underlying
    return Book(name=spec.name, underlying=label, legs=tuple(legs), hedged=spec.hedged)


def gross_notional(book: Book, spot: Mapping[str, float]) -> float:
    """Sum over legs of |quantity| x spot, USD (options count their underlying units)."""
    return float(sum(abs(leg.quantity) * spot[leg.underlying] for leg in book.legs))
