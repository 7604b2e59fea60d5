"""Markdown tables of a backtest (printed by the command line and pasted into docs/)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from risk_engine.backtest.calibrate import Calibration, CrashExplanation
from risk_engine.backtest.intraday import IntradaySummary
from risk_engine.backtest.results import BookSummary, Exceedance
from risk_engine.backtest.what_if import CrashCover

__all__ = [
    "calibration_series_table",
    "calibration_table",
    "coverage_table",
    "crash_explanation_table",
    "intraday_crash_table",
    "crash_cover_table",
    "crash_table",
    "exceedance_table",
    "sensitivity_table",
    "summary_table",
    "target_failures",
]


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


def crash_cover_table(covers: Sequence[CrashCover]) -> str:
    """Crash days that broke MM, and the one-parameter change that would have covered them."""
    rows = [
        "| crash day | group | books whose loss broke MM (loss > MM, USD) | parameter "
        "| default | needed | mean IM/gross of the group: default -> needed |",
        "|---|---|---|---|---:|---:|---|",
    ]
    for c in covers:
        books = "; ".join(
            f"{name} {loss:,.2f} > {mm:,.2f} (by {loss - mm:,.2f}, {loss / mm - 1:+.0%})"
            for name, loss, mm in c.breaches
        )
        if c.needed is None or c.cost_needed is None:
            needed, cost = f"not reached at {c.searched_to:g}", "-"
        else:
            needed = f"{c.needed:.3f}"
            change = c.cost_needed / c.cost_default - 1.0
            cost = f"{_pct(c.cost_default)} -> {_pct(c.cost_needed)} ({change:+.0%})"
        rows.append(
            f"| {_day(c.date)} | {c.group} | {books} | `{c.parameter}` | {c.default:g}"
            f" | {needed} | {cost} |"
        )
    if len(rows) == 2:
        rows.append("| (none) | | | | | | |")
    return "\n".join(rows)


def sensitivity_table(
    base: Sequence[BookSummary], scaled: Sequence[tuple[float, Sequence[BookSummary]]]
) -> str:
    """Coverage against cost with every scan range scaled: 'IM exc. / coverage / IM/gross'."""
    factors = [1.0] + [f for f, _ in scaled]
    by_factor = [{(s.underlying, s.book): s for s in base}] + [
        {(s.underlying, s.book): s for s in summaries} for _, summaries in scaled
    ]
    head = " | ".join(f"ranges x{f:g}" + (" (defaults)" if f == 1.0 else "") for f in factors)
    rows = [f"| underlying | book | {head} |", "|---|---|" + "---|" * len(factors)]
    for s in base:
        cells = []
        for table in by_factor:
            other = table.get((s.underlying, s.book))
            cells.append(
                "-"
                if other is None
                else f"{len(other.im_exceedances)} / {_pct(other.im_coverage)}"
                f" / {_pct(other.mean_im_over_gross, 1)} / {other.kupiec.verdict}"
            )
        rows.append(f"| {s.underlying} | {s.book} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _stamp(t: np.datetime64) -> str:
    return str(t.astype("datetime64[m]")).replace("T", " ")


def coverage_table(daily: Sequence[BookSummary], intraday: Sequence[IntradaySummary]) -> str:
    """Close-to-close and intraday coverage side by side, one row per book and underlying."""
    by_key = {(s.underlying, s.book): s for s in intraday}
    rows = [
        "| underlying | book | IM/gross | close-to-close: days / IM exc. / coverage / Kupiec "
        "| intraday: windows (bar) | IM exc. | IM coverage | MM exc. | worst loss/IM (start) "
        "| Kupiec all windows: LR / verdict "
        "| Kupiec one start hour: exc./windows (hour) / verdict |",
        "|---|---|---:|---|---|---:|---:|---:|---|---|---|",
    ]
    for d in daily:
        i = by_key.get((d.underlying, d.book))
        close = f"{d.n_days} / {len(d.im_exceedances)} / {_pct(d.im_coverage)} / {d.kupiec.verdict}"
        if i is None:
            rows.append(
                f"| {d.underlying} | {d.book} | {_pct(d.mean_im_over_gross)} | {close}"
                " | (no bars) | | | | | | |"
            )
            continue
        rows.append(
            f"| {d.underlying} | {d.book} | {_pct(d.mean_im_over_gross)} | {close}"
            f" | {i.n_windows} ({i.bar_hours} h) | {i.im_exceedances} | {_pct(i.im_coverage)}"
            f" | {i.mm_exceedances} | {i.worst_multiple:.2f} ({_stamp(i.worst_start)})"
            f" | {i.kupiec.lr:.1f} / {i.kupiec.verdict}"
            f" | {i.kupiec_phase.n_exceedances}/{i.kupiec_phase.n_days} ({i.phase_hour:02d}h)"
            f" / {i.kupiec_phase.verdict} |"
        )
    return "\n".join(rows)


def intraday_crash_table(intraday: Sequence[IntradaySummary]) -> str:
    """The worst window holding part of each crash day, against its IM and MM."""
    rows = [
        "| crash day | underlying | book | worst window starts | at | loss | IM | MM "
        "| loss/IM | loss/MM |",
        "|---|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    entries = [(c.date, s, c) for s in intraday for c in s.crash_days]
    for date, s, c in sorted(entries, key=lambda e: (e[0], e[1].underlying, e[1].book)):
        mark = "**" if c.loss > c.mm else ""
        rows.append(
            f"| {_day(date)} | {s.underlying} | {s.book} | {_stamp(c.start)} | {c.worst_at}"
            f" | {c.loss:,.2f} | {c.im:,.2f} | {c.mm:,.2f} | {c.loss / c.im:.2f}"
            f" | {mark}{c.loss / c.mm:.2f}{mark} |"
        )
    return "\n".join(rows)


def calibration_table(cal: Calibration) -> str:
    """Every grid point: cost against the reference and the lowest coverage over series."""
    rows = [
        "| ranges x | apc.buffer | mean IM/gross vs reference (mean / max over series) "
        "| lowest intraday IM coverage (series) | lowest close-to-close IM coverage (series) "
        "| acceptable |",
        "|---:|---:|---|---|---|---|",
    ]
    for p in sorted(cal.points, key=lambda p: (p.buffer, p.range_scale)):
        low, close = p.min_coverage, p.min_close_coverage
        flag = "yes" if p.acceptable() else "no"
        if p is cal.chosen:
            flag = "**chosen**"
        elif p is cal.reference:
            flag += " (reference)"
        rows.append(
            f"| {p.range_scale:g} | {p.buffer:g} | {p.cost_ratio:.3f} / {p.max_cost_ratio:.3f}"
            f" | {_pct(low[1])} ({low[0]}) | {_pct(close[1])} ({close[0]}) | {flag} |"
        )
    return "\n".join(rows)


def calibration_series_table(cal: Calibration) -> str:
    """Per series: cost and intraday coverage at the reference and at the chosen point."""
    if cal.chosen is None:
        return "(no acceptable point)"
    ref_cost, ref_cov = dict(cal.reference.cost), dict(cal.reference.coverage)
    new_cost, new_cov = dict(cal.chosen.cost), dict(cal.chosen.coverage)
    rows = [
        "| series | IM/gross: reference -> chosen | intraday IM coverage: reference -> chosen |",
        "|---|---|---|",
    ]
    for key in ref_cost:
        cov = f"{_pct(ref_cov[key])} -> {_pct(new_cov[key])}" if key in ref_cov else "(no bars)"
        rows.append(
            f"| {key} | {_pct(ref_cost[key])} -> {_pct(new_cost[key])}"
            f" ({new_cost[key] / ref_cost[key] - 1.0:+.1%}) | {cov} |"
        )
    return "\n".join(rows)


def crash_explanation_table(explanations: Sequence[CrashExplanation]) -> str:
    """What set the range on each crash day that broke IM, and the floor that would cover it."""
    rows = [
        "| crash day | series | worst-window loss / IM | floor | vol term (k x EWMA) "
        "| APC factor | range | parameter | needed |",
        "|---|---|---|---:|---:|---:|---:|---|---:|",
    ]
    for e in explanations:
        needed = "not reached" if e.needed is None else f"{e.needed:.3f}"
        rows.append(
            f"| {_day(e.date)} | {e.series} | {e.loss:,.2f} / {e.im:,.2f} ="
            f" {e.loss / e.im:.2f} | {e.floor:.3f} | {e.vol_term:.3f} | {e.buffer_factor:.3f}"
            f" | {e.range:.3f} | `{e.parameter}` | {needed} |"
        )
    if len(rows) == 2:
        rows.append("| (none) | | | | | | | | |")
    return "\n".join(rows)
