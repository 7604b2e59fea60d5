"""The account state the indexer keeps from the vault's events (docs/operations.md, "Account
state from events"), and the state chain it folds from them (docs/protocol.md §9): equal to
``accountStates`` and ``stateChain`` after every epoch through deposits,
withdrawals, trades (opening and closing positions), funding, a liquidation and a transfer;
restored across a reorg; audited by the full re-read, which counts a tampered state."""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keeper.attestation import MarginProof
from keeper.chain import AccountState, ChainAdapter
from keeper.metrics import KeeperMetrics
from keeper.pipeline import EpochPipeline
from keeper.state_chain import CommittedState
from keeper.store import Store
from risk_engine.units import WAD
from scripts.pipeline_world import World, leaves_from_store, make_pipeline

pytestmark = pytest.mark.anvil


def rpc(world: World, method: str, *params: object) -> Any:
    return world.w3.provider.make_request(method, list(params))["result"]  # type: ignore[arg-type]


def assert_state_is_the_chains(chain: ChainAdapter) -> None:
    """The kept state at the indexed block equals ``accountStates`` there, field by field
    and in the vault's position order."""
    block = chain.indexed_block
    assert block is not None and chain.state_ready
    accounts = chain.accounts_at(block)
    node = ChainAdapter(chain.w3, chain.address, track_state=False)
    theirs = node.account_states(accounts, block)
    assert chain.states_at(block) == theirs
    # the state chain folded from the same events is the vault's (docs/protocol.md §9)
    tokens = [t.address.lower() for t in node.tokens(block)]
    for s in theirs:
        word, committed = chain.state_chain(block, s.account)
        assert word == bytes(
            node.vault.functions.stateChain(s.account).call(block_identifier=block)
        )
        assert committed == CommittedState(
            s.cash,
            tuple(sorted((p.instrument, p.size, p.funding_index) for p in s.positions)),
            tuple(
                sorted(
                    ((t, b) for t, b in zip(tokens, s.collateral, strict=True) if b),
                    key=lambda x: int(x[0], 16),
                )
            ),
            s.cum_lo,
            s.cum_hi,
        )


def epoch(p: EpochPipeline) -> int:
    r = p.run_epoch()
    assert r.status == "mined", r
    assert_state_is_the_chains(p.chain)
    assert r.epoch is not None
    return r.epoch


def count_calls(chain: ChainAdapter) -> list[int]:
    """Counts the accounts read with ``accountStates`` from now on."""
    read: list[int] = []
    original = chain.account_states

    def counted(accounts: Any, block: Any = "latest") -> tuple[AccountState, ...]:
        read.extend(accounts)
        return original(accounts, block)

    chain.account_states = counted  # type: ignore[method-assign]
    return read


def test_state_from_events_equals_account_states_after_every_epoch(
    world: World, store: Store
) -> None:
    p = make_pipeline(world, store)
    alice, bob, carol, dave = (world.actor(n) for n in ("alice", "bob", "carol", "dave"))
    world.fund_cash(alice, 50_000)
    world.fund_token(alice, "WETH", 5 * WAD)
    world.fund_cash(bob, 500_000)
    world.fund_cash(carol, 10_000)
    a, b, c = (world.account(x) for x in (alice, bob, carol))
    epoch(p)
    read = count_calls(p.chain)
    last = epoch(p)
    leaves = leaves_from_store(store, last)
    # withdrawals (collateral and cash) with their proofs
    proof = world.margin_proof(leaves, a).to_abi()
    world.tx(world.vault.functions.withdraw(a, world.tokens["WETH"].address, WAD, proof), alice)
    world.tx(world.vault.functions.withdrawCash(a, 1_000 * 10**6, proof), alice)
    # trades: carol long 12 ETH perps; alice long a perp, a call and a BTC perp
    q, sig = world.quote(bob, carol, [("ETH-PERP", -12, 3_500)], nonce=1)
    world.execute(q, sig, carol, leaves)
    legs = [("ETH-PERP", -1, 3_500), ("ETH-C-3500", -1, 150), ("BTC-PERP", -0.1, 65_000)]
    q, sig = world.quote(bob, alice, legs, nonce=2)
    world.execute(q, sig, alice, leaves)
    epoch(p)
    last = epoch(p)  # the funding index moved: the next trade applies funding first
    leaves = leaves_from_store(store, last)
    # alice closes her FIRST position: the vault swaps the last one into its slot
    q, sig = world.quote(bob, alice, [("ETH-PERP", 1, 3_500)], nonce=3)
    world.execute(q, sig, alice, leaves)
    world.tx(world.vault.functions.applyFunding(b), bob)
    last = epoch(p)
    assert read == []  # no account was read from the node after the first epoch
    # ETH falls 30 %: dave takes carol's subaccount over
    p.feed.push_shock({"ETH": -0.30, "BTC": -0.10}, vol_spike=0.3)  # type: ignore[attr-defined]
    last = epoch(p)
    cp = MarginProof.from_json(leaves_from_store(store, last)[f"account:{c}"])
    check = world.vault.functions.checkLiquidation(c, cp.to_abi()).call()
    assert check[0], check
    deposit6 = check[6]
    world.tx(world.usdc.functions.mint(dave.address, deposit6), dave)
    world.tx(world.usdc.functions.approve(world.vault.address, deposit6), dave)
    world.tx(world.vault.functions.liquidate(c, cp.to_abi(), deposit6, 10**30), dave)
    world.tx(world.vault.functions.transferSubaccount(c, alice.address), dave)
    epoch(p)
    epoch(p)  # the snapshot block is one below the head: the transfer is in this one
    assert p.chain.owner_of(c) == alice.address
    assert read == []


