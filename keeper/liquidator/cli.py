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


_HELP = """Liquidator bot: takes over accounts whose MM upper bound is below zero.

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
The account needs cash (or collateral) in the vault: it carries the IM of what it takes.
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
@click.option("--once", is_flag=True, help="One tick, print its report as JSON, exit.")
@click.option("--dry-run", is_flag=True, help="Simulate liquidations, send nothing.")
@click.pass_context
def run(ctx: click.Context, once: bool, dry_run: bool) -> None:
    from dataclasses import replace

    from keeper.liquidator.daemon import build_liquidator  # on use: --help stays fast

    opts: _Opts = ctx.obj
    try:
        config = load_liquidator_config(opts.config_path)
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
    click.echo(json.dumps(_report_json(report), indent=2))


def _report_json(report: TickReport) -> dict[str, Any]:
    return {
        "epoch": report.epoch,
        "block": report.block,
        "skipped": report.skipped,
        "accountsWithPositions": report.accounts_with_positions,
        "candidates": [
            {"account": c.account, "mmSurplusHi": str(c.mm_surplus_hi)} for c in report.candidates
        ],
        "outcomes": [o.log_fields() for o in report.outcomes],
        "seconds": round(report.seconds, 4),
    }


def main() -> None:
    liquidator_cli()


if __name__ == "__main__":
    main()
