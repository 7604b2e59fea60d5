"""The column-wise epoch build (keeper/epoch_columns.py) against the per-account reference
(keeper/epoch_build.py:compute_epoch_reference): the same header, leaves, hashes and tree."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keeper.chain import AccountState, Position
from keeper.engine_input import engine_portfolios
from keeper.epoch_build import (
    DEFAULT_FUNDING_RULE,
    DEFAULT_TOKEN_UNDERLYINGS,
    EpochBuild,
    account_cash,
    chain_inputs,
    compute_epoch,
    compute_epoch_reference,
    funding_indices,
)
from keeper.epoch_columns import (
    ColumnCache,
    account_columns,
    cash_columns,
    check_leaf_columns,
    portfolios_of_columns,
)
from keeper.errors import AttestationError
from risk_engine.units import WAD
from scripts import bench_compute
from tests.keeper.test_epoch_build import PARAMS, T0, market, snapshot

SIZES = st.one_of(
    st.just(0),
    st.integers(-(10**22), 10**22),  # up to 10,000 units, any WAD dust
    st.integers(-(2**63), 2**63),  # the int64 edge
)
ACCOUNTS = st.lists(
    st.tuples(
        st.integers(-(10**24), 10**24),  # cash, WAD USD
        st.integers(0, 2**64 - 1),  # state nonce
        st.lists(
            st.tuples(st.integers(1, 3), SIZES, st.integers(-(10**17), 10**17)),
            max_size=3,
            unique_by=lambda p: p[0],
        ),
        st.tuples(st.integers(0, 10**21), st.integers(0, 10**9)),  # WETH (18), WBTC (8)
    ),
    min_size=1,
    max_size=12,
)


def _accounts(
    drawn: list[tuple[int, int, list[tuple[int, int, int]], tuple[int, int]]],
) -> tuple[AccountState, ...]:
    return tuple(
        AccountState(
            i + 1, cash, nonce, cash - WAD, cash + WAD, tuple(Position(*p) for p in ps), coll
        )
        for i, (cash, nonce, ps, coll) in enumerate(drawn)
    )


def _assert_same(fast: EpochBuild, ref: EpochBuild) -> None:
    assert fast.header == ref.header
    assert fast.account_leaves == ref.account_leaves
    assert fast.instrument_leaves == ref.instrument_leaves
    assert fast.hashes == ref.hashes
    assert fast.tree.leaves == ref.tree.leaves and fast.tree.root == ref.tree.root
    assert fast.capped == ref.capped
    assert [leaf.hash() for leaf in fast.account_leaves] == list(
        fast.hashes[: len(ref.account_leaves)]
    )


@settings(max_examples=25, deadline=None)
@given(
    ACCOUNTS,
    st.integers(-(10**17), 10**17),  # the perp's funding index on chain
    st.sampled_from([T0 + 30 * 86_400, T0 - 10]),  # the put live, or expired
    st.booleans(),  # an expired put already has its price on chain
)
def test_compute_epoch_equals_the_per_account_reference(
    drawn: list[tuple[int, int, list[tuple[int, int, int]], tuple[int, int]]],
    cum_funding: int,
    put_expiry: int,
    settled: bool,
) -> None:
    snap = snapshot(
        _accounts(drawn),
        cum_funding=cum_funding,
        put_expiry=put_expiry,
        settlements={3: 3_000 * WAD} if settled and put_expiry < T0 else None,
    )
    m = market()
    _assert_same(
        compute_epoch(snap, m, PARAMS, epoch=2), compute_epoch_reference(snap, m, PARAMS, epoch=2)
    )
    # the engine's input itself, bit for bit
    inputs = chain_inputs(snap, m, DEFAULT_TOKEN_UNDERLYINGS)
    funding = funding_indices(snap, m, DEFAULT_FUNDING_RULE)
    cash = account_cash(snap.accounts, snap.instruments, inputs.live, funding, inputs.settle_price)
    ref = engine_portfolios(snap.accounts, inputs.live, snap.tokens, inputs.token_underlyings, cash)
    cols = account_columns(snap.accounts, [t.decimals for t in snap.tokens])
    fast_cash = cash_columns(cols, snap.instruments, inputs.live, funding, inputs.settle_price)
    assert list(fast_cash) == cash
    fast = portfolios_of_columns(
        cols, fast_cash, inputs.live, snap.tokens, inputs.token_underlyings
    )
    a, b = fast.positions, ref.positions
    assert np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
    assert a.data.tobytes() == b.data.tobytes()
    assert fast.cash.tobytes() == ref.cash.tobytes()


@settings(max_examples=20, deadline=None)
@given(
    ACCOUNTS,
    st.lists(
        st.tuples(st.sampled_from(["change", "append", "drop", "same"]), st.integers(0, 11)),
        min_size=1,
        max_size=4,
    ),
    st.integers(1, 4),  # block size
)
def test_column_cache_across_epochs_equals_a_fresh_build(
    drawn: list[tuple[int, int, list[tuple[int, int, int]], tuple[int, int]]],
    steps: list[tuple[str, int]],
    block: int,
) -> None:
    """A pipeline's ColumnCache over a run of snapshots (subaccounts changed, added,
    dropped, or none) gives every epoch the build of a fresh read, and reads no block
    again when no state object changed."""
    cache = ColumnCache(block)
    accounts = list(_accounts(drawn))
    m = market()
    for what, k in [("same", 0), *steps]:
        i = k % len(accounts)
        if what == "change":  # a new state object: the vault's nonce moved, cash changed
            a = accounts[i]
            accounts[i] = AccountState(
                a.account,
                a.cash + 7 * WAD,
                (a.state_nonce + 1) % 2**64,
                a.cum_lo,
                a.cum_hi,
                a.positions[1:],
                a.collateral,
            )
        elif what == "append":
            new_id = max(a.account for a in accounts) + 1
            accounts.append(AccountState(new_id, WAD, 0, 0, 2 * WAD, (), (WAD, 0)))
        elif what == "drop" and len(accounts) > 1:
            accounts.pop(i)
        snap = snapshot(tuple(accounts))
        cached = compute_epoch(snap, m, PARAMS, epoch=2, columns_cache=cache)
        _assert_same(cached, compute_epoch_reference(snap, m, PARAMS, epoch=2))
        assert cached.account_rows is not None
        assert cached.account_rows.tobytes() == b"".join(
            leaf.encode() for leaf in cached.account_leaves
        )
    compute_epoch(snapshot(tuple(accounts)), m, PARAMS, epoch=2, columns_cache=cache)
    assert cache.last_misses == 0


def test_compute_epoch_equals_the_reference_at_20000_accounts() -> None:
    snap, m = bench_compute.snapshot(20_000), bench_compute.market()
    fast = compute_epoch(snap, m, PARAMS, epoch=2)
    _assert_same(fast, compute_epoch_reference(snap, m, PARAMS, epoch=2))
    assert set(fast.timings) >= {"compute", "tree", "engine", "leaves"}


@pytest.mark.parametrize(
    ("field", "value"),
    [("state_nonce", 2**64), ("im", -1), ("mm", True), ("equity", 2**255), ("account", -1)],
)
def test_check_leaf_columns_refuses_a_value_out_of_its_solidity_type(
    field: str, value: int
) -> None:
    columns = {k: [1, 2, 3] for k in ("account", "state_nonce", "cum_lo", "cum_hi")}
    columns |= {k: [5 * WAD, 0, 7] for k in ("equity", "im", "mm")}
    check_leaf_columns(columns)  # the good columns pass
    columns[field] = [*columns[field][:2], value]
    with pytest.raises(AttestationError, match=field):
        check_leaf_columns(columns)


@pytest.mark.parametrize("cache", [None, ColumnCache()])
def test_compute_epoch_refuses_a_chain_value_out_of_its_leaf_type_as_the_reference(
    cache: ColumnCache | None,
) -> None:
    """The leaves are never objects on the fast path: their market-free words are checked
    column by column, with or without the pipeline's cache, as each reference leaf is."""
    bad = AccountState(1, WAD, 2**64, 0, 2 * WAD, (), (WAD, 0))  # nonce past uint64
    snap, m = snapshot((bad,)), market()
    with pytest.raises(AttestationError, match="state_nonce"):
        compute_epoch_reference(snap, m, PARAMS, epoch=2)
    with pytest.raises(AttestationError, match="state_nonce"):
        compute_epoch(snap, m, PARAMS, epoch=2, columns_cache=cache)


