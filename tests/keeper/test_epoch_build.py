"""compute_epoch (keeper/epoch_build.py, pure): chain state + market -> leaves, funding."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from keeper.bounds import mul_wad_down
from keeper.chain import (
    AccountState,
    ChainSnapshot,
    EpochOnChain,
    InstrumentInfo,
    Position,
    TokenInfo,
)
from keeper.dispute_encoding import RiskVectorWad, hash_vector
from keeper.engine_input import engine_input
from keeper.epoch_build import (
    FundingRule,
    account_cash,
    chain_inputs,
    compute_epoch,
    funding_indices,
    inputs_hash,
)
from keeper.errors import EpochRefusedError
from keeper.feeds import MarketState, SimConfig, SimulatedFeed
from risk_engine import InstrumentKind, compute_margin, load_params, to_wad_down
from risk_engine.units import WAD

T0 = 1_800_000_000
ALICE = 1  # subaccount ids
BOB = 2
WETH = "0x" + "01" * 20
WBTC = "0x" + "02" * 20
PARAMS = load_params()


def market(ts: int = T0, expiries: tuple[int, ...] = (T0 + 30 * 86_400,)) -> MarketState:
    cfg = SimConfig(initial_prices=(65_000.0, 3_500.0, 150.0, 2.0))
    feed = SimulatedFeed(cfg, np.random.default_rng(3), start_time=ts - 60, expiries=expiries)
    return feed.tick(ts)


def snapshot(
    accounts: tuple[AccountState, ...],
    *,
    cum_funding: int = 0,
    settlements: dict[int, int] | None = None,
    prev_ts: int = T0 - 60,
    put_expiry: int = T0 + 30 * 86_400,
) -> ChainSnapshot:
    return ChainSnapshot(
        block=100,
        block_hash="0x" + "00" * 32,
        block_timestamp=T0,
        chain_id=31337,
        vault="0x" + "99" * 20,
        accounts=accounts,
        instruments=(
            InstrumentInfo(1, 0, "ETH", 0, 0),
            InstrumentInfo(2, 1, "ETH", 3_500 * WAD, T0 + 30 * 86_400),
            InstrumentInfo(3, 2, "ETH", 4_000 * WAD, put_expiry),
        ),
        tokens=(TokenInfo(WETH, "WETH", 18, 0), TokenInfo(WBTC, "WBTC", 8, 1)),
        cum_funding={1: cum_funding},
        settlements=settlements or {},
        current_epoch=EpochOnChain(1, 90, prev_ts, b"\x01" * 32),
        config_version=1,
        quorum=2,
        signers=(),
        max_age=3600,
        future_tolerance=60,
    )


def account(account_id: int, *positions: Position, cash: int = 10_000 * WAD) -> AccountState:
    return AccountState(account_id, cash, 0, cash, cash, tuple(positions), (WAD, 10**7))


def test_every_account_gets_a_leaf_and_every_live_instrument_one() -> None:
    flat = AccountState(BOB, 0, 0, 0, 0, (), (0, 0))
    b = compute_epoch(
        snapshot((account(ALICE, Position(1, 2 * WAD, 0)), flat)), market(), PARAMS, epoch=2
    )
    assert [leaf.account for leaf in b.account_leaves] == [ALICE, BOB]
    assert [(r.kind, r.key) for r in b.leaf_records()][:2] == [("account", "1"), ("account", "2")]
    empty = b.account_leaves[1]
    assert (empty.equity, empty.im, empty.mm) == (0, 0, 0)
    assert [leaf.instrument for leaf in b.instrument_leaves] == [1, 2, 3]
    assert [t.token.lower() for t in b.header.tokens] == [WETH, WBTC]
    assert b.header.root == b.tree.root and b.header.epoch == 2 and b.header.snapshot_block == 100
    a = b.account_leaves[0]
    assert a.equity > 0 and a.im > a.mm > 0


def test_pending_funding_is_in_equity_at_the_index_the_epoch_posts() -> None:
    m = market()
    eth = m.underlying("ETH")
    rule = FundingRule()
    f_new = rule.next_index(0, eth.perp_mark, eth.spot, 60)
    assert f_new != 0
    size = 5 * WAD
    pending = compute_epoch(snapshot((account(ALICE, Position(1, size, 0)),)), m, PARAMS, epoch=2)
    settled = compute_epoch(
        snapshot((account(ALICE, Position(1, size, f_new)),)), m, PARAMS, epoch=2
    )
    assert pending.header.funding[0].cum_funding == f_new
    diff = pending.account_leaves[0].equity - settled.account_leaves[0].equity
    expected = -(size * f_new) // WAD  # a long pays F_new - F_last per unit
    assert abs(diff - expected) < 10**10  # float pad of the engine: < 1e-8 USD


def test_funding_rule_caps_premium_and_elapsed_time() -> None:
    r = FundingRule(period_seconds=28_800, cap=0.005, max_elapsed_seconds=3600)
    assert r.next_index(7, 3_600.0, 3_500.0, 0) == 7  # first epoch or no time: unchanged
    capped = r.next_index(0, 4_000.0, 3_500.0, 28_800)  # premium 500 > cap 17.5
    assert capped == to_wad_down(0.005 * 3_500.0 * 3600 / 28_800)
    assert r.next_index(0, 3_000.0, 3_500.0, 3600) == -capped
    assert r.next_index(0, 3_501.0, 3_500.0, 360) == to_wad_down(1.0 * 360 / 28_800)


def test_expired_option_without_price_is_settled_in_this_epoch_at_spot() -> None:
    m = market()
    expired = T0 - 10
    size = -3 * WAD  # alice is short 3 puts struck at 4,000
    b = compute_epoch(
        snapshot((account(ALICE, Position(3, size, 0)),), put_expiry=expired),
        m,
        PARAMS,
        epoch=2,
    )
    spot = to_wad_down(m.underlying("ETH").spot)
    assert [(s.instrument, s.price) for s in b.header.settlements] == [(3, spot)]
    assert 3 not in [leaf.instrument for leaf in b.instrument_leaves]
    # equity counts the payoff as settle() will pay it; no risk is left for the put
    payoff = max(4_000 * WAD - spot, 0)
    no_put = compute_epoch(
        snapshot((account(ALICE),), put_expiry=expired), m, PARAMS, epoch=2
    ).account_leaves[0]
    leaf = b.account_leaves[0]
    assert abs(leaf.equity - no_put.equity + mul_wad_down(3 * WAD, payoff)) < 10**10
    assert abs(leaf.im - no_put.im) < 10**10  # only the float pad differs


def test_expired_option_already_settled_uses_the_chain_price() -> None:
    b = compute_epoch(
        snapshot(
            (account(ALICE, Position(3, WAD, 0)),), put_expiry=T0 - 10, settlements={3: 3_000 * WAD}
        ),
        market(),
        PARAMS,
        epoch=2,
    )
    assert b.header.settlements == ()
    ref = compute_epoch(
        snapshot((account(ALICE),), put_expiry=T0 - 10, settlements={3: 3_000 * WAD}),
        market(),
        PARAMS,
        epoch=2,
    )
    assert abs(b.account_leaves[0].equity - ref.account_leaves[0].equity - 1_000 * WAD) < 10**10


def test_unknown_token_or_underlying_is_refused() -> None:
    snap = snapshot((account(ALICE),))
    odd = dataclasses.replace(snap, tokens=(TokenInfo(WETH, "PEPE", 18, 0),))
    with pytest.raises(EpochRefusedError, match="PEPE"):
        compute_epoch(odd, market(), PARAMS, epoch=2)
    doge = dataclasses.replace(
        snap, instruments=(*snap.instruments, InstrumentInfo(4, 0, "DOGE", 0, 0))
    )
    with pytest.raises(EpochRefusedError, match="DOGE"):
        compute_epoch(doge, market(), PARAMS, epoch=2)


def test_same_inputs_same_root() -> None:
    snap = snapshot((account(ALICE, Position(1, WAD, 0), Position(2, -WAD, 0)),))
    m = market()
    again = MarketState.from_json(m.to_json())
    assert (
        compute_epoch(snap, m, PARAMS, epoch=2).header
        == compute_epoch(snap, again, PARAMS, epoch=2).header
    )


def test_with_the_dispute_window_on_every_row_hash_is_the_per_row_reference() -> None:
    snap = snapshot((account(ALICE, Position(1, WAD, 0), Position(2, -WAD, 0)),))
    b = compute_epoch(dataclasses.replace(snap, dispute_window=3600), market(), PARAMS, epoch=2)
    c, arrays = b.commitments, b.arrays
    assert c is not None and arrays is not None
    n_live = len(b.instrument_leaves)
    assert n_live + len(snap.tokens) == arrays.n_instruments == 5
    rows = [hash_vector(RiskVectorWad.from_arrays(arrays, i)) for i in range(n_live + 2)]
    assert [leaf.vector_hash for leaf in b.instrument_leaves] == rows[:n_live]
    assert c.vector_hashes == tuple(rows[:n_live])
    assert c.token_vector_hashes == tuple(rows[n_live:])
    assert b.header.inputs_hash == inputs_hash(c.params_hash, rows[n_live:], c.market_hash)
    # with the window off nothing is committed
    off = compute_epoch(snap, market(), PARAMS, epoch=2)
    assert off.commitments is None and off.header.inputs_hash == bytes(32)


# --------------------------------------------------------------------------- named steps


def test_chain_inputs_prices_live_instruments_and_settles_expired_ones_at_spot() -> None:
    m = market()
    inputs = chain_inputs(snapshot((), put_expiry=T0 - 10), m, {"WETH": "ETH", "WBTC": "BTC"})
    assert inputs.token_underlyings == ("ETH", "BTC")
    assert [i.id for i in inputs.live] == [1, 2]
    spot = to_wad_down(m.underlying("ETH").spot)
    assert dict(inputs.settle_now) == {3: spot} == dict(inputs.settle_price)


def test_chain_inputs_refuses_when_nothing_is_live() -> None:
    snap = snapshot(())
    expired = dataclasses.replace(snap, instruments=(InstrumentInfo(2, 1, "ETH", WAD, T0 - 1),))
    with pytest.raises(EpochRefusedError, match="no live instrument"):
        chain_inputs(expired, market(), {"WETH": "ETH", "WBTC": "BTC"})


def test_funding_indices_start_at_zero_elapsed_on_the_first_epoch() -> None:
    m = market()
    first = dataclasses.replace(
        snapshot((), cum_funding=11), current_epoch=EpochOnChain(0, 0, 0, b"\0" * 32)
    )
    assert funding_indices(first, m, FundingRule()) == {1: 11}
    eth = m.underlying("ETH")
    later = funding_indices(snapshot((), cum_funding=11), m, FundingRule())
    assert later == {1: FundingRule().next_index(11, eth.perp_mark, eth.spot, 60)}


def test_account_cash_rounds_funding_against_the_account_and_payoffs_down() -> None:
    snap = snapshot((), put_expiry=T0 - 10)
    perp = snap.instruments[0]  # the put (id 3) expired: not live
    a = account(ALICE, Position(1, 3, 0), Position(3, 7, 0), cash=100)  # sizes in wei
    funding = {1: WAD // 2 + 1}  # the long pays 3 * (0.5 + 1e-18) wei = 1.5.. -> 2 (up)
    settle = {3: 4_000 * WAD - WAD // 3}  # the put pays 7 * 0.333.. wei = 2.33.. -> 2 (down)
    charged, paid = 2, 2
    assert account_cash([a], snap.instruments, [perp], funding, settle) == [100 - charged + paid]


def test_engine_input_columns_are_the_instruments_then_one_spot_per_token() -> None:
    snap = snapshot(())
    a = account(ALICE, Position(2, 2 * WAD, 0), Position(3, -WAD, 0))
    inputs = engine_input(
        market(),
        snap.instruments[:2],
        snap.tokens,
        [a],
        token_underlyings={"WETH": "ETH", "WBTC": "BTC"},
    )
    table = inputs.portfolios.instruments
    assert list(table.kind) == [0, 1, int(InstrumentKind.SPOT), int(InstrumentKind.SPOT)]
    assert table.underlying == ("ETH", "ETH", "ETH", "BTC")
    # the put (not a column) is left out; WBTC has 8 decimals: 10**7 = 0.1 BTC
    assert inputs.portfolios.positions.toarray().tolist() == [[0.0, 2.0, 1.0, 0.1]]
    assert inputs.portfolios.cash.tolist() == [10_000.0]
    assert inputs.market.underlyings[: len(market().symbols)] == tuple(sorted(market().symbols))


def test_engine_input_of_one_account_prices_it_as_the_epoch_build_does() -> None:
    """The mapping ``scripts/margin_view.py`` uses gives the attested numbers when no
    funding or settlement is pending."""
    a = account(ALICE, Position(2, 2 * WAD, 0), Position(3, -WAD, 0))
    snap = snapshot((a,))
    m = market()
    leaf = compute_epoch(snap, m, PARAMS, epoch=2).account_leaves[0]
    inputs = engine_input(
        m, snap.instruments, snap.tokens, [a], token_underlyings={"WETH": "ETH", "WBTC": "BTC"}
    )
    result = compute_margin(inputs.portfolios, inputs.market, PARAMS)
    assert result.to_wad(0) == (leaf.equity, leaf.im, leaf.mm)


def test_a_crash_beyond_every_market_bound_is_capped_and_listed_not_refused() -> None:
    """A -99 % ETH day (log return -4.6, beyond max_abs_return), a 1200 % vol and a +60 %
    perp basis: the epoch is built, every such value capped and named, every token shock
    below 100 % (docs/operations.md, "Refuse or cap")."""
    m = market()
    eth = m.underlying("ETH")
    crashed = dataclasses.replace(
        eth,
        perp_mark=eth.spot * 1.6,
        smiles=tuple(dataclasses.replace(s, atm_vol=12.0) for s in eth.smiles),
    )
    returns = np.array(m.returns)
    returns[-1, m.return_symbols.index("ETH")] = -4.6
    m = dataclasses.replace(
        m,
        underlyings=tuple(crashed if u.symbol == "ETH" else u for u in m.underlyings),
        returns=returns,
    )
    put = Position(3, -10 * WAD, 0)
    build = compute_epoch(snapshot((account(ALICE, put), account(BOB))), m, PARAMS, epoch=2)
    by_name = {c.name: c for c in build.capped}
    b = m.bounds
    assert by_name["return[ETH]"].raw == -4.6 and by_name["return[ETH]"].capped == -b.max_abs_return
    assert by_name["perp_basis[ETH]"].capped == b.max_abs_basis
    assert by_name[f"atm_vol[ETH@{T0 + 30 * 86_400}]"].capped == b.max_vol
    assert by_name["scan_range[ETH]"].capped == PARAMS.scan.max_range
    assert by_name["token_vol_haircut[ETH]"].capped == PARAMS.scan.max_range
    assert all(t.down_shock < WAD for t in build.header.tokens)
    # the same market, stored and read back, gives the same root (what verify does)
    again = compute_epoch(
        snapshot((account(ALICE, put), account(BOB))),
        MarketState.from_json(m.to_json()),
        PARAMS,
        epoch=2,
    )
    assert again.header.root == build.header.root and again.capped == build.capped
