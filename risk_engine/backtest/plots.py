"""Loss against IM over time, one figure per underlying (matplotlib, Agg backend: files only)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: the backtest runs headless
import matplotlib.pyplot as plt  # noqa: E402

from risk_engine.backtest.calibrate import Calibration  # noqa: E402
from risk_engine.backtest.results import CRASH_DAYS, BookSeries  # noqa: E402

__all__ = ["plot_calibration", "plot_loss_vs_im"]


def plot_loss_vs_im(series: Sequence[BookSeries], underlying: str, path: Path) -> Path:
    """One panel per book: daily loss and IM, both as a fraction of gross notional.

    Dividing by gross notional keeps 2017 and 2024 on one scale. IM exceedances are
    marked in red; the crash days are dotted vertical lines.
    """
    rows = [s for s in series if s.underlying == underlying]
    if not rows:
        raise ValueError(f"no series for underlying {underlying!r}")
    fig, axes = plt.subplots(len(rows), 1, figsize=(11, max(3.2, 2.2 * len(rows))), sharex=True)
    axes_list = list(axes) if len(rows) > 1 else [axes]
    for ax, s in zip(axes_list, rows, strict=True):
        loss = 100.0 * s.loss / s.gross_notional
        im = 100.0 * s.im / s.gross_notional
        mm = 100.0 * s.mm / s.gross_notional
        ax.plot(s.dates, loss, lw=0.5, color="tab:blue", label="loss next day")
        ax.plot(s.dates, im, lw=0.9, color="tab:orange", label="IM")
        ax.plot(s.dates, mm, lw=0.6, color="tab:green", ls="--", label="MM")
        hit = s.loss > s.im
        ax.scatter(s.dates[hit], loss[hit], s=12, color="red", zorder=3, label="IM exceeded")
        for day in CRASH_DAYS:
            if s.dates[0] <= day <= s.dates[-1]:  # keep the axis to the series' own range
                ax.axvline(day, color="grey", lw=0.6, ls=":")
        ax.set_ylabel("% of gross")
        ax.set_title(
            f"{s.underlying} {s.book}: {int(hit.sum())} IM exceedances / {s.dates.size} days",
            fontsize=9,
        )
        ax.grid(alpha=0.3)
    axes_list[0].legend(loc="upper left", fontsize=7, ncol=4)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_calibration(cal: Calibration, path: Path) -> Path:
    """Cost against coverage for every grid point: one line per ``apc.buffer``.

    x: mean IM/gross relative to the reference (1 = the margin before the buffer);
    y: the lowest intraday IM coverage over the series. Acceptable points lie left
    of x = 1 and above the 99 % line (and have a buffer of at least 25 %).
    """
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for buffer in sorted({p.buffer for p in cal.points}):
        pts = sorted((p for p in cal.points if p.buffer == buffer), key=lambda p: p.range_scale)
        x = [p.cost_ratio for p in pts]
        y = [100.0 * p.min_coverage[1] for p in pts]
        ax.plot(x, y, marker="o", label=f"apc.buffer {buffer:g}")
        for p, xi, yi in zip(pts, x, y, strict=True):
            ax.annotate(
                f"x{p.range_scale:g}",
                (xi, yi),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
    if cal.chosen is not None:
        ax.scatter(
            [cal.chosen.cost_ratio],
            [100.0 * cal.chosen.min_coverage[1]],
            s=120,
            facecolors="none",
            edgecolors="red",
            zorder=3,
            label="chosen",
        )
    ax.axhline(99.0, color="grey", ls="--", lw=0.8)
    ax.axvline(1.0, color="grey", ls=":", lw=0.8)
    ax.set_xlabel("mean IM/gross relative to the reference (ranges x1, no buffer)")
    ax.set_ylabel("lowest intraday IM coverage over series (%)")
    ax.set_title(f"Cost vs coverage (every {cal.sample_days}th day)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
