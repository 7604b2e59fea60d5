"""Time from a market shock to the liquidation being mined, keeper and bot running as daemons.

Each run: a fresh Anvil and world (scripts/pipeline_world.py), a maker, a naked short put
book (10 ETH-P-3000 on 8,000 USD, the victim), a hedged book and a liquidator with 20,000 USD
in its wallet (it takes the victim's subaccount over and deposits into it); the keeper's
epoch job and the liquidator's job run in one :class:`~keeper.lifecycle.Lifecycle` (their
own intervals, never overlapping). After a few calm epochs the simulator gets ``BTC, ETH -30
%`` with a +40 vol-point spike; the main
thread watches the chain (every 20 ms) and records:

- ``epochs``: epochs mined from the shock to the one whose leaf the liquidation used
  (1 = the first epoch after the shock);
- ``shock->epoch s``: wall time from ``push_shock`` to that first epoch on chain;
- ``epoch->liquidation s``: from there to the liquidation mined (the bot's latency);
- ``shock->liquidation s``: the total;
- ``re-reads``: times the bot re-read the epoch and leaves because the keeper posted under
  one of its attempts (``pm_liquidator_root_moved_total``, the whole run).

``--bot-phase S`` delays each bot tick by ``S`` seconds after its scheduled instant (both jobs
are scheduled from the same start): a sweep of ``S`` puts the bot's read just before the
keeper's post, where the root moves between the read and the view; ``--max-rereads 0``
turns the bot's re-read off (the behaviour before it existed).

Usage: ``python -m scripts.bench_liquidation [--runs 5] [--keeper-interval 1]
[--bot-interval 1] [--bot-phase 0] [--max-rereads 2]``; prints a markdown table.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from keeper.chain import ChainAdapter
from keeper.gas import Fees, FixedFeeStrategy
from keeper.lifecycle import Lifecycle
from keeper.liquidator.bot import LiquidatorBot
from keeper.liquidator.config import LiquidatorSettings
from keeper.liquidator.metrics import LiquidatorMetrics
from keeper.liquidator.sources import StoreLeafSource
from keeper.store import Store
from keeper.txmanager import TxManager
from risk_engine.units import WAD
from scripts.anvil import start_anvil
from scripts.pipeline_world import build_world, leaves_from_store, make_feed, make_pipeline


@dataclass(frozen=True)
class Run:
    epochs: int
    shock_to_epoch: float
    epoch_to_liquidation: float
    shock_to_liquidation: float
    gas: int
    rereads: int


def one_run(
    keeper_interval: float,
    bot_interval: float,
    seed: int,
    bot_phase: float = 0.0,
    max_rereads: int = LiquidatorSettings.max_rereads,
) -> Run:
    node = start_anvil()
    tmp = Path(tempfile.mkdtemp(prefix="bench-liq-"))
    store = Store(tmp / "keeper.sqlite", epochs_dir=tmp / "epochs")
    life: Lifecycle | None = None
    try:
        world = build_world(node.web3())
        feed = make_feed(world, seed=seed)
        pipeline = make_pipeline(world, store, feed=feed)
        maker, victim, hedged, liq = (
            world.actor(n) for n in ("maker", "victim", "hedged", "liquidator")
        )
        for who, usd in ((maker, 1_000_000), (victim, 8_000), (hedged, 9_000)):
            world.fund_cash(who, usd)
        world.fund_wallet(liq, 20_000)
        assert pipeline.run_epoch().status == "mined"
        leaves = leaves_from_store(store, 1)

        def field(name: str, key: str) -> float:
            leaf = leaves[f"instrument:{world.instruments[name]}"]
            return int(leaf["fields"][key]) / WAD

        # trade at the attested marks; top the cash up to what the trade's IM bound needs
        # (the seed's market sets the loss per unit) when 8,000 / 9,000 are not enough
        put, perp = round(field("ETH-P-3000", "mark"), 2), round(field("ETH-PERP", "mark"), 2)
        need_put = 10 * field("ETH-P-3000", "lossPerUnitShort")
        need_perp = 5 * field("ETH-PERP", "lossPerUnitShort")
        for who, have, need in ((victim, 8_000, need_put), (hedged, 9_000, need_put + need_perp)):
            if 1.1 * need > have:
                world.fund_cash(who, int(1.1 * need) - have + 1)
        for n, (who, legs) in enumerate(
            (
                (victim, [("ETH-P-3000", 10, put)]),
                (hedged, [("ETH-P-3000", 10, put), ("ETH-PERP", 5, perp)]),
            ),
            start=1,
        ):
            q, sig = world.quote(maker, who, legs, nonce=n)
            world.execute(q, sig, who, leaves)
        w3_bot = node.web3()
        metrics = LiquidatorMetrics()
        bot = LiquidatorBot(
            ChainAdapter(w3_bot, world.vault.address),
            TxManager(
                w3_bot,
                liq,
                gas=FixedFeeStrategy(Fees(20 * 10**9, 10**9)),
                fee_cap_wei=500 * 10**9,
                store=store,
                receipt_timeout=30.0,
                poll_interval=0.02,
            ),
            StoreLeafSource(store),
            # min_profit_usd=None: liquidate also if the crash bankrupts the book
            settings=LiquidatorSettings(min_profit_usd=None, max_rereads=max_rereads),
            metrics=metrics,
        )
        life = Lifecycle()
        life.on_startup(bot.startup)
        life.every(keeper_interval, pipeline.run_epoch, name="epoch")

        def tick() -> object:
            time.sleep(bot_phase)
            return bot.tick()

        life.every(bot_interval, tick, name="liquidator")
        life.start()
        vault = world.vault.functions
        while int(vault.currentEpoch().call()[0]) < 4:  # calm epochs carrying the books
            time.sleep(0.05)
        book, hedged_book = world.account(victim), world.account(hedged)
        assert vault.accountState(book).call()[5], "victim lost its book before"
        e0 = int(vault.currentEpoch().call()[0])
        t0 = time.monotonic()
        feed.push_shock({"BTC": -0.30, "ETH": -0.30}, vol_spike=0.4)
        t_epoch: float | None = None
        deadline = t0 + 120
        while time.monotonic() < deadline:
            if t_epoch is None and int(vault.currentEpoch().call()[0]) > e0:
                t_epoch = time.monotonic()
            if vault.ownerOf(book).call() != victim.address:
                break
            time.sleep(0.02)
        else:
            raise RuntimeError("no liquidation within 120 s")
        t1 = time.monotonic()
        t_epoch = t_epoch or t1
        (ev,) = world.vault.events.Liquidated().get_logs(from_block=0)
        assert ev["args"]["account"] == book
        receipt = world.w3.eth.get_transaction_receipt(ev["transactionHash"])
        used = int(vault.currentEpoch().call(block_identifier=ev["blockNumber"])[0])
        assert vault.ownerOf(hedged_book).call() == hedged.address, "the hedged book was taken"
        rereads = sum(
            metrics.registry.get_sample_value("pm_liquidator_root_moved_total", {"stage": s}) or 0
            for s in ("view", "simulation")
        )
        return Run(
            used - e0,
            t_epoch - t0,
            t1 - t_epoch,
            t1 - t0,
            int(receipt["gasUsed"]),
            int(rereads),
        )
    finally:
        if life is not None:
            life.stop()
        store.close()
        node.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--keeper-interval", type=float, default=1.0, help="seconds")
    ap.add_argument("--bot-interval", type=float, default=1.0, help="seconds")
    ap.add_argument(
        "--bot-phase", type=float, default=0.0, help="seconds each bot tick waits (< interval)"
    )
    ap.add_argument("--max-rereads", type=int, default=LiquidatorSettings.max_rereads)
    args = ap.parse_args(argv)
    if not 0 <= args.bot_phase < args.bot_interval:
        ap.error("--bot-phase must be in [0, --bot-interval)")
    logging.basicConfig(level=logging.ERROR)
    runs = [
        one_run(
            args.keeper_interval,
            args.bot_interval,
            seed=7 + i,
            bot_phase=args.bot_phase,
            max_rereads=args.max_rereads,
        )
        for i in range(args.runs)
    ]
    print(
        f"keeper interval {args.keeper_interval} s, bot interval {args.bot_interval} s, "
        f"bot phase {args.bot_phase} s, max re-reads {args.max_rereads}, {args.runs} runs\n"
    )
    print(
        "| run | epochs | shock->epoch s | epoch->liquidation s | shock->liquidation s | gas "
        "| re-reads |"
    )
    print("|---|---|---|---|---|---|---|")
    for i, r in enumerate(runs, 1):
        print(
            f"| {i} | {r.epochs} | {r.shock_to_epoch:.2f} | {r.epoch_to_liquidation:.2f} | "
            f"{r.shock_to_liquidation:.2f} | {r.gas:,} | {r.rereads} |"
        )
    med = statistics.median
    print(
        f"| median | {med(r.epochs for r in runs)} | {med(r.shock_to_epoch for r in runs):.2f} | "
        f"{med(r.epoch_to_liquidation for r in runs):.2f} | "
        f"{med(r.shock_to_liquidation for r in runs):.2f} | {med(r.gas for r in runs):,.0f} "
        f"| {sum(r.rereads for r in runs)} (total) |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
