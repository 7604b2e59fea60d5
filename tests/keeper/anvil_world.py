"""What the keeper's Anvil scenarios share on top of ``scripts.pipeline_world.World``: run an
epoch that must be mined, read an account's MM surplus upper bound as the vault computes it
from a stored leaf, and build the liquidator bot on its own code path.

Used by the liquidator's crash scenario (tests/keeper/liquidator/conftest.py) and the
collateral-crash test (tests/keeper/test_pipeline_collateral_crash.py).
"""

from __future__ import annotations

from eth_account.signers.local import LocalAccount

from keeper.attestation import MarginProof
from keeper.chain import ChainAdapter
from keeper.gas import Fees, FixedFeeStrategy
from keeper.liquidator.bot import Hook, LiquidatorBot
from keeper.liquidator.config import LiquidatorSettings
from keeper.liquidator.metrics import LiquidatorMetrics
from keeper.liquidator.sources import LeafSource, StoreLeafSource
from keeper.pipeline import EpochPipeline
from keeper.store import Store
from keeper.txmanager import TxManager
from scripts.pipeline_world import Who, World, leaves_from_store


def mined_epoch(pipeline: EpochPipeline) -> int:
    """Run one epoch; it must be mined. Its number."""
    r = pipeline.run_epoch()
    assert r.status == "mined", r
    assert r.epoch is not None
    return r.epoch


def account_leaf(store: Store, account: int, epoch: int) -> MarginProof:
    """Subaccount ``account``'s ACCOUNT leaf and proof of ``epoch``, from the store."""
    return MarginProof.from_json(leaves_from_store(store, epoch)[f"account:{account}"])


def mm_surplus_hi(world: World, store: Store, who: Who, epoch: int) -> int:
    """The vault's MM surplus upper bound of ``who`` (an actor's first subaccount, or an id)
    now, from its leaf in ``epoch`` (WAD)."""
    account = world.account(who)
    leaf = account_leaf(store, account, epoch)
    return int(world.vault.functions.mmSurplusHi(account, leaf.to_abi()).call())


def liquidator_bot(
    world: World,
    store: Store,
    who: LocalAccount,
    *,
    source: LeafSource | None = None,
    settings: LiquidatorSettings | None = None,
    metrics: LiquidatorMetrics | None = None,
    hook: Hook | None = None,
) -> LiquidatorBot:
    """The liquidator bot sending from ``who`` (leaf source, checks, simulate, send), with
    fixed fees and fast receipt polling for Anvil. Its capital is ``who``'s wallet (USDC),
    which deposits into each subaccount it takes over."""
    tx = TxManager(
        world.w3,
        who,
        gas=FixedFeeStrategy(Fees(20 * 10**9, 10**9)),
        fee_cap_wei=500 * 10**9,
        store=store,
        receipt_timeout=30.0,
        poll_interval=0.05,
    )
    return LiquidatorBot(
        ChainAdapter(world.w3, world.vault.address),
        tx,
        source or StoreLeafSource(store),
        settings=settings or LiquidatorSettings(),
        metrics=metrics,
        hook=hook,
    )
