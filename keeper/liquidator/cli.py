"""Command line of the liquidator bot: ``liquidator run`` (mounted as ``pm liquidator run``).

Configuration: ``keeper/liquidator/config.py``; wiring: ``keeper/liquidator/daemon.py``
(imported when a command runs, so ``--help`` stays fast).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from keeper._click import common_group_options, setup_logging
from keeper.errors import ConfigError
from keeper.liquidator.config import load_liquidator_config
from keeper.liquidator.outcome import TickReport

__all__ = ["liquidator_cli", "main"]


_HELP = """Liquidator bot: takes over subaccounts whose MM upper bound is below zero.

\b
Configuration: the keeper's TOML file (--config) plus PM_* variables ([chain], [fees],
[api], [keeper] as for the keeper) and a [liquidator] table (interval_seconds, source =
"api"|"store", api_url, slippage_usd, slippage_fraction, min_profit_usd, backstop,
min_headroom_usd, max_per_tick, receipt_timeout_seconds, dry_run, metrics_port, data_dir).

\b
The key never comes from a file:
  PM_LIQUIDATOR_KEY               hex private key of the liquidating account, or
  PM_LIQUIDATOR_KEYSTORE          an encrypted keystore JSON, with
  PM_LIQUIDATOR_KEYSTORE_PASSWORD its password (or PM_KEYSTORE_PASSWORD)
The key's wallet needs the settlement token (USDC): the bot receives each subaccount it
liquidates and deposits into it what brings it to IM (IM deficit + pay + fee - covered).
"""


@dataclass
class _Opts:
    config_path: Path | None


@click.group(help=_HELP)
@common_group_options("TOML configuration file (the keeper's; PM_* variables override it).")
@click.pass_context
def liquidator_cli(
    ctx: click.Context, config_path: Path | None, log_format: str, log_level: str
) -> None:
    ctx.obj = _Opts(config_path)
    setup_logging(log_format, log_level)


@liquidator_cli.command(help="Run the bot (a tick every interval) until SIGTERM / SIGINT.")
@click.option(
    "--once",
    is_flag=True,
    help="One tick: each candidate's capital need on stderr, the report as JSON, exit.",
)
@click.option("--dry-run", is_flag=True, help="Simulate liquidations, send nothing.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="TOML configuration file (same as the group's --config, which it overrides).",
)
@click.pass_context
def run(ctx: click.Context, once: bool, dry_run: bool, config_path: Path | None) -> None:
    from dataclasses import replace

    from keeper.liquidator.daemon import build_liquidator  # on use: --help stays fast

    opts: _Opts = ctx.obj
    try:
        # `liquidator run --config F` and `liquidator --config F run` mean the same
        config = load_liquidator_config(config_path or opts.config_path)
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from exc
    if dry_run:
        config = replace(config, dry_run=True)
    service = build_liquidator(config, serve_metrics=not once)
    if not once:
        sys.exit(service.run())
    try:
        report = service.bot.tick()
    finally:
        service.close()
    for line in capital_lines(report):
        click.echo(line, err=True)
    click.echo(json.dumps(_report_json(report), indent=2))


def capital_lines(report: TickReport) -> list[str]:
    """One line per candidate: its bound and capital need (IM deficit + pay + fee - covered,
    the view's ``minDeposit6``), what the bot did."""
    outcomes = {o.account: o for o in report.outcomes}
    lines = []
    for c in report.candidates:
        o = outcomes.get(c.account)
        head = f"subaccount {c.account}: MM surplus upper bound {c.mm_surplus_hi / 10**18:,.2f} USD"
        if o is None:
            lines.append(f"{head}; not tried in this tick")
            continue
        need = f"; {o.capital.line()}" if o.capital is not None else ""
        did = o.status + (f" ({o.reason.split(':', 1)[0]})" if o.reason else "")
        lines.append(f"{head}{need}; {did}")
    return lines


def _report_json(report: TickReport) -> dict[str, Any]:
    capital = {o.account: o.capital for o in report.outcomes if o.capital is not None}
    return {
        "epoch": report.epoch,
        "block": report.block,
        "skipped": report.skipped,
        "accountsWithPositions": report.accounts_with_positions,
        "candidates": [
            {
                "account": c.account,
                "mmSurplusHi": str(c.mm_surplus_hi),
                "capitalNeed": None if need is None else need.to_json(),
            }
            for c in report.candidates
            for need in [capital.get(c.account)]
        ],
        "outcomes": [o.log_fields() for o in report.outcomes],
        "seconds": round(report.seconds, 4),
    }


def main() -> None:
    liquidator_cli()


if __name__ == "__main__":
    main()