def test_compute_epoch_equals_the_reference_for_equity_past_the_compiled_words_range() -> None:
    """Equity of 5.5e58 USD is past what keeper/wad_words.py converts (|x| < 5e58) but
    inside int256: the leaves then come from the exact ints, equal to the reference's."""
    rich = AccountState(1, 55 * 10**75, 0, 0, 2 * WAD, (), (WAD, 0))
    snap, m = snapshot((rich, AccountState(2, WAD, 0, 0, 0, (), (0, 0)))), market()
    _assert_same(
        compute_epoch(snap, m, PARAMS, epoch=2), compute_epoch_reference(snap, m, PARAMS, epoch=2)
    )


def test_column_cache_reads_every_block_again_when_a_token_has_other_decimals() -> None:
    """The cached collateral floats are balances in whole tokens: a token list with other
    decimals (the same state objects) must not reuse them."""
    cache = ColumnCache(2)
    accounts = tuple(AccountState(i + 1, WAD, 0, 0, WAD, (), (WAD, 10**7)) for i in range(5))
    snap, m = snapshot(accounts), market()
    compute_epoch(snap, m, PARAMS, epoch=2, columns_cache=cache)
    weth, wbtc = snap.tokens
    other = dataclasses.replace(snap, tokens=(weth, dataclasses.replace(wbtc, decimals=6)))
    cached = compute_epoch(other, m, PARAMS, epoch=2, columns_cache=cache)
    assert cache.last_misses == 3
    _assert_same(cached, compute_epoch_reference(other, m, PARAMS, epoch=2))
