"""The demo's local stack: Anvil, the deployment, the keeper and the liquidator bot, in one
process, started together and stopped together (the scenario of scripts/crash.py, run by
scripts/demo.py).

- Anvil: a child process on a free port (:func:`scripts.anvil.start_anvil`);
- the deployment ``pm deploy`` makes (:func:`scripts.protocol_deploy.deploy_protocol`: mock
  tokens, vault, instruments, signers) plus the at-the-money BTC pair the options book
  needs, a 2-of-3 signer set and an insurance fund; the deployment file goes to
  ``<out>/deployments/31337.json``;
- the keeper (:func:`keeper.daemon.build_keeper` on a :func:`keeper.config.load_config` of
  ``PM_*`` variables): epoch pipeline, proof API on a free port, and the seeded simulated
  feed handed in, so that the scenario can push a shock into it; data in ``<out>/keeper``;
- the bot (:func:`keeper.liquidator.daemon.build_liquidator` on ``<out>/liquidator.toml``):
  leaves from the keeper's proof API, ``backstop = true``;
- the keeper and the bot each run on their own :class:`~keeper.lifecycle.Lifecycle`
  (APScheduler threads); :meth:`Stack.stop` stops the bot, the keeper, then Anvil.

Keys are derived from labels (:func:`demo_key`): test keys of a throw-away chain, public by
design, never real ones. Logs of the keeper and the bot go to ``<out>/stack.log``.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from web3 import Web3
from web3.contract import Contract
from web3.types import RPCEndpoint

from keeper.abi import vault_abi
from keeper.config import load_config
from keeper.daemon import Keeper, build_keeper
from keeper.feeds import SimConfig, SimulatedFeed
from keeper.feeds.base import MarketState
from keeper.feeds.sim import default_expiries
from keeper.lifecycle import configure_logging
from keeper.liquidator.config import load_liquidator_config
from keeper.liquidator.daemon import LiquidatorService, build_liquidator
from keeper.store import Store
from risk_engine.units import WAD
from scripts.anvil import AnvilNode, start_anvil
from scripts.client import DeploymentInfo, KeeperApi, load_deployment, tainted_until
from scripts.deploy import send, token_at, vault_at
from scripts.errors import CliError, ScenarioError
from scripts.protocol_deploy import (
    OPTION_EXPIRY_WEEKS_INDEX,
    InstrumentSpec,
    default_instruments,
    deploy_protocol,
    write_deployment,
)
from scripts.toolchain.compile import compile_contracts

__all__ = [
    "EXTRA_OPTIONS",
    "Narrator",
    "Stack",
    "StackSettings",
    "demo_key",
    "start_stack",
]

log = logging.getLogger("scripts.demo_stack")

T = TypeVar("T")
USDC6 = 10**6
INSURANCE_USD = 50_000
SIGNER_LABELS = ("signer-1", "signer-2", "signer-3")
QUORUM = 2
#: The default instruments of ``pm deploy`` plus the at-the-money BTC pair of the straddle.
EXTRA_OPTIONS: tuple[tuple[int, str, int], ...] = ((1, "BTC", 65_000), (2, "BTC", 65_000))


def demo_key(label: str) -> LocalAccount:
    """The demo's key for ``label`` (keccak of a fixed text: a test key, public by design)."""
    acct: LocalAccount = Account.from_key(keccak(text=f"portfolio-margin demo {label}"))
    return acct


@dataclass(frozen=True)
class StackSettings:
    """Seconds unless named otherwise."""

    seed: int = 7  # of the simulated market
    keeper_interval: float = 1.0
    bot_interval: float = 1.0
    #: market seconds per clock second of the simulator (60: a market minute per epoch)
    time_scale: float = 60.0
    stage_timeout: float = 60.0  # longest wait for any one stage


class Narrator(Protocol):
    """Where the scenario reports progress (the demo prints; tests may collect)."""

    def step(self, text: str) -> None: ...

    def detail(self, text: str) -> None: ...

    def epoch(self, stack: Stack, number: int) -> None: ...