def test_swap_and_pop_order_is_the_vaults(world: World, store: Store) -> None:
    p = make_pipeline(world, store)
    alice, bob = world.actor("alice"), world.actor("bob")
    world.fund_cash(alice, 100_000)
    world.fund_cash(bob, 500_000)
    a = world.account(alice)
    last = epoch(p)
    epoch(p)
    last = epoch(p)
    leaves = leaves_from_store(store, last)
    legs = [("ETH-PERP", -1, 3_500), ("BTC-PERP", -0.1, 65_000), ("ETH-C-3500", -1, 150)]
    q, sig = world.quote(bob, alice, legs, nonce=1)
    world.execute(q, sig, alice, leaves)
    epoch(p)
    last = epoch(p)
    q, sig = world.quote(bob, alice, [("ETH-PERP", 1, 3_500)], nonce=2)
    world.execute(q, sig, alice, leaves_from_store(store, last))
    epoch(p)
    epoch(p)  # the snapshot block is one below the head: the fill is in this one
    (state,) = p.chain.states_at(p.chain.indexed_block or 0, [a])
    ids = world.instruments
    assert [pos.instrument for pos in state.positions] == [ids["ETH-C-3500"], ids["BTC-PERP"]]


def test_reorg_restores_the_state_of_the_safe_block(world: World, store: Store) -> None:
    alice, carol = world.actor("alice"), world.actor("carol")
    world.fund_cash(alice, 100)
    world.fund_token(alice, "WETH", WAD)
    a = world.account(alice)
    chain = ChainAdapter(world.w3, world.vault.address, store=store)
    chain.index()
    assert_state_is_the_chains(chain)
    snap = rpc(world, "evm_snapshot")
    world.fund_cash(alice, 5_000)  # on the branch that will be dropped
    orphan = world.new_account(carol)
    world.fund_cash(orphan, 7)
    chain.index()
    (before,) = chain.states_at(chain.indexed_block or 0, [a])
    assert before.cash == 5_100 * WAD
    dropped = chain.indexed_block or 0
    assert rpc(world, "evm_revert", snap)
    world.fund_token(alice, "WETH", 2 * WAD)  # another history
    while world.w3.eth.block_number < dropped + 1:
        rpc(world, "evm_mine")
    chain.index()
    assert_state_is_the_chains(chain)
    (after,) = chain.states_at(chain.indexed_block or 0, [a])
    assert after.cash == 100 * WAD and after.collateral[0] == 3 * WAD


