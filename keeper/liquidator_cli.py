"""Command line of the liquidator bot: ``liquidator run`` (mounted as ``pm liquidator run``).

Configuration is the keeper's TOML file plus ``PM_*`` environment (same ``[chain]``,
``[fees]``, ``[api]``, ``[keeper]`` tables and variables, see :mod:`keeper.config`), and a
``[liquidator]`` table:

=============================  ==================================  ===========================
``[liquidator]`` key           environment                         default
=============================  ==================================  ===========================
``interval_seconds``           ``PM_LIQUIDATOR_INTERVAL_SECONDS``  1.0
``source``                     ``PM_LIQUIDATOR_SOURCE``            ``api`` (or ``store``)
``api_url``                    ``PM_LIQUIDATOR_API_URL``           ``http://<api.host>:<api.port>``
``data_dir``                   ``PM_LIQUIDATOR_DATA_DIR``          ``<keeper.data_dir>/liquidator``
``metrics_port``               ``PM_LIQUIDATOR_METRICS_PORT``      9109
``slippage_usd``                                                   10.0
``slippage_fraction``                                              0.01
``min_profit_usd``                                                 0.0
``backstop``                                                       false (true: no profit floor)
``min_headroom_usd``                                               0.0
``max_per_tick``                                                   5
``receipt_timeout_seconds``                                        30.0
``dry_run``                    ``PM_LIQUIDATOR_DRY_RUN``           false
=============================  ==================================  ===========================

The liquidator's key never comes from a file: ``PM_LIQUIDATOR_KEY`` (hex) or
``PM_LIQUIDATOR_KEYSTORE`` (an encrypted eth-account keystore) with
``PM_LIQUIDATOR_KEYSTORE_PASSWORD`` (or ``PM_KEYSTORE_PASSWORD``). ``source = "store"``
reads the keeper's sqlite store at ``<keeper.data_dir>/keeper.sqlite`` (same machine);
``api`` asks the keeper's proof API. The bot's own transactions are recorded in
``<data_dir>/liquidator.sqlite`` (so that a restart takes back a liquidation in flight).

The keeper's ``load_config`` accepts the ``[liquidator]`` table and ignores it, so the keeper and
the bot can share one file.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import click

from keeper._click import common_group_options, setup_logging
from keeper.config import (
    ChainConfig,
    FeesConfig,
    load_keystores,
    parse_api_section,
    parse_chain_section,
    parse_fees_section,
    parse_float,
    parse_int,
    parse_port,
    parse_private_key,
    parse_str,
    parse_url,
    pick_setting,
    read_toml,
    section_table,
)
from keeper.errors import ConfigError

__all__ = [
    "LiquidatorConfig",
    "LiquidatorService",
    "build_liquidator",
    "liquidator_cli",
    "load_liquidator_config",
    "main",
]

SourceKind = Literal["api", "store"]

_LIQ_KEYS = {
    "interval_seconds",
    "source",
    "api_url",
    "data_dir",
    "metrics_port",
    "slippage_usd",
    "slippage_fraction",
    "min_profit_usd",
    "backstop",
    "min_headroom_usd",
    "max_per_tick",
    "receipt_timeout_seconds",
    "dry_run",
}


@dataclass(frozen=True)
class LiquidatorConfig:
    """Everything the bot process needs (see the module docstring). The key is never in
    ``repr``."""

    chain: ChainConfig
    fees: FeesConfig
    key: str = field(repr=False)
    source: SourceKind
    api_url: str
    keeper_db: Path
    data_dir: Path
    interval_seconds: float
    metrics_port: int
    receipt_timeout_seconds: float
    slippage_usd: float = 10.0
    slippage_fraction: float = 0.01
    min_profit_usd: float | None = 0.0
    min_headroom_usd: float = 0.0
    max_per_tick: int = 5
    dry_run: bool = False


def _bool(raw: Any, name: str) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ("1", "true", "yes", "0", "false", "no"):
        return raw.strip().lower() in ("1", "true", "yes")
    raise ConfigError(name, f"expected true or false, got {raw!r}")


def _liquidator_key(env: Mapping[str, str]) -> str:
    if env.get("PM_LIQUIDATOR_KEY"):
        return parse_private_key(env["PM_LIQUIDATOR_KEY"], "PM_LIQUIDATOR_KEY")
    if env.get("PM_LIQUIDATOR_KEYSTORE"):
        password = env.get("PM_LIQUIDATOR_KEYSTORE_PASSWORD", env.get("PM_KEYSTORE_PASSWORD"))
        (key,) = load_keystores([env["PM_LIQUIDATOR_KEYSTORE"]], password)
        return key
    raise ConfigError(
        "PM_LIQUIDATOR_KEY", "the liquidator key is required (PM_LIQUIDATOR_KEY or a keystore)"
    )


def load_liquidator_config(
    path: Path | str | None = None, env: Mapping[str, str] | None = None
) -> LiquidatorConfig:
    """Read ``path`` (the keeper's TOML, optional) and ``env`` (default ``os.environ``).

    Raises :class:`~keeper.errors.ConfigError` naming the first bad field.
    """
    env = dict(os.environ if env is None else env)
    data = read_toml(path)
    chain_t = section_table(data, "chain")
    keeper_t = section_table(data, "keeper")
    fees_t = section_table(data, "fees")
    api_t = section_table(data, "api")
    liq = section_table(data, "liquidator")
    if "key" in liq or "keystore" in liq:
        raise ConfigError(
            "liquidator.key",
            "keys are never read from a file; use PM_LIQUIDATOR_KEY or PM_LIQUIDATOR_KEYSTORE",
        )
    for k in liq:
        if k not in _LIQ_KEYS:
            raise ConfigError(
                f"liquidator.{k}", f"unknown key (known: {', '.join(sorted(_LIQ_KEYS))})"
            )

    def pick(table: Mapping[str, Any], key: str, var: str) -> Any:
        return pick_setting(table, key, var, env)

    chain = parse_chain_section(chain_t, env)
    if chain.vault_address is None and chain.deployments_file is None:
        raise ConfigError("chain.vault_address", "required: vault_address or deployments_file")
    fees = parse_fees_section(fees_t, env)
    keeper_dir_raw = pick(keeper_t, "data_dir", "PM_DATA_DIR")
    keeper_dir = (
        Path(parse_str(keeper_dir_raw, "keeper.data_dir")) if keeper_dir_raw else Path("var/keeper")
    )
    api = parse_api_section(api_t, env)
    source = pick(liq, "source", "PM_LIQUIDATOR_SOURCE") or "api"
    if source not in ("api", "store"):
        raise ConfigError("liquidator.source", f"expected 'api' or 'store', got {source!r}")
    api_url = pick(liq, "api_url", "PM_LIQUIDATOR_API_URL") or f"http://{api.host}:{api.port}"
    data_dir = pick(liq, "data_dir", "PM_LIQUIDATOR_DATA_DIR")
    interval = pick(liq, "interval_seconds", "PM_LIQUIDATOR_INTERVAL_SECONDS")
    metrics_port = pick(liq, "metrics_port", "PM_LIQUIDATOR_METRICS_PORT")
    dry_run = pick(liq, "dry_run", "PM_LIQUIDATOR_DRY_RUN")
    backstop = _bool(liq.get("backstop", False), "liquidator.backstop")
    cfg = LiquidatorConfig(
        chain=chain,
        fees=fees,
        key=_liquidator_key(env),
        source="api" if source == "api" else "store",
        api_url=parse_url(api_url, "liquidator.api_url", ("http", "https")),
        keeper_db=keeper_dir / "keeper.sqlite",
        data_dir=Path(parse_str(data_dir, "liquidator.data_dir"))
        if data_dir
        else keeper_dir / "liquidator",
        interval_seconds=parse_float(
            1.0 if interval is None else interval,
            "liquidator.interval_seconds",
            minimum=0.0,
            strict_min=True,
        ),
        metrics_port=parse_port(
            9109 if metrics_port is None else metrics_port, "liquidator.metrics_port"
        ),
        receipt_timeout_seconds=parse_float(
            liq.get("receipt_timeout_seconds", 30.0),
            "liquidator.receipt_timeout_seconds",
            minimum=0.0,
            strict_min=True,
        ),
        slippage_usd=parse_float(
            liq.get("slippage_usd", 10.0), "liquidator.slippage_usd", minimum=0.0
        ),
        slippage_fraction=parse_float(
            liq.get("slippage_fraction", 0.01),
            "liquidator.slippage_fraction",
            minimum=0.0,
            maximum=1.0,
        ),
        min_profit_usd=None
        if backstop
        else parse_float(liq.get("min_profit_usd", 0.0), "liquidator.min_profit_usd"),
        min_headroom_usd=parse_float(
            liq.get("min_headroom_usd", 0.0), "liquidator.min_headroom_usd", minimum=0.0
        ),
        max_per_tick=parse_int(liq.get("max_per_tick", 5), "liquidator.max_per_tick", minimum=1),
        dry_run=False if dry_run is None else _bool(dry_run, "liquidator.dry_run"),
    )
    if cfg.source == "store" and not cfg.keeper_db.is_file():
        raise ConfigError(
            "liquidator.source", f"source 'store' but no keeper store at {cfg.keeper_db}"
        )
    return cfg


# --------------------------------------------------------------------------- wiring


@dataclass
class LiquidatorService:
    """A wired bot: its lifecycle runs ``bot.tick`` every ``interval_seconds``."""

    config: LiquidatorConfig
    bot: Any  # keeper.liquidator.LiquidatorBot (imported lazily: --help stays fast)
    lifecycle: Any
    metrics: Any
    closers: list[Any] = field(default_factory=list)

    def run(self, *, install_signals: bool = True) -> int:
        self.lifecycle.run(install_signals=install_signals)
        return 0

    def close(self) -> None:
        for fn in reversed(self.closers):
            fn()


def build_liquidator(
    config: LiquidatorConfig, *, w3: Any = None, serve_metrics: bool = True
) -> LiquidatorService:
    """Assemble the bot from ``config`` (chain adapter, TxManager on the liquidator key, the
    leaf source, metrics, a :class:`~keeper.lifecycle.Lifecycle` with the ``liquidator``
    job)."""
    from eth_account import Account
    from prometheus_client import start_http_server
    from web3 import Web3

    from keeper.chain import ChainAdapter
    from keeper.gas import FeeHistoryStrategy
    from keeper.lifecycle import Lifecycle
    from keeper.liquidator import (
        ApiLeafSource,
        LeafSource,
        LiquidatorBot,
        LiquidatorMetrics,
        LiquidatorSettings,
        StoreLeafSource,
    )
    from keeper.store import Store
    from keeper.txmanager import TxManager

    w3 = w3 or Web3(Web3.HTTPProvider(config.chain.rpc_url, request_kwargs={"timeout": 10}))
    config.data_dir.mkdir(parents=True, exist_ok=True)
    own = Store(config.data_dir / "liquidator.sqlite")
    closers: list[Any] = [own.close]
    source: LeafSource
    if config.source == "store":
        keeper_store = Store(config.keeper_db)
        closers.append(keeper_store.close)
        source = StoreLeafSource(keeper_store)
    else:
        api = ApiLeafSource(config.api_url)
        closers.append(api.close)
        source = api
    chain = ChainAdapter(
        w3,
        config.chain.resolve_vault_address(),
        deployment_block=config.chain.start_block,
        confirmations=config.chain.confirmations,
    )
    tx = TxManager(
        w3,
        Account.from_key(config.key),
        gas=FeeHistoryStrategy(priority_fee_wei=config.fees.priority_fee_wei),
        fee_cap_wei=config.fees.max_fee_wei,
        store=own,
        chain_id=config.chain.chain_id,
        bump_pct=config.fees.replacement_bump_pct,
        stuck_after=config.fees.stuck_after_seconds,
        receipt_timeout=config.receipt_timeout_seconds,
    )
    metrics = LiquidatorMetrics()
    bot = LiquidatorBot(
        chain,
        tx,
        source,
        settings=LiquidatorSettings(
            slippage_usd=config.slippage_usd,
            slippage_fraction=config.slippage_fraction,
            min_profit_usd=config.min_profit_usd,
            min_headroom_usd=config.min_headroom_usd,
            max_per_tick=config.max_per_tick,
            dry_run=config.dry_run,
        ),
        metrics=metrics,
    )
    lifecycle = Lifecycle()
    service = LiquidatorService(config, bot, lifecycle, metrics, closers)
    lifecycle.on_startup(bot.startup)
    if serve_metrics:

        def serve() -> None:
            server, _ = start_http_server(
                config.metrics_port, addr="127.0.0.1", registry=metrics.registry
            )
            closers.append(server.shutdown)

        lifecycle.on_startup(serve)
    lifecycle.every(config.interval_seconds, bot.tick, name="liquidator")
    lifecycle.on_shutdown(service.close)
    return service


# --------------------------------------------------------------------------- click

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


def _report_json(report: Any) -> dict[str, Any]:
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
