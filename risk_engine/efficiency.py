"""Capital efficiency of portfolio margin (``python -m risk_engine.efficiency``).

For each named book (books.py), opened on one day's real market (default: the last day
of the data), three requirements, USD per book of one unit of the underlying:

- **portfolio IM**: the engine's IM of the book as one account;
- **sum of isolated IMs**: each leg margined alone by the same engine, summed (what an
  isolated-margin venue with the same risk model would ask);
- **gross-notional rule**: ``GROSS_RULE_RATE`` x gross notional (sum |size| x spot),
  the flat rule of a venue without portfolio margin (10 %: 10x leverage).

Hedged books must show large savings against both; a naked book (one leg) saves nothing
against its isolated margin by construction.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from risk_engine import RiskParams, load_params
from risk_engine.backtest.accounts import margin_books, position_accounts
from risk_engine.backtest.data import MarketHistory, load_market_history
from risk_engine.backtest.replay import (
    BacktestConfig,
    book_groups,
    build_calendar,
    day_market,
    open_books,
)
from risk_engine.isolated import IsolatedMargin

__all__ = ["GROSS_RULE_RATE", "EfficiencyRow", "efficiency_table", "format_table", "main"]

GROSS_RULE_RATE = 0.10


@dataclass(frozen=True)
class EfficiencyRow:
    """One book's requirements (USD per book) on ``date``."""

    date: np.datetime64
    underlying: str
    book: str
    hedged: bool
    gross_notional: float
    portfolio_im: float
    isolated_im: float
    gross_rule: float

    @property
    def saving_vs_isolated(self) -> float:
        return 1.0 - self.portfolio_im / self.isolated_im

    @property
    def saving_vs_gross_rule(self) -> float:
        return 1.0 - self.portfolio_im / self.gross_rule


def efficiency_table(
    history: MarketHistory,
    params: RiskParams,
    *,
    date: np.datetime64 | None = None,
    config: BacktestConfig | None = None,
    gross_rate: float = GROSS_RULE_RATE,
) -> list[EfficiencyRow]:
    """Open every book on ``date`` (default: the last day every group can be margined)."""
    config = config or BacktestConfig()
    if not 0.0 < gross_rate <= 1.0:
        raise ValueError(f"gross_rate={gross_rate} must lie in (0, 1]")
    underlyings = config.underlyings or tuple(sorted(history.closes))
    cal = build_calendar(history, underlyings, config.vol_rule)
    min_obs = params.correlation.min_observations
    ready = np.isfinite(cal.close) & np.isfinite(cal.vol) & (cal.run >= min_obs)
    if date is None:
        usable = np.flatnonzero(ready.all(axis=1))
        if not usable.size:
            raise ValueError("no day on which every underlying has a close, a vol and history")
        t = int(usable[-1])
    else:
        hit = np.flatnonzero(cal.dates == date)
        if not hit.size or not ready[int(hit[0])].all():
            raise ValueError(f"date {date}: not every underlying has a close, vol and history")
        t = int(hit[0])
    rows: list[EfficiencyRow] = []
    for group, specs in book_groups(config, underlyings):
        market = day_market(cal, t, group, params, config.history_days)
        books, margin = open_books(market, specs, params)
        singles, owner = position_accounts(books)
        isolated = margin_books(
            singles,
            params,
            timestamp=market.timestamp,
            spot=market.spot,
            vol=market.vol,
            returns=market.returns,
            underlyings=group,
        )
        isolated_sum = IsolatedMargin(margin.im, isolated.im, np.asarray(owner)).isolated_im
        for i, book in enumerate(books):
            gross = float(margin.gross_notional[i])
            rows.append(
                EfficiencyRow(
                    date=cal.dates[t],
                    underlying=book.underlying,
                    book=book.name,
                    hedged=book.hedged,
                    gross_notional=gross,
                    portfolio_im=float(margin.im[i]),
                    isolated_im=float(isolated_sum[i]),
                    gross_rule=gross_rate * gross,
                )
            )
    return rows


def format_table(rows: Sequence[EfficiencyRow], gross_rate: float = GROSS_RULE_RATE) -> str:
    """Markdown table of :func:`efficiency_table`."""
    out = [
        f"| underlying | book | hedged | gross notional | portfolio IM | IM/gross "
        f"| sum of isolated IMs | saving vs isolated | gross rule ({gross_rate:.0%}) "
        f"| saving vs gross rule |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| {r.underlying} | {r.book} | {'yes' if r.hedged else 'no'}"
            f" | {r.gross_notional:,.2f} | {r.portfolio_im:,.2f}"
            f" | {r.portfolio_im / r.gross_notional:.2%} | {r.isolated_im:,.2f}"
            f" | {r.saving_vs_isolated:.1%} | {r.gross_rule:,.2f} | {r.saving_vs_gross_rule:.1%} |"
        )
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m risk_engine.efficiency", description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--params", type=Path, default=None)
    parser.add_argument(
        "--date",
        type=np.datetime64,
        default=None,
        help="the day whose close opens the books (default: last usable day)",
    )
    args = parser.parse_args(argv)
    history = load_market_history(args.data)
    rows = efficiency_table(history, load_params(args.params), date=args.date)
    command = "python -m risk_engine.efficiency " + " ".join(
        sys.argv[1:] if argv is None else list(argv)
    )
    print(
        f"Books opened at the close of {rows[0].date}; data {history.source};"
        f" command `{command.strip()}`. USD per book (one unit of the underlying).\n"
    )
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
