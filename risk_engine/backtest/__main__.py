"""``python -m risk_engine.backtest --data DIR``: replay history, print the markdown report.

The edge of the engine: reads the data directory (data.py), optionally a parameter file,
writes the plots and the report when asked. Everything else is pure.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from risk_engine import RiskParams, load_params
from risk_engine.backtest.calibrate import (
    BUFFERS,
    EMIR_MIN_BUFFER,
    RANGE_SCALES,
    REFERENCE_FLOORS,
    REFERENCE_VOL_MULTIPLE,
    SAMPLE_DAYS,
    TARGET_COVERAGE,
    calibrate,
    crash_explanations,
)
from risk_engine.backtest.data import MarketHistory, load_market_history
from risk_engine.backtest.intraday import intraday_series, summarize_intraday
from risk_engine.backtest.plots import plot_calibration, plot_loss_vs_im
from risk_engine.backtest.replay import BacktestConfig, BacktestResult, run_backtest
from risk_engine.backtest.report import (
    calibration_series_table,
    calibration_table,
    coverage_table,
    crash_cover_table,
    crash_explanation_table,
    crash_table,
    exceedance_table,
    intraday_crash_table,
    sensitivity_table,
    summary_table,
    target_failures,
)
from risk_engine.backtest.results import CRASH_DAYS, summarize
from risk_engine.backtest.vol import VolRule
from risk_engine.backtest.what_if import crash_covers, range_sensitivity

COVERAGE = 0.99
ALPHA = 0.05


def _vol_rule_text(history: MarketHistory, rule: VolRule) -> str:
    lines = []
    for u in sorted(history.closes):
        iv = history.implied_vols.get(u)
        realized = f"realized vol of the last {rule.window_days} daily log returns (x sqrt 365)"
        if iv is None:
            lines.append(f"- {u}: {realized} (no implied-vol index in the data).")
        else:
            lines.append(
                f"- {u}: implied-vol index close of the day ({u}_DVOL,"
                f" {iv.dates[0]}..{iv.dates[-1]};"
                f" a gap of up to {rule.max_stale_days} days reuses the last close), otherwise "
                f"{realized}."
            )
    return "\n".join(lines)


def build_report(
    history: MarketHistory,
    params: RiskParams,
    *,
    params_label: str,
    command: str,
    config: BacktestConfig,
    sensitivity: Sequence[float],
    plots_dir: Path | None,
) -> tuple[str, BacktestResult]:
    """Run everything and return the markdown report (and the base result)."""
    result = run_backtest(history, params, config)
    summaries = [summarize(s, coverage=COVERAGE, alpha=ALPHA) for s in result.series]
    intraday = [
        summarize_intraday(s, coverage=COVERAGE, alpha=ALPHA)
        for s in intraday_series(result, history.intraday, params)
    ]
    covers = crash_covers(history, params, result)
    scaled = [
        (s.factor, [summarize(x, coverage=COVERAGE, alpha=ALPHA) for x in s.series])
        for s in range_sensitivity(history, params, sensitivity, config)
    ]
    failures = target_failures(summaries, coverage=COVERAGE)
    first = min(s.first_date for s in summaries)
    last = max(s.last_date for s in summaries)
    parts = [
        f"## Backtest on {history.source} ({first}..{last}, opening days)",
        "",
        f"Command: `{command}`  ",
        f"Parameters: {params_label}; liquidation horizon {result.horizon_days} day(s);"
        f" target IM coverage {COVERAGE:.0%} per book and underlying, Kupiec POF at"
        f" {ALPHA:.0%}.",
        "",
        "Vol rule (known at each day's close, used for the margin and, from the next day's"
        " close, for the repricing):",
        "",
        _vol_rule_text(history, config.vol_rule),
        "",
        "Assumptions: flat smile (every strike and expiry at the day's vol); next day's vol"
        " from the same rule; zero rate, forward = spot; perp mark = spot and no funding"
        " (the data have no perp series, so the basis shock in IM is never tested);"
        " books opened afresh at each close (constant maturity, strikes relative to spot);"
        " loss = value at the close of t minus value at the close of t + horizon, USD per"
        " book of one unit of the underlying.",
        "",
        "### Coverage and cost",
        "",
        "`IM/gross` and `MM/gross`: mean requirement over gross notional (sum |size| x spot)."
        " `worst loss/IM`: the largest daily loss as a multiple of that day's IM (opening"
        " day). Kupiec is two-sided: `rejected: too few` means fewer exceedances than 1 %"
        " (a conservative margin); `REJECTED: too many` is a margin failure.",
        "",
        summary_table(summaries),
        "",
        "**Target (coverage >= 99 % and Kupiec not rejecting for too many exceedances):** "
        + ("met by every book and underlying." if not failures else "MISSED:"),
    ]
    parts += [f"- {f}" for f in failures]
    if intraday:
        short = [
            f"{i.underlying}/{i.book} {_pct(i.im_coverage)}"
            for i in intraday
            if i.im_coverage < COVERAGE
        ]
        parts += [
            "",
            "### Close-to-close and intraday coverage",
            "",
            "Intraday: a window of the liquidation horizon starts at every bar of the"
            " intraday files; the book is opened at the bar's open with the margin of the"
            " last daily close scaled to that price, and loses its value at the worst of"
            " the window's low, high and end (the pair: at the worst bar close). `Kupiec all"
            " windows` counts overlapping windows (its p-value overstates the evidence);"
            " `one start hour` tests the non-overlapping windows that start at the hour of"
            " the day with the highest exceedance rate.",
            "",
            coverage_table(summaries, intraday),
            "",
            "**Intraday target (coverage >= 99 % in every series):** "
            + ("met." if not short else "MISSED: " + "; ".join(short)),
            "",
            "### Crash days at their intraday extreme",
            "",
            "The worst window holding part of the crash day (UTC), against the margin at its"
            " start; `at` is the point of the window where the loss was taken. Bold: MM"
            " broken.",
            "",
            intraday_crash_table(intraday),
        ]
    parts += [
        "",
        "### Exceedances (every day a loss broke IM or MM)",
        "",
        exceedance_table(summaries),
        "",
        "### Crash days",
        "",
        "Loss from the close before the crash day to its close, against the IM and MM of the"
        " book opened at the close before.",
        "",
        crash_table(summaries),
        "",
        "### What would have covered the crash days that broke MM",
        "",
        "Smallest value of one parameter (bisection to 0.0025) for which MM would have"
        " covered every broken book of the group that day, and the mean IM/gross of the"
        " group's books over the whole history with that value (rerun).",
        "",
        crash_cover_table(covers),
    ]
    if scaled:
        parts += [
            "",
            "### Cost of coverage: every scan range scaled",
            "",
            "Each cell: IM exceedances / IM coverage / mean IM/gross / Kupiec verdict, with"
            " every `underlying.*.scan_range` and `scan.range_vol_multiple` multiplied by the"
            " factor.",
            "",
            sensitivity_table(summaries, scaled),
        ]
    if plots_dir is not None:
        labels = sorted({s.underlying for s in result.series})
        parts += ["", "### Loss against IM", ""]
        for label in labels:
            path = plots_dir / f"backtest-{label.replace('/', '-')}.png"
            plot_loss_vs_im(result.series, label, path)
            parts.append(f"![{label}](img/{path.name})")
    return "\n".join(parts) + "\n", result


def _pct(x: float) -> str:
    return f"{100.0 * x:.2f}%"


def build_calibration_report(
    history: MarketHistory, params: RiskParams, *, command: str, plots_dir: Path | None
) -> str:
    """The cost-vs-coverage scan (calibrate.py) and the crash days at the chosen point."""
    started = time.perf_counter()
    base = run_backtest(history, params, BacktestConfig(every_days=SAMPLE_DAYS))
    windows = intraday_series(base, history.intraday, params)
    cal = calibrate(history, params, windows)
    reference = ", ".join(f"{u} {v:g}" for u, v in REFERENCE_FLOORS.items())
    parts = [
        f"## Calibration of the scan ranges and the anti-procyclicality buffer on {history.source}",
        "",
        f"Command: `{command}`  ",
        f"Grid: `ranges x` in {list(RANGE_SCALES)} scales the reference floors ({reference})"
        f" and `scan.range_vol_multiple` ({REFERENCE_VOL_MULTIPLE:g}); `apc.buffer` in"
        f" {list(BUFFERS)}; `apc.stress_ratio` {params.apc.stress_ratio:g} and every other"
        " parameter from the parameter file. Each point replays every"
        f" {SAMPLE_DAYS}th day and the intraday windows of those days. Acceptable: lowest"
        f" intraday IM coverage >= {TARGET_COVERAGE:.0%}, no series dearer than at the"
        f" reference (ranges x1, no buffer), buffer >= {EMIR_MIN_BUFFER:.0%} (EMIR RTS"
        " 153/2013 art. 28(1)(a)); chosen (`calibrate.py:choose`): the acceptable point with"
        " the highest lowest intraday coverage, the cheaper on a tie, i.e. the most coverage"
        " at no more than the reference's cost in any series. Not the cheapest acceptable"
        " point: it sits on the 99% boundary by construction (the next cheaper point fails),"
        " so sampling noise flips it, and its narrower ranges leave MM under the 2022 crash"
        " moves close to close ([risk-parameters.md](risk-parameters.md)). Every point is"
        " printed: an operator may pick a cheaper acceptable one.",
        "",
        calibration_table(cal),
        "",
    ]
    if cal.chosen is None:
        parts.append("**No acceptable point in the grid.**")
    else:
        c = cal.chosen
        floors = ", ".join(f"{u} {v * c.range_scale:.3f}" for u, v in REFERENCE_FLOORS.items())
        parts += [
            f"**Chosen:** ranges x{c.range_scale:g} (`underlying.*.scan_range` {floors},"
            f" `scan.range_vol_multiple` {REFERENCE_VOL_MULTIPLE * c.range_scale:g}),"
            f" `apc.buffer` {c.buffer:g}.",
            "",
            calibration_series_table(cal),
        ]
    parts += [
        "",
        "### Crash days that broke IM intraday, at the parameters of the file",
        "",
        "The range of the opening day is `min(max_range, max(floor, vol term) x APC factor)`;"
        " `needed` is the smallest floor for which IM covers the worst window (bisection).",
        "",
    ]
    # the windows holding part of a crash day d open at the closes of d - 2 and d - 1
    crash_opening = tuple(d - np.timedelta64(k, "D") for d in CRASH_DAYS for k in (1, 2))
    full = run_backtest(history, params, BacktestConfig(only_days=crash_opening))
    intraday = [summarize_intraday(s) for s in intraday_series(full, history.intraday, params)]
    parts.append(crash_explanation_table(crash_explanations(params, full, intraday)))
    if plots_dir is not None:
        path = plot_calibration(cal, plots_dir / "calibration.png")
        parts += ["", f"![cost vs coverage](img/{path.name})"]
    parts += ["", f"Run time: {time.perf_counter() - started:.1f} s."]
    return "\n".join(parts) + "\n"


def _parse_factors(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(",") if x.strip())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m risk_engine.backtest", description=__doc__)
    parser.add_argument(
        "--data",
        type=Path,
        default=Path("../shared/data"),
        help="data directory in the ../shared/data layout",
    )
    parser.add_argument(
        "--params",
        type=Path,
        default=None,
        help="risk parameter TOML (default: the shipped default.toml)",
    )
    parser.add_argument("--report", type=Path, default=None, help="also write the report here")
    parser.add_argument(
        "--plots",
        type=Path,
        default=None,
        help="write one loss-vs-IM PNG per underlying into this directory",
    )
    parser.add_argument(
        "--sensitivity",
        type=_parse_factors,
        default=(0.75, 1.5),
        help="scan-range factors to rerun with (comma list; '' for none)",
    )
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="print the cost-vs-coverage scan of the ranges and the APC buffer instead"
        " (writes calibration.png into --plots)",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    history = load_market_history(args.data)
    params = load_params(args.params)
    label = f"`{args.params}`" if args.params else "shipped `risk_engine/params/default.toml`"
    command = "python -m risk_engine.backtest " + " ".join(
        sys.argv[1:] if argv is None else list(argv)
    )
    if args.calibrate:
        text = build_calibration_report(
            history, params, command=command.strip(), plots_dir=args.plots
        )
        print(text, end="")
        if args.report is not None:
            args.report.parent.mkdir(parents=True, exist_ok=True)
            args.report.write_text(text)
        return 0
    report, _ = build_report(
        history,
        params,
        params_label=label,
        command=command.strip(),
        config=BacktestConfig(),
        sensitivity=sorted(args.sensitivity),
        plots_dir=args.plots,
    )
    report += f"\nRun time: {time.perf_counter() - started:.1f} s.\n"
    print(report, end="")
    if args.report is not None:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