def test_full_reread_counts_and_repairs_a_tampered_state(world: World, store: Store) -> None:
    metrics = KeeperMetrics()
    p = make_pipeline(world, store, metrics=metrics)
    p.state_check_epochs = 2
    alice, bob = world.actor("alice"), world.actor("bob")
    world.fund_cash(alice, 100)
    world.fund_cash(bob, 200)
    a = world.account(alice)
    epoch(p)  # 1 since the last check
    epoch(p)  # 2: checked, nothing differs
    assert metrics.state_checks._value.get() == 1
    assert metrics.state_mismatches._value.get() == 0
    p.chain._index.books[a].cash += 1  # type: ignore[index]
    assert p.run_epoch().status == "mined"  # 1: not checked; built from the tampered cash
    r = p.run_epoch()  # 2: checked before the snapshot, the chain's state adopted
    assert r.status == "mined" and "check" in r.timings
    assert metrics.state_checks._value.get() == 2
    assert metrics.state_mismatches._value.get() == 1
    assert_state_is_the_chains(p.chain)
    assert b"pm_keeper_state_mismatches_total 1.0" in metrics.render()


# --------------------------------------------------------------------------- property

NAMES = ("alice", "bob", "carol")
AMOUNTS = st.integers(1, 5_000)
TRADABLE = ("ETH-PERP", "BTC-PERP", "ETH-C-3500")
ACTIONS = st.lists(
    st.one_of(
        st.tuples(st.just("cash"), st.sampled_from(NAMES), AMOUNTS),
        st.tuples(st.just("weth"), st.sampled_from(NAMES), st.integers(1, 3)),
        st.tuples(st.just("withdraw_weth"), st.sampled_from(NAMES), st.integers(1, 2)),
        st.tuples(st.just("withdraw_cash"), st.sampled_from(NAMES), AMOUNTS),
        st.tuples(
            st.just("trade"),
            st.sampled_from(list(itertools.permutations(NAMES, 2))),
            st.sampled_from(TRADABLE),
            st.sampled_from([-2, -1, 1, 2]),
        ),
        st.tuples(st.just("funding"), st.sampled_from(NAMES)),
        st.tuples(st.just("epoch")),
    ),
    min_size=1,
    max_size=10,
)


PRICES = {"ETH-PERP": 3_500, "BTC-PERP": 65_000, "ETH-C-3500": 150}


def act(world: World, kind: str, args: list[Any], leaves: dict[str, Any], nonce: int) -> None:
    """One action of :data:`ACTIONS` (proofs from ``leaves``); may revert."""
    f = world.vault.functions
    if kind == "trade":
        (maker, taker), name, size = args
        q, sig = world.quote(
            world.actor(maker), world.actor(taker), [(name, size, PRICES[name])], nonce=nonce
        )
        world.execute(q, sig, world.actor(taker), leaves)
        return
    who = world.actor(args[0])
    acc = world.account(who)
    proof = world.margin_proof(leaves, acc).to_abi()
    if kind == "cash":
        world.fund_cash(who, args[1])
    elif kind == "weth":
        world.fund_token(who, "WETH", args[1] * WAD)
    elif kind == "withdraw_weth":
        world.tx(f.withdraw(acc, world.tokens["WETH"].address, args[1] * WAD, proof), who)
    elif kind == "withdraw_cash":
        world.tx(f.withdrawCash(acc, args[1] * 10**6, proof), who)
    else:
        world.tx(f.applyFunding(acc), who)


@pytest.fixture
def funded(world: World) -> tuple[World, list[str]]:
    """The world with every actor holding cash and WETH, and an Anvil snapshot of it that
    each example reverts to (hypothesis runs the examples on one fixture)."""
    for n in NAMES:
        world.fund_cash(world.actor(n), 200_000)
        world.fund_token(world.actor(n), "WETH", 2 * WAD)
    return world, [rpc(world, "evm_snapshot")]


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(actions=ACTIONS)
def test_state_from_events_holds_for_random_action_sequences(
    funded: tuple[World, list[str]], actions: list[tuple[Any, ...]]
) -> None:
    world, baseline = funded
    nonce = itertools.count(1)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "keeper.sqlite")
        try:
            p = make_pipeline(world, store)
            last = epoch(p)
            last = epoch(p)
            for kind, *args in actions:
                if kind == "epoch":
                    last = epoch(p)
                    continue
                try:
                    act(world, kind, args, leaves_from_store(store, last), next(nonce))
                except Exception:  # noqa: BLE001 - a refused action changes nothing
                    pass
            epoch(p)
        finally:
            store.close()
            assert rpc(world, "evm_revert", baseline[0])
            baseline[0] = rpc(world, "evm_snapshot")
