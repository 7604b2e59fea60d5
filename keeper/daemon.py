"""The keeper daemon: wires config, chain, feed, engine, store, signers, API, metrics.

:func:`build_keeper` assembles the parts from a :class:`~keeper.config.Config` (each
can be overridden, for tests and scripts) into a :class:`Keeper`; :meth:`Keeper.run`
hands them to the :class:`~keeper.lifecycle.Lifecycle`: the proof API and metrics start,
the epoch job runs every ``keeper.interval_seconds`` (never overlapping), and SIGTERM /
SIGINT stop it after the running epoch finished.

A chain that was reset under the keeper (:class:`~keeper.chain.ChainResetError`) stops
the daemon with exit code 3 and a log line saying so: posting on would attest a chain
the store does not describe.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import numpy as np
from eth_account import Account
from web3 import Web3

from keeper.api import ProofApi
from keeper.chain import ChainAdapter
from keeper.compute import margin_fn
from keeper.config import Config
from keeper.errors import ChainResetError
from keeper.feeds import MarketFeed, ReplayFeed, SimConfig, SimulatedFeed, build_composite
from keeper.gas import FeeHistoryStrategy
from keeper.lifecycle import Lifecycle
from keeper.metrics import KeeperMetrics
from keeper.pipeline import EpochPipeline, EpochResult
from keeper.signers import EpochSigner, LocalSigner, RemoteSigners
from keeper.store import Store
from keeper.txmanager import TxManager
from keeper.web import WebRoutes
from risk_engine import RiskParams, load_params

__all__ = ["EXIT_CHAIN_RESET", "Keeper", "build_feed", "build_keeper", "build_signer"]

log = logging.getLogger("keeper.daemon")

EXIT_CHAIN_RESET = 3


def build_feed(
    config: Config, *, start_time: int | None = None, metrics: KeeperMetrics | None = None
) -> MarketFeed:
    """The configured market feed (``sim``: seeded simulator; ``replay``: CSV history;
    ``composite``: live providers, keeper/feeds/composite.py)."""
    if config.feed.kind == "composite":
        return build_composite(config.feed, metrics=metrics)
    if config.feed.kind == "replay":
        assert config.feed.path is not None
        return ReplayFeed(config.feed.path)
    return SimulatedFeed(
        SimConfig(time_scale=config.feed.time_scale),
        np.random.default_rng(config.feed.seed),
        start_time=int(time.time()) if start_time is None else start_time,
    )


def build_signer(config: Config) -> EpochSigner:
    if config.signers.mode == "remote":
        # Requests are signed with the sender key: the services accept only that keeper.
        return RemoteSigners(config.signers.remote_urls, auth_key=config.sender_key)
    return LocalSigner(config.signers.keys)


@dataclass
class Keeper:
    """Every part of a running keeper (see the module docstring)."""

    config: Config
    w3: Web3
    chain: ChainAdapter
    store: Store
    feed: MarketFeed
    pipeline: EpochPipeline
    api: ProofApi
    metrics: KeeperMetrics
    lifecycle: Lifecycle
    exit_code: int = 0
    refused_in_row: int = 0  # epochs refused since the last one that was not

    def health(self) -> Mapping[str, Any]:
        last = self.pipeline.last_result
        limit = self.config.keeper.max_refused_in_row
        body: dict[str, Any] = {
            "ok": self.exit_code == 0 and self.refused_in_row < limit,
            "refusedInRow": self.refused_in_row,
            "lastResult": None if last is None else last.status,
            "lastRefusal": self.pipeline.last_refusal,
            "indexedBlock": self.chain.indexed_block,
            "accountsKnown": len(self.chain.accounts),  # subaccounts indexed
        }
        if self.refused_in_row >= limit:
            body["reason"] = (
                f"{self.refused_in_row} epochs refused in a row (keeper.max_refused_in_row = "
                f"{limit}): {self.pipeline.last_refusal}"
            )
        return body

    def epoch_job(self) -> EpochResult | None:
        """The periodic job: one epoch; a reset chain stops the daemon."""
        try:
            result = self.pipeline.run_epoch()
            self.refused_in_row = self.refused_in_row + 1 if result.status == "refused" else 0
            return result
        except ChainResetError as exc:
            self.exit_code = EXIT_CHAIN_RESET
            log.critical("chain reset detected; stopping", extra={"why": str(exc)})
            self.metrics.failure("chain_reset")
            self.lifecycle.request_stop()
            return None

    def run(self, *, install_signals: bool = True) -> int:
        """Block until stopped; returns the process exit code."""
        try:
            self.lifecycle.run(install_signals=install_signals)
        except ChainResetError as exc:  # at startup: the store's chain is gone
            self.exit_code = EXIT_CHAIN_RESET
            log.critical("chain reset detected at startup; not starting", extra={"why": str(exc)})
        return self.exit_code

    def close(self) -> None:
        self.api.stop()
        self.metrics.stop()
        self.feed.close()
        self.store.close()


def build_keeper(
    config: Config,
    *,
    params: RiskParams | None = None,
    feed: MarketFeed | None = None,
    signer: EpochSigner | None = None,
    w3: Web3 | None = None,
    serve_metrics: bool = True,
    dry_run: bool = False,
) -> Keeper:
    """Assemble a :class:`Keeper` from ``config``; any part can be passed in instead.
    ``dry_run``: build, store and sign every epoch, send nothing."""
    w3 = w3 or Web3(Web3.HTTPProvider(config.chain.rpc_url, request_kwargs={"timeout": 10}))
    store = Store(
        config.keeper.db_path,
        epochs_dir=config.keeper.epochs_dir,
        retention=config.store.retention,
        cache_epochs=config.store.cache_epochs,
    )
    chain = ChainAdapter(
        w3,
        config.chain.resolve_vault_address(),
        store=store,
        deployment_block=config.chain.start_block,
        confirmations=config.chain.confirmations,
    )
    metrics = KeeperMetrics()
    last = store.latest_epoch(status="mined")
    if last is not None:  # lag right after a restart (keeper/metrics.py: seed)
        metrics.seed(last.number, last.timestamp)
    sender = Account.from_key(config.sender_key)
    tx = TxManager(
        w3,
        sender,
        gas=FeeHistoryStrategy(priority_fee_wei=config.fees.priority_fee_wei),
        fee_cap_wei=config.fees.max_fee_wei,
        store=store,
        chain_id=config.chain.chain_id,
        bump_pct=config.fees.replacement_bump_pct,
        stuck_after=config.fees.stuck_after_seconds,
        receipt_timeout=config.fees.receipt_timeout_seconds,
    )
    feed = feed or build_feed(config, metrics=metrics)
    pipeline = EpochPipeline(
        chain,
        feed,
        store,
        signer or build_signer(config),
        params or load_params(),
        tx=None if dry_run else tx,
        metrics=metrics,
        state_check_epochs=config.chain.state_check_epochs,
        post_policy=config.post,
    )
    lifecycle = Lifecycle(metrics=metrics)
    # compute.backend (docs/operations.md, "A compute cluster"): a dask client connects at
    # startup, before the first epoch, and is closed at shutdown
    compute = ExitStack()

    def connect_compute() -> None:
        pipeline.margin = compute.enter_context(margin_fn(config.compute))

    holder: list[Keeper] = []
    keeper = Keeper(
        config=config,
        w3=w3,
        chain=chain,
        store=store,
        feed=feed,
        pipeline=pipeline,
        api=ProofApi(
            store,
            host=config.api.host,
            port=config.api.port,
            max_epoch_age=config.keeper.epoch_max_age_seconds,
            metrics=metrics,
            health=lambda: holder[0].health(),
            extra=WebRoutes(store, chain, pipeline.params, pipeline.token_underlyings),
            cors_origins=config.api.cors_origins,
            liquidatable_margin_usd=config.api.liquidatable_margin_usd,
        ),
        metrics=metrics,
        lifecycle=lifecycle,
    )
    holder.append(keeper)
    lifecycle.on_startup(connect_compute)
    lifecycle.on_startup(pipeline.startup)
    lifecycle.on_startup(keeper.api.start)
    if serve_metrics:
        lifecycle.on_startup(lambda: metrics.serve(config.metrics_port))
    lifecycle.every(config.keeper.interval_seconds, keeper.epoch_job, name="epoch")
    lifecycle.on_shutdown(keeper.close)
    lifecycle.on_shutdown(compute.close)
    return keeper
