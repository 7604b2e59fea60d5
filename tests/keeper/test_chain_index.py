"""The event indexer: subaccounts and owners from SubaccountTransferred, incremental scan,
reorg detection and recovery from a safe block."""

from __future__ import annotations

import pytest

from keeper.chain import ChainAdapter
from keeper.store import Store
from scripts.pipeline_world import World

pytestmark = pytest.mark.anvil


def rpc(world: World, method: str, *params: object) -> object:
    return world.w3.provider.make_request(method, list(params))["result"]  # type: ignore[arg-type]


def owners(store: Store, *who: str) -> dict[str, list[int]]:
    return {w: [r.account for r in store.subaccounts_of(w)] for w in who}


def test_index_learns_every_subaccount_and_follows_its_owner(world: World, store: Store) -> None:
    alice, bob = world.actor("alice"), world.actor("bob")
    chain = ChainAdapter(world.w3, world.vault.address, store=store)
    first = world.new_account(alice)
    created = world.w3.eth.block_number
    second = world.new_account(alice)  # an owner may hold any number
    assert chain.index() == 2 and chain.accounts == (first, second)
    assert chain.accounts_at(created) == [first]  # the snapshot of that block has one
    assert chain.subaccounts_of(alice.address) == (first, second)
    world.tx(world.vault.functions.transferSubaccount(second, bob.address), alice)
    assert chain.index() == 2 and chain.owner_of(second) == bob.address
    assert chain.subaccounts_of(bob.address) == (second,)
    assert owners(store, alice.address, bob.address) == {
        alice.address: [first],
        bob.address: [second],
    }
    assert chain.owner_of(99) is None


def test_incremental_index_and_reorg_recovery(world: World, store: Store) -> None:
    alice, carol, dave = (world.actor(n) for n in ("alice", "carol", "dave"))
    chain = ChainAdapter(world.w3, world.vault.address, store=store)
    world.fund_cash(alice, 100)
    a = world.account(alice)
    assert chain.index() == 1 and chain.accounts == (a,)
    safe = chain.indexed_block
    assert store.get_cursor() is not None and store.get_cursor().block_number == safe  # type: ignore[union-attr]
    snap = rpc(world, "evm_snapshot")
    orphan = world.new_account(carol)  # on the branch that will be dropped
    world.tx(world.vault.functions.transferSubaccount(a, carol.address), alice)
    assert chain.index() == 2 and chain.owner_of(a) == carol.address
    assert owners(store, carol.address)[carol.address] == [a, orphan]
    orphaned = chain.indexed_block
    # reorg: back to the snapshot, another history of the same (or greater) height, where
    # dave gets the same id carol had and alice keeps hers
    assert rpc(world, "evm_revert", snap)
    assert world.new_account(dave) == orphan
    while world.w3.eth.block_number < (orphaned or 0) + 1:
        rpc(world, "evm_mine")
    assert chain.index() == 2 and [*chain.accounts] == [a, orphan]
    assert chain.owner_of(a) == alice.address and chain.owner_of(orphan) == dave.address
    assert owners(store, alice.address, carol.address, dave.address) == {
        alice.address: [a],
        carol.address: [],
        dave.address: [orphan],
    }


def test_reorg_below_every_checkpoint_rebuilds(world: World, store: Store) -> None:
    alice, carol = world.actor("alice"), world.actor("carol")
    snap = rpc(world, "evm_snapshot")
    world.fund_cash(alice, 100)
    chain = ChainAdapter(world.w3, world.vault.address, store=store)
    assert chain.index() == 1
    assert rpc(world, "evm_revert", snap)  # below the only checkpoint
    c = world.new_account(carol)
    rpc(world, "evm_mine")
    assert chain.index() == 1 and chain.accounts == (c,)
    assert chain.owner_of(c) == carol.address
    assert owners(store, alice.address, carol.address) == {
        alice.address: [],
        carol.address: [c],
    }
