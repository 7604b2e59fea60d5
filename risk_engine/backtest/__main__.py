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

from risk_engine import RiskParams, load_params
from risk_engine.backtest.data import MarketHistory, load_market_history
from risk_engine.backtest.plots import plot_loss_vs_im
from risk_engine.backtest.replay import BacktestConfig, BacktestResult, run_backtest
from risk_engine.backtest.report import (
    crash_cover_table,
    crash_table,
    exceedance_table,
    sensitivity_table,
    summary_table,
    target_failures,
)
from risk_engine.backtest.results import summarize
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
        default=(0.35, 0.5),
        help="scan-range factors to rerun with (comma list; '' for none)",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    history = load_market_history(args.data)
    params = load_params(args.params)
    label = f"`{args.params}`" if args.params else "shipped `risk_engine/params/default.toml`"
    command = "python -m risk_engine.backtest " + " ".join(
        sys.argv[1:] if argv is None else list(argv)
    )
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
