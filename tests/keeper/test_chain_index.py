"""The event indexer: incremental scan, reorg detection and recovery from a safe block."""

from __future__ import annotations

import pytest

from keeper.chain import ChainAdapter
from keeper.store import Store
from scripts.pipeline_world import World

pytestmark = pytest.mark.anvil


def rpc(world: World, method: str, *params: object) -> object:
    return world.w3.provider.make_request(method, list(params))["result"]  # type: ignore[arg-type]


def test_incremental_index_and_reorg_recovery(world: World, store: Store) -> None:
    alice, carol, dave = (world.actor(n) for n in ("alice", "carol", "dave"))
    chain = ChainAdapter(world.w3, world.vault.address, store=store)
    world.fund_cash(alice, 100)
    assert chain.index() == 1 and chain.accounts == (alice.address,)
    safe = chain.indexed_block
    assert store.get_cursor() is not None and store.get_cursor().block_number == safe  # type: ignore[union-attr]
    snap = rpc(world, "evm_snapshot")
    world.fund_cash(carol, 100)  # on the branch that will be dropped
    assert chain.index() == 2 and carol.address in chain.accounts
    orphaned = chain.indexed_block
    # reorg: back to the snapshot, another history of the same (or greater) height
    assert rpc(world, "evm_revert", snap)
    world.fund_cash(dave, 100)
    while world.w3.eth.block_number < (orphaned or 0) + 1:
        rpc(world, "evm_mine")
    assert chain.index() == 2
    assert chain.accounts == (alice.address, dave.address)  # carol's deposit never happened
    assert world.vault.functions.accountState(carol.address).call()[0] == 0


def test_reorg_below_every_checkpoint_rebuilds(world: World) -> None:
    alice, carol = world.actor("alice"), world.actor("carol")
    snap = rpc(world, "evm_snapshot")
    world.fund_cash(alice, 100)
    chain = ChainAdapter(world.w3, world.vault.address)
    assert chain.index() == 1
    assert rpc(world, "evm_revert", snap)  # below the only checkpoint
    world.fund_cash(carol, 100)
    rpc(world, "evm_mine")
    assert chain.index() == 1 and chain.accounts == (carol.address,)