@dataclass
class Stack:
    """Anvil + deployment + keeper + bot, started by :func:`start_stack`."""

    settings: StackSettings
    out_dir: Path
    node: AnvilNode
    w3: Web3
    deployment: DeploymentInfo
    deployment_file: Path
    expiry: int
    feed: SimulatedFeed
    keeper: Keeper
    bot: LiquidatorService
    api: KeeperApi
    log_file: Path
    narrator: Narrator
    seen_epoch: int = 0
    _log_handler: logging.Handler | None = None
    _stopped: bool = False

    @property
    def vault(self) -> Contract:
        return vault_at(self.w3, self.deployment.vault)

    @property
    def data_dir(self) -> Path:
        return self.out_dir / "keeper"

    def vault_epoch(self) -> int:
        return int(self.vault.functions.currentEpoch().call()[0])

    def _epoch_reached(self, epoch: int) -> bool:
        return self.vault_epoch() >= epoch

    def synced_epoch(self) -> int:
        """The newest epoch both on chain and served by the keeper API."""
        latest = self.api.latest_epoch()
        return min(self.vault_epoch(), int(latest["epoch"]) if latest else 0)

    def poll(self) -> int:
        """Tell the narrator about every epoch mined and served since the last poll."""
        now = self.synced_epoch()
        while self.seen_epoch < now:
            self.seen_epoch += 1
            rec = self.api.epoch(self.seen_epoch)
            if rec is not None and rec.get("status") == "mined":
                self.narrator.epoch(self, self.seen_epoch)
        return now

    def wait(self, done: Callable[[], bool], what: str, timeout: float | None = None) -> None:
        """Poll (epochs reported on the way) until ``done()``; ScenarioError on timeout."""
        deadline = time.monotonic() + (timeout or self.settings.stage_timeout)
        while True:
            self.poll()
            if done():
                return
            if time.monotonic() > deadline:
                waited = timeout or self.settings.stage_timeout
                raise ScenarioError(f"timed out after {waited:.0f} s waiting for {what}")
            time.sleep(0.1)

    def wait_epoch_after(self, block: int, what: str) -> int:
        """Wait for a served epoch whose snapshot block is >= ``block``; returns it."""
        found: list[int] = []

        def ok() -> bool:
            e = self.synced_epoch()
            if e == 0:
                return False
            rec = self.api.epoch(e)
            if rec is not None and int(rec["snapshotBlock"]) >= block:
                found.append(e)
                return True
            return False

        self.wait(ok, what)
        self.poll()
        return found[-1]

    def retrying(self, what: str, action: Callable[[], T], attempts: int = 6) -> T:
        """Run ``action`` (which sends leaves of the current root); when a new epoch landed
        between fetching the leaves and mining, the root moved under it: fetch and try again."""
        for attempt in range(1, attempts + 1):
            self.wait(lambda: self.synced_epoch() == self.vault_epoch(), "the keeper API")
            before = self.vault_epoch()
            try:
                return action()
            except CliError as exc:
                until = tainted_until(str(exc))
                if until is not None and attempt < attempts:
                    # The account acted between the snapshot and the post of the current
                    # epoch: the vault values it on the next leaf (protocol §5).
                    log.info("bounds from the previous prices, waiting", extra={"what": what})
                    self.wait(functools.partial(self._epoch_reached, until), f"epoch {until}")
                    continue
                moved = self.vault_epoch() != before or "wait for the keeper" in str(exc)
                if not moved or attempt == attempts:
                    raise ScenarioError(f"{what}: {exc}") from None
                log.info("epoch moved mid-flight, retrying", extra={"what": what, "why": str(exc)})
        raise AssertionError("unreachable")

    def market(self, epoch: int) -> MarketState:
        """The market snapshot the keeper stored with ``epoch`` (its sqlite store)."""
        with Store(self.data_dir / "keeper.sqlite") as store:
            text = store.get_market_snapshot(epoch)
        if text is None:
            raise ScenarioError(f"the keeper stored no market snapshot for epoch {epoch}")
        return MarketState.from_json(text)

    def stop(self, *, keep_chain: bool = False) -> None:
        """Stop the bot, then the keeper (each finishes its running job), then Anvil unless
        ``keep_chain``. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        for name, life in (("liquidator", self.bot.lifecycle), ("keeper", self.keeper.lifecycle)):
            try:
                life.stop()
            except Exception:  # noqa: BLE001 - keep stopping the others
                log.exception("stopping %s failed", name)
        if not keep_chain:
            self.node.stop()
        if self._log_handler is not None:
            logging.getLogger().removeHandler(self._log_handler)
            self._log_handler.close()


def _instrument_specs(now: int) -> tuple[tuple[InstrumentSpec, ...], int]:
    expiry = default_expiries(now)[OPTION_EXPIRY_WEEKS_INDEX]
    extras = tuple(InstrumentSpec(k, u, s * WAD, expiry) for k, u, s in EXTRA_OPTIONS)
    return default_instruments(now) + extras, expiry


def start_stack(settings: StackSettings, out_dir: Path, narrator: Narrator) -> Stack:
    """Anvil, the deployment (mocks, vault, instruments, 2-of-3 signers, insurance fund), the
    keeper daemon and the liquidator bot, all started; on failure whatever started is
    stopped again before the error propagates."""
    out_dir.mkdir(parents=True, exist_ok=True)
    log_file = out_dir / "stack.log"
    handler = configure_logging("INFO", "kv", stream=log_file.open("a"))
    compiled = compile_contracts()
    source = "cache" if compiled.from_cache else "solc"
    narrator.step(f"compiled {len(compiled.contracts)} contracts ({source})")
    node = start_anvil()
    keeper: Keeper | None = None
    bot: LiquidatorService | None = None
    try:
        w3 = node.web3()
        narrator.step(f"anvil on {node.url} (chain {w3.eth.chain_id}, pid {node.process.pid})")
        now = int(w3.eth.get_block("latest")["timestamp"])
        specs, expiry = _instrument_specs(now)
        signers = [demo_key(s) for s in SIGNER_LABELS]
        owner = w3.eth.accounts[0]
        dep = deploy_protocol(
            w3,
            owner=owner,
            signers=[s.address for s in signers],
            quorum=QUORUM,
            instruments=specs,
            compiled=compiled,
        )
        dep_file = write_deployment(dep, out_dir / "deployments" / f"{dep.chain_id}.json")
        dep = load_deployment(w3, dep_file)
        vault = vault_at(w3, dep.vault)
        usdc = token_at(w3, dep.settlement_token)
        abi = vault_abi()
        send(usdc.functions.mint(owner, INSURANCE_USD * USDC6), owner)
        send(usdc.functions.approve(dep.vault, INSURANCE_USD * USDC6), owner)
        send(vault.functions.depositInsurance(INSURANCE_USD * USDC6), owner, abi)
        narrator.step(
            f"deployed MarginVault {dep.vault}: {len(dep.instruments)} instruments, "
            f"collateral {', '.join(dep.collateral)}, signers {QUORUM}-of-{len(signers)}, "
            f"insurance fund {INSURANCE_USD:,} USD"
        )
        narrator.detail(f"deployment file {dep_file}")
        # The keeper: real config path (PM_* variables), the simulated feed handed in so
        # that the scenario can push the shock into it.
        sender = demo_key("keeper-sender")
        w3.provider.make_request(
            RPCEndpoint("anvil_setBalance"), [sender.address, hex(1_000 * WAD)]
        )
        config = load_config(
            None,
            {
                "PM_RPC_URL": node.url,
                "PM_DEPLOYMENTS_FILE": str(dep_file),
                "PM_SIGNER_KEYS": ",".join("0x" + bytes(s.key).hex() for s in signers),
                "PM_SENDER_KEY": "0x" + bytes(sender.key).hex(),
                "PM_DATA_DIR": str(out_dir / "keeper"),
                "PM_API_PORT": "0",
                "PM_INTERVAL_SECONDS": str(settings.keeper_interval),
                "PM_FEED_SEED": str(settings.seed),
            },
        )
        feed = SimulatedFeed(
            SimConfig(time_scale=settings.time_scale),
            _rng(settings.seed),
            start_time=now,
            expiries=[expiry],
        )
        keeper = build_keeper(config, feed=feed, serve_metrics=False)
        keeper.lifecycle.start()
        narrator.step(
            f"keeper: an epoch every {settings.keeper_interval:g} s, simulated feed "
            f"(seed {settings.seed}, {settings.time_scale:g}x), proof API {keeper.api.url}"
        )
        # The bot: its own config (the keeper's variables + a [liquidator] table).
        liq = demo_key("liquidator")
        bot_toml = out_dir / "liquidator.toml"
        bot_toml.write_text(
            "# The demo's bot: take an underwater book even at a loss (backstop).\n"
            f'[liquidator]\nsource = "api"\nbackstop = true\n'
            f"interval_seconds = {settings.bot_interval}\n"
        )
        bot_config = load_liquidator_config(
            bot_toml,
            {
                "PM_RPC_URL": node.url,
                "PM_DEPLOYMENTS_FILE": str(dep_file),
                "PM_LIQUIDATOR_KEY": "0x" + bytes(liq.key).hex(),
                "PM_LIQUIDATOR_API_URL": keeper.api.url,
                "PM_DATA_DIR": str(out_dir / "keeper"),
                "PM_LIQUIDATOR_DATA_DIR": str(out_dir / "liquidator"),
            },
        )
        bot = build_liquidator(bot_config, serve_metrics=False)
        _after_next_epoch(KeeperApi(keeper.api.url), settings.stage_timeout)
        bot.lifecycle.start()
        narrator.step(
            f"liquidator bot {liq.address}: a tick every {settings.bot_interval:g} s, "
            "leaves from the proof API"
        )
        narrator.detail(f"keeper and bot logs: {log_file}")
        return Stack(
            settings=settings,
            out_dir=out_dir,
            node=node,
            w3=w3,
            deployment=dep,
            deployment_file=dep_file,
            expiry=expiry,
            feed=feed,
            keeper=keeper,
            bot=bot,
            api=KeeperApi(keeper.api.url),
            log_file=log_file,
            narrator=narrator,
            _log_handler=handler,
        )
    except BaseException:
        for part in (bot, keeper):
            if part is not None:
                part.lifecycle.stop()
        node.stop()
        logging.getLogger().removeHandler(handler)
        raise


def _after_next_epoch(api: KeeperApi, timeout: float) -> None:
    """Return right after the API starts serving a new epoch.

    Why: the keeper and the bot run on the same period; started in the same instant, every
    bot tick would overlap the keeper's next post, and the bot's leaves would always be one
    root old when its transaction lands (``InvalidAccountProof``, skipped, forever). Started
    just after a post, each tick runs in the quiet part of the keeper's period.
    """
    deadline = time.monotonic() + timeout

    def latest() -> int:
        doc = api.latest_epoch()
        return int(doc["epoch"]) if doc else 0

    seen = latest()
    while latest() == seen:
        if time.monotonic() > deadline:
            raise ScenarioError(f"the keeper posted no epoch within {timeout:.0f} s")
        time.sleep(0.01)


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)
