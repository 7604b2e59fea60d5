"""A live book for the risk dashboard: Anvil, the world of scripts/pipeline_world.py, a
trader with an options-and-perps book, mined epochs, and the keeper's HTTP server (the
proof API with the front-end routes of keeper/web, as ``keeper run`` serves them).

Used by the dashboard's browser test (tests/keeper/web/test_dashboard_browser.py) and by
scripts/screenshot_dashboard.py (docs/img/dashboard.png). The epochs are run by hand, not
by the daemon's scheduler, so the page and the test read the same market: nothing moves
between them. The simulator runs at ``time_scale=1e-6`` for the same reason.

The trader (subaccount of the ``trader`` key): 25,000 USD cash and 2 WETH, then, against a
well-funded ``maker``: long 4 ETH-C-3500 at 240, short 6 ETH-P-3000 at 60, short 1.5
ETH-PERP at 3,500 and long 0.2 BTC-PERP at 65,000; then a 1,000 USD withdrawal.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from eth_account.signers.local import LocalAccount

from keeper.api import ProofApi
from keeper.pipeline import EpochPipeline
from keeper.store import Store
from keeper.web import WebRoutes
from scripts.anvil import AnvilNode, start_anvil
from scripts.pipeline_world import (
    USDC6,
    World,
    build_world,
    leaves_from_store,
    make_feed,
    make_pipeline,
)

__all__ = ["TRADES", "DashboardStack", "start_dashboard_stack"]

#: The trader's two quotes (options, then perps), each leg (instrument name, size from the
#: TRADER's side, price USD).
TRADES: tuple[tuple[tuple[str, float, float], ...], ...] = (
    (("ETH-C-3500", 4.0, 240.0), ("ETH-P-3000", -6.0, 60.0)),
    (("ETH-PERP", -1.5, 3_500.0), ("BTC-PERP", 0.2, 65_000.0)),
)
TRADER_CASH_USD = 8_000
TRADER_WETH = 10**18
WITHDRAWN_USD = 1_000


@dataclass
class DashboardStack:
    """The running stack; :meth:`stop` stops the API, closes the store, stops Anvil."""

    anvil: AnvilNode
    world: World
    store: Store
    pipeline: EpochPipeline
    api: ProofApi
    trader: LocalAccount
    maker: LocalAccount

    @property
    def url(self) -> str:
        return self.api.url

    @property
    def account(self) -> int:
        """The trader's subaccount id."""
        return self.world.account(self.trader)

    def epoch(self) -> int:
        r = self.pipeline.run_epoch()
        if r.status != "mined" or r.epoch is None:
            raise RuntimeError(f"epoch not mined: {r}")
        return r.epoch

    def settled_epoch(self) -> int:
        """Two epochs: the first one's snapshot may precede a change made while it was
        built (its bounds are then at the previous prices, and the vault refuses trades
        and withdrawals until the next); the second's leaves carry the change."""
        self.epoch()
        return self.epoch()

    def stop(self) -> None:
        self.api.stop()
        self.store.close()
        self.anvil.stop()


def start_dashboard_stack(data_dir: Path) -> DashboardStack:
    """Start everything (store under ``data_dir``) and trade the book; the caller stops it."""
    anvil = start_anvil()
    try:
        world = build_world(anvil.web3())
        store = Store(data_dir / "keeper.sqlite", epochs_dir=data_dir / "epochs")
        pipeline = make_pipeline(world, store, feed=make_feed(world, time_scale=1e-6))
        maker, trader = world.actor("maker"), world.actor("trader")
        world.fund_cash(maker, 1_000_000)
        world.fund_cash(trader, TRADER_CASH_USD)
        world.fund_token(trader, "WETH", TRADER_WETH)
        api = ProofApi(
            store,
            extra=WebRoutes(store, pipeline.chain, pipeline.params, pipeline.token_underlyings),
        )
        stack = DashboardStack(anvil, world, store, pipeline, api, trader, maker)
        e = stack.epoch()
        leaves = leaves_from_store(store, e)
        for n, legs in enumerate(TRADES, start=1):
            # a quote's legs are the maker's side
            maker_legs = [(name, -size, price) for name, size, price in legs]
            q, sig = world.quote(maker, trader, maker_legs, nonce=n)
            world.execute(q, sig, trader, leaves)
            leaves = leaves_from_store(store, stack.settled_epoch())
        leaf = world.margin_proof(leaves, stack.account)
        world.tx(
            world.vault.functions.withdrawCash(stack.account, WITHDRAWN_USD * USDC6, leaf.to_abi()),
            trader,
        )
        stack.settled_epoch()
        api.start()
        return stack
    except BaseException:
        anvil.stop()
        raise
