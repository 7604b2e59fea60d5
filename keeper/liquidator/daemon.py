"""The liquidator daemon: wires config, chain, leaf source, transactions, metrics, lifecycle.

:func:`build_liquidator` assembles a :class:`LiquidatorService` from a
:class:`~keeper.liquidator.config.LiquidatorConfig` (the keeper's ``keeper/daemon.py`` does
the same for the keeper); :meth:`LiquidatorService.run` hands it to the
:class:`~keeper.lifecycle.Lifecycle`: the bot starts (indexes accounts, takes back
liquidations in flight), metrics are served, ``bot.tick`` runs every ``interval_seconds``
(never overlapping) and SIGTERM / SIGINT stop it after the running tick.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from eth_account import Account
from prometheus_client import start_http_server
from web3 import Web3

from keeper.chain import ChainAdapter
from keeper.gas import FeeHistoryStrategy
from keeper.lifecycle import Lifecycle
from keeper.liquidator.bot import LiquidatorBot
from keeper.liquidator.config import LiquidatorConfig, LiquidatorSettings
from keeper.liquidator.metrics import LiquidatorMetrics
from keeper.liquidator.sources import (
    ApiLeafSource,
    LeafSource,
    StoreLeafSource,
    WatchListLeafSource,
)
from keeper.store import Store
from keeper.txmanager import TxManager

__all__ = ["LiquidatorService", "build_liquidator"]


@dataclass
class LiquidatorService:
    """A wired bot: its lifecycle runs ``bot.tick`` every ``interval_seconds``."""

    config: LiquidatorConfig
    bot: LiquidatorBot
    lifecycle: Lifecycle
    metrics: LiquidatorMetrics
    closers: list[Callable[[], None]] = field(default_factory=list)

    def run(self, *, install_signals: bool = True) -> int:
        self.lifecycle.run(install_signals=install_signals)
        return 0

    def close(self) -> None:
        for fn in reversed(self.closers):
            fn()


def build_liquidator(
    config: LiquidatorConfig, *, w3: Web3 | None = None, serve_metrics: bool = True
) -> LiquidatorService:
    """Assemble the bot from ``config`` (chain adapter, TxManager on the liquidator key, the
    leaf source, metrics, a :class:`~keeper.lifecycle.Lifecycle` with the ``liquidator``
    job)."""
    w3 = w3 or Web3(Web3.HTTPProvider(config.chain.rpc_url, request_kwargs={"timeout": 10}))
    config.data_dir.mkdir(parents=True, exist_ok=True)
    own = Store(config.data_dir / "liquidator.sqlite")
    closers: list[Callable[[], None]] = [own.close]
    source: LeafSource
    if config.source == "store":
        keeper_store = Store(config.keeper_db)
        closers.append(keeper_store.close)
        source = StoreLeafSource(keeper_store)
    else:
        api = (
            WatchListLeafSource(config.api_url)
            if config.source == "watchlist"
            else ApiLeafSource(config.api_url)
        )
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
