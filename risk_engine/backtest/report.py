"""Markdown tables of a backtest (printed by the command line and pasted into docs/)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from risk_engine.backtest.results import BookSummary, Exceedance

__all__ = ["crash_table", "exceedance_table", "summary_table", "target_failures"]


def _day(d: np.datetime64) -> str:
    return str(d.astype("datetime64[D]"))


def _pct(x: float, digits: int = 2) -> str:
    return f"{100.0 * x:.{digits}f}%"


def summary_table(summaries: Sequence[BookSummary]) -> str:
    """One row per book and underlying: coverage next to its cost."""
    rows = [
        "| underlying | book | days | vol source (days) | IM/gross | MM/gross | IM exc. "
        "| IM coverage | MM exc. | worst loss/IM (day) | Kupiec LR | p | Kupiec 5% |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---|---:|---:|---|",
    ]
    for s in summaries:
        source = f"DVOL {s.days_dvol}, realized {s.days_realized}"
        rows.append(
            f"| {s.underlying} | {s.book} | {s.n_days} ({_day(s.first_date)}..{_day(s.last_date)})"
            f" | {source} | {_pct(s.mean_im_over_gross)} | {_pct(s.mean_mm_over_gross)}"
            f" | {len(s.im_exceedances)} | {_pct(s.im_coverage)} | {len(s.mm_exceedances)}"
            f" | {s.worst.multiple:.2f} ({_day(s.worst.date)}) | {s.kupiec.lr:.2f}"
            f" | {s.kupiec.p_value:.3f} | {s.kupiec.verdict} |"
        )
    return "\n".join(rows)


def _exceedance_rows(s: BookSummary, which: str, items: Sequence[Exceedance]) -> list[str]:
    return [
        f"| {s.underlying} | {s.book} | {which} | {_day(e.date)} | {e.loss:,.2f}"
        f" | {e.requirement:,.2f} | {e.excess:,.2f} | {e.multiple:.2f} |"
        for e in items
    ]


def exceedance_table(summaries: Sequence[BookSummary]) -> str:
    """Every IM and MM exceedance: the day the book was opened, loss, requirement, excess.

    USD per book (one unit of the underlying); "loss/req" is the loss as a multiple of the
    requirement it broke.
    """
    rows = [
        "| underlying | book | req. | opened (close of) | loss | requirement | excess | loss/req |",
        "|---|---|---|---|---:|---:|---:|---:|",
    ]
    for s in summaries:
        rows += _exceedance_rows(s, "IM", s.im_exceedances)
        rows += _exceedance_rows(s, "MM", s.mm_exceedances)
    if len(rows) == 2:
        rows.append("| (none) | | | | | | | |")
    return "\n".join(rows)


def crash_table(summaries: Sequence[BookSummary]) -> str:
    """Each crash day's loss against the IM and MM of the book opened the close before."""
    rows = [
        "| crash day | underlying | book | loss | IM | MM | loss/IM | loss/MM | MM broken by |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    entries = [(c.date, s, c) for s in summaries for c in s.crash_days]
    for date, s, c in sorted(entries, key=lambda e: (e[0], e[1].underlying, e[1].book)):
        broken = f"{c.loss - c.mm:,.2f}" if c.loss > c.mm else "-"
        rows.append(
            f"| {_day(date)} | {s.underlying} | {s.book} | {c.loss:,.2f} | {c.im:,.2f}"
            f" | {c.mm:,.2f} | {c.loss / c.im:.2f} | {c.loss / c.mm:.2f} | {broken} |"
        )
    return "\n".join(rows)


def target_failures(summaries: Sequence[BookSummary], *, coverage: float = 0.99) -> list[str]:
    """Books below the coverage target or rejected by Kupiec for too many exceedances."""
    failures = []
    for s in summaries:
        if s.im_coverage < coverage:
            failures.append(
                f"{s.underlying}/{s.book}: IM coverage {_pct(s.im_coverage)} < {_pct(coverage)}"
            )
        if s.kupiec.too_many:
            failures.append(
                f"{s.underlying}/{s.book}: Kupiec rejects (too many exceedances,"
                f" LR {s.kupiec.lr:.2f}, p {s.kupiec.p_value:.3f})"
            )
    return failures
