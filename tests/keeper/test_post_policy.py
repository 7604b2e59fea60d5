"""When a built epoch is posted (keeper/post_policy.py): each trigger fires on its own and
nothing below the tolerances does; on Anvil the pipeline skips an unchanged epoch (counted)
and posts again on a deposit; the ``[post]`` config section."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keeper.attestation import AccountLeaf, AccountLeafRows
from keeper.chain import AccountState, Position
from keeper.config import load_config
from keeper.epoch_build import EpochBuild, compute_epoch
from keeper.errors import ConfigError
from keeper.metrics import KeeperMetrics
from keeper.post_policy import PostPolicy, _accounts_moved, post_reason
from keeper.store import Store
from risk_engine.units import WAD
from scripts.pipeline_world import World, make_pipeline
from tests.keeper.test_epoch_build import ALICE, BOB, PARAMS, T0, account, market, snapshot

ON_CHANGE = PostPolicy(mode="on_change", funding_interval_seconds=900)
MAX_AGE = 3600


def flat(account_id: int, cash: int = 10_000 * WAD) -> AccountState:
    """No position and no collateral: its numbers do not move with prices. The chain
    counters stay those of a 10,000 USD deposit whatever ``cash`` (equity moves alone)."""
    return AccountState(account_id, cash, 0, 10_000 * WAD, 10_000 * WAD, (), (0, 0))


def build(*accounts: AccountState, ts: int = T0, put_expiry: int = T0 + 30 * 86_400) -> EpochBuild:
    return compute_epoch(
        snapshot(accounts, prev_ts=ts - 60, put_expiry=put_expiry),
        market(ts),
        PARAMS,
        epoch=2,
    )


def reason(
    new: EpochBuild, last: EpochBuild | None, *, elapsed: int = 60, policy: PostPolicy = ON_CHANGE
) -> str | None:
    return post_reason(
        policy,
        new,
        last,
        onchain_timestamp=new.header.timestamp - elapsed,
        max_age=MAX_AGE,
    )


def test_always_posts_every_epoch_and_on_change_posts_the_first() -> None:
    b = build(flat(ALICE))
    assert post_reason(PostPolicy(), b, b, onchain_timestamp=T0, max_age=MAX_AGE) == "always"
    assert reason(b, None) == "first"


def test_nothing_moved_is_skipped() -> None:
    b = build(flat(ALICE), account(BOB, Position(1, WAD, 0)))
    assert reason(b, b) is None


def test_heartbeat_at_the_fraction_of_max_age() -> None:
    b = build(flat(ALICE))
    hourly_funding = dataclasses.replace(ON_CHANGE, funding_interval_seconds=3600)
    assert reason(b, b, elapsed=MAX_AGE // 2 - 1, policy=hourly_funding) is None
    assert reason(b, b, elapsed=MAX_AGE // 2, policy=hourly_funding) == "heartbeat"


def test_funding_is_due_after_its_interval() -> None:
    b = build(flat(ALICE))
    assert b.header.funding  # the ETH perp's index
    assert reason(b, b, elapsed=899) is None
    assert reason(b, b, elapsed=900) == "funding"


def test_an_expired_option_to_settle_is_posted() -> None:
    last = build(account(ALICE, Position(3, WAD, 0)))
    b = build(account(ALICE, Position(3, WAD, 0)), put_expiry=T0 - 10)
    assert b.header.settlements
    assert reason(b, last) == "settlement"


def test_account_moves_above_the_tolerance_or_changes_on_chain() -> None:
    last = build(flat(ALICE), flat(BOB))
    # equity +0.5 USD: inside tolerance_usd (1 USD) + 0.1 %
    assert reason(build(flat(ALICE, 10_000 * WAD + WAD // 2), flat(BOB)), last) is None
    # +20 USD on 10,000: above 1 USD + 10 USD
    assert reason(build(flat(ALICE, 10_020 * WAD), flat(BOB)), last) == "account"
    # cumLo moved (a deposit or a fill): posted whatever the amount
    changed = dataclasses.replace(flat(BOB), cum_lo=10_000 * WAD + 1)
    assert reason(build(flat(ALICE), changed), last) == "account"
    # a new subaccount needs its leaf
    assert reason(build(flat(ALICE), flat(BOB), flat(3)), last) == "account"


def test_instrument_moves_above_the_tolerance() -> None:
    last = build(flat(ALICE))
    b = build(flat(ALICE), ts=T0 + 1)  # one second later: marks moved a little
    moved = max(
        abs(n.mark - o.mark) / o.mark
        for n, o in zip(b.instrument_leaves, last.instrument_leaves, strict=True)
    )
    tight = dataclasses.replace(ON_CHANGE, tolerance_rel=moved / 2)
    loose = dataclasses.replace(ON_CHANGE, tolerance_rel=1.0)
    at = b.header.timestamp - 60
    assert post_reason(tight, b, last, onchain_timestamp=at, max_age=MAX_AGE) == "instrument"
    assert post_reason(loose, b, last, onchain_timestamp=at, max_age=MAX_AGE) is None


def test_token_price_moves_above_the_tolerance() -> None:
    b = build(flat(ALICE))
    tokens = list(b.header.tokens)
    tokens[0] = dataclasses.replace(tokens[0], price=tokens[0].price * 1002 // 1000)
    last = dataclasses.replace(b, header=dataclasses.replace(b.header, tokens=tuple(tokens)))
    assert reason(b, last) == "token"
    tokens[0] = dataclasses.replace(tokens[0], price=b.header.tokens[0].price * 10005 // 10000)
    last = dataclasses.replace(b, header=dataclasses.replace(b.header, tokens=tuple(tokens)))
    assert reason(b, last) is None


@pytest.mark.anvil
def test_pipeline_skips_an_unchanged_epoch_and_posts_a_deposit(world: World, store: Store) -> None:
    metrics = KeeperMetrics()
    p = make_pipeline(world, store, metrics=metrics)
    p.post_policy = dataclasses.replace(ON_CHANGE, tolerance_rel=0.05)  # prices may wander
    alice = world.actor("alice")
    world.fund_cash(alice, 1_000)
    world.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    assert p.run_epoch().status == "mined"  # first
    skipped = p.run_epoch()
    assert skipped.status == "skipped" and skipped.epoch is None
    assert metrics.epochs_skipped._value.get() == 1
    assert store.latest_epoch() is not None and store.latest_epoch().number == 1  # type: ignore[union-attr]
    world.fund_cash(alice, 5)  # cumLo moves
    world.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    assert p.run_epoch().status == "mined"
    rendered = metrics.render().decode()
    assert 'pm_keeper_posts_total{reason="first"} 1.0' in rendered
    assert 'pm_keeper_posts_total{reason="account"} 1.0' in rendered


def test_post_section_defaults_and_bounds(tmp_path: Path) -> None:
    env = {"PM_RPC_URL": "http://127.0.0.1:8545", "PM_VAULT_ADDRESS": "0x" + "11" * 20}
    assert load_config(None, env=env, require_keys=False).post == PostPolicy()
    toml = tmp_path / "keeper.toml"
    toml.write_text(
        '[post]\nmode = "on_change"\ntolerance_rel = 0.002\nheartbeat_fraction = 0.25\n'
    )
    post = load_config(toml, env=env, require_keys=False).post
    assert (post.mode, post.tolerance_rel, post.heartbeat_fraction) == ("on_change", 0.002, 0.25)
    for bad, field in (
        ('mode = "sometimes"', "post.mode"),
        ("heartbeat_fraction = 1.0", "post.heartbeat_fraction"),
        ("funding_interval_seconds = 7200", "post.funding_interval_seconds"),
        ("tolerance = 1", "post"),
    ):
        toml.write_text(f"[post]\n{bad}\n")
        with pytest.raises(ConfigError) as err:
            load_config(toml, env=env, require_keys=False)
        assert err.value.field.startswith(field), (bad, err.value.field)


def _rows(leaves: list[AccountLeaf]) -> AccountLeafRows:
    blob = b"".join(leaf.encode() for leaf in leaves)
    return AccountLeafRows(np.frombuffer(blob, dtype=np.uint8).reshape(len(leaves), 288))


_VALUE = st.one_of(
    st.integers(-(10**30), 10**30),
    st.sampled_from([0, 1, -1, WAD, -WAD, 2**255 - 1, -(2**255)]),
)


@settings(max_examples=300)
@given(
    old=st.lists(
        st.tuples(st.integers(0, 5), st.sampled_from([0, 7]), _VALUE, _VALUE, _VALUE),
        min_size=0,
        max_size=6,
    ),
    moves=st.lists(st.tuples(st.integers(0, 2), _VALUE, st.booleans()), max_size=4),
    extra=st.sampled_from([None, 6, 2**64 + 1]),
    rel=st.sampled_from([0.0, 0.001, 0.5]),
    shuffle=st.randoms(use_true_random=False),
)
def test_account_rows_move_exactly_when_the_leaves_do(
    old: list[tuple[int, int, int, int, int]],
    moves: list[tuple[int, int, bool]],
    extra: int | None,
    rel: float,
    shuffle: random.Random,
) -> None:
    """The column-wise check on the build's rows (``AccountLeafRows``) gives the
    leaf-by-leaf loop's answer: moves just inside and past the tolerance, int256 extremes,
    a new subaccount, a counter changed, a repeated id and ids past 64 bits."""

    def leaf(a: int, nonce: int, e: int, i: int, m: int) -> AccountLeaf:
        return AccountLeaf(a, nonce, 0, 0, e, abs(i), abs(m))

    before = [leaf(*row) for row in old]
    after = list(before)
    for k, (field, value, near) in enumerate(moves):
        if not after:
            break
        j = k % len(after)
        prev = after[j]
        base = abs([prev.equity, prev.im, prev.mm][field])
        tolerance = WAD + rel * base  # tolerance_usd = 1: the move tried lands on its edge
        step = int(tolerance) + (value % 3 - 1) if near else value
        values = [prev.equity, prev.im, prev.mm]
        values[field] = max(min(values[field] + step, 2**255 - 1), -(2**255) if field == 0 else 0)
        after[j] = dataclasses.replace(prev, equity=values[0], im=values[1], mm=values[2])
    if extra is not None:
        after.append(leaf(extra, 0, 0, 0, 0))
    shuffle.shuffle(after)
    policy = PostPolicy(mode="on_change", tolerance_rel=rel, tolerance_usd=1.0)
    expected = _accounts_moved(tuple(after), tuple(before), policy)
    assert _accounts_moved(_rows(after), _rows(before), policy) is expected
