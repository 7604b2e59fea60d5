"""Books -> the engine's inputs: one account per book, one market snapshot per day.

The snapshot of a day is built from what the data gives: the close as spot and perp mark
(the data have no perp or basis series), a zero USD rate (forward = spot), and a flat
smile at the day's vol (skew = curvature = 0) for every expiry the books use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from risk_engine import (
    InstrumentKind,
    InstrumentTable,
    MarginResult,
    MarketSnapshot,
    Portfolios,
    RiskParams,
    VolSurface,
    compute_margin,
)
from risk_engine.backtest._typing import Float64Array
from risk_engine.books import Book, Leg, LegKind
from risk_engine.market import SECONDS_PER_YEAR

__all__ = ["books_to_portfolios", "day_snapshot", "margin_books", "position_accounts"]

_KIND = {
    LegKind.TOKEN: InstrumentKind.SPOT,
    LegKind.PERP: InstrumentKind.PERP,
    LegKind.CALL: InstrumentKind.CALL,
    LegKind.PUT: InstrumentKind.PUT,
}


def _key(leg: Leg, timestamp: int) -> tuple[int, str, float, int]:
    is_option = leg.kind in (LegKind.CALL, LegKind.PUT)
    expiry = timestamp + round(leg.expiry_years * SECONDS_PER_YEAR) if is_option else 0
    return (int(_KIND[leg.kind]), leg.underlying, leg.strike if is_option else 0.0, expiry)


def books_to_portfolios(books: Sequence[Book], timestamp: int) -> Portfolios:
    """One account (row) per book; one instrument (column) per distinct leg; cash 0.

    Cash does not enter IM or MM; equity is then the books' mark value.
    """
    columns: dict[tuple[int, str, float, int], int] = {}
    entries: list[tuple[int, int, float]] = []
    for row, book in enumerate(books):
        for leg in book.legs:
            col = columns.setdefault(_key(leg, timestamp), len(columns))
            entries.append((row, col, leg.quantity))
    keys = list(columns)
    instruments = InstrumentTable.build(
        [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys], [k[3] for k in keys]
    )
    dense = np.zeros((len(books), len(keys)))
    for row, col, quantity in entries:
        dense[row, col] += quantity
    return Portfolios.from_dense(instruments, dense, np.zeros(len(books)))


def position_accounts(books: Sequence[Book]) -> tuple[list[Book], list[int]]:
    """Every leg of every book as its own one-leg book (isolated margin).

    Returns the one-leg books and, per one-leg book, the index of the book it came from.
    """
    singles: list[Book] = []
    owner: list[int] = []
    for i, book in enumerate(books):
        for leg in book.legs:
            singles.append(
                Book(name=book.name, underlying=leg.underlying, legs=(leg,), hedged=False)
            )
            owner.append(i)
    return singles, owner


def day_snapshot(
    instruments: InstrumentTable,
    *,
    timestamp: int,
    spot: Mapping[str, float],
    vol: Mapping[str, float],
    returns: Float64Array,
    underlyings: tuple[str, ...],
) -> MarketSnapshot:
    """Snapshot at ``timestamp``: perp mark = spot, rate 0, flat smile at ``vol[u]``.

    Parameters
    ----------
    returns : Float64Array, shape (n_observations, len(underlyings))
        Daily log returns known at ``timestamp``, oldest first, no NaN.
    """
    is_option = (instruments.kind == InstrumentKind.CALL) | (instruments.kind == InstrumentKind.PUT)
    slices = sorted(
        {
            (instruments.underlying[i], int(instruments.expiry[i]))
            for i in np.flatnonzero(is_option).tolist()
        }
    )
    spot_arr = np.array([spot[u] for u in underlyings], dtype=np.float64)
    surface = VolSurface(
        underlying=tuple(u for u, _ in slices),
        expiry=np.array([e for _, e in slices], dtype=np.int64),
        forward=np.array([spot[u] for u, _ in slices], dtype=np.float64),
        atm_vol=np.array([vol[u] for u, _ in slices], dtype=np.float64),
        skew=np.zeros(len(slices)),
        curvature=np.zeros(len(slices)),
    )
    return MarketSnapshot(
        timestamp=timestamp,
        underlyings=underlyings,
        spot=spot_arr,
        perp_mark=spot_arr.copy(),
        rate=0.0,
        surface=surface,
        returns=returns,
    )


def margin_books(
    books: Sequence[Book],
    params: RiskParams,
    *,
    timestamp: int,
    spot: Mapping[str, float],
    vol: Mapping[str, float],
    returns: Float64Array,
    underlyings: tuple[str, ...],
) -> MarginResult:
    """IM, MM and breakdown of each book as one account, in one ``compute_margin`` call."""
    portfolios = books_to_portfolios(books, timestamp)
    market = day_snapshot(
        portfolios.instruments,
        timestamp=timestamp,
        spot=spot,
        vol=vol,
        returns=returns,
        underlyings=underlyings,
    )
    return compute_margin(portfolios, market, params)
