"""TxManager pieces without a node: fee bumps (keeper/gas.py), the fee cap, from_config.
The retry/backoff policy is tested in test_retry.py."""

from __future__ import annotations

import pytest
from eth_account import Account

from keeper.errors import FeeCapExceededError, TxError
from keeper.gas import FeeHistoryStrategy, Fees, FixedFeeStrategy
from keeper.txmanager import TxManager

GWEI = 10**9


class FakeEth:
    def __init__(self, base: int, rewards: list[int]) -> None:
        self.base = base
        self.rewards = rewards

    def fee_history(self, n, block, pct):
        return {"baseFeePerGas": [self.base] * (n + 1), "reward": [[r] for r in self.rewards]}


class FakeW3:
    def __init__(self, base: int, rewards: list[int] | None = None) -> None:
        self.eth = FakeEth(base, rewards or [])


def test_bump_isAtLeastTenPercentOnBothFees_roundedUp():
    f = Fees(100, 3)
    b = f.bumped(10.0)
    assert b == Fees(110, 4)  # 3.3 -> 4, never rounded down
    assert Fees(1, 0).bumped(10.0) == Fees(2, 1)  # at least +1 wei
    with pytest.raises(TxError):
        Fees(5, 6)
    with pytest.raises(TxError):
        Fees(0, 0)


def test_feeHistory_tipIsMaxOfConfigAndMedianReward():
    s = FeeHistoryStrategy(priority_fee_wei=GWEI)
    assert s.fees(FakeW3(10 * GWEI)) == Fees(21 * GWEI, GWEI)  # type: ignore[arg-type]
    assert s.fees(FakeW3(10 * GWEI, [1, 3 * GWEI, 5 * GWEI])) == Fees(23 * GWEI, 3 * GWEI)  # type: ignore[arg-type]
    # A replacement is bumped AND at least the current market.
    prev = Fees(12 * GWEI, GWEI)
    rep = s.replacement(prev, FakeW3(10 * GWEI), 12.5)  # type: ignore[arg-type]
    assert rep == Fees(21 * GWEI, 1_125_000_000)
    assert FixedFeeStrategy(prev).replacement(prev, None, 12.5) == prev.bumped(12.5)  # type: ignore[arg-type]


def manager(w3, cap: int, gas=None) -> TxManager:
    return TxManager(
        w3,
        Account.create(),
        gas=gas or FeeHistoryStrategy(priority_fee_wei=GWEI),
        fee_cap_wei=cap,
        chain_id=1,
    )


def test_cap_clampsHeadroom_butRefusesBelowBaseFee():
    w3 = FakeW3(10 * GWEI)
    assert manager(w3, 100 * GWEI).current_fees() == Fees(21 * GWEI, GWEI)
    assert manager(w3, 15 * GWEI).current_fees() == Fees(15 * GWEI, GWEI)  # clamped
    with pytest.raises(FeeCapExceededError) as exc:
        manager(w3, 10 * GWEI).current_fees()  # base + tip = 11 gwei > cap
    assert exc.value.needed_wei == 11 * GWEI
    fixed = FixedFeeStrategy(Fees(20 * GWEI, GWEI))
    with pytest.raises(FeeCapExceededError):
        manager(w3, 19 * GWEI, fixed).current_fees()


def test_bumpBelowTenPercent_refused():
    with pytest.raises(TxError):
        TxManager(
            FakeW3(1),
            Account.create(),
            gas=FixedFeeStrategy(Fees(2, 1)),
            fee_cap_wei=10,  # type: ignore[arg-type]
            bump_pct=5.0,
        )


def test_fromConfig_appliesFeePolicy():
    from eth_utils import keccak

    from keeper.config import load_config

    key = "0x" + keccak(text="txmanager from_config").hex()
    cfg = load_config(
        None,
        {
            "PM_RPC_URL": "http://x:1",
            "PM_VAULT_ADDRESS": "0x" + "11" * 20,
            "PM_SIGNER_KEYS": key,
            "PM_MAX_FEE_GWEI": "50",
        },
    )
    tm = TxManager.from_config(FakeW3(10 * GWEI), cfg, stuck_after=5.0)  # type: ignore[arg-type]
    assert tm.address == Account.from_key(key).address
    assert tm.fee_cap_wei == 50 * GWEI and tm.bump_pct == cfg.fees.replacement_bump_pct
    assert tm.stuck_after == 5.0 and tm.chain_id == 31337
    assert tm.current_fees() == Fees(21 * GWEI, GWEI)
