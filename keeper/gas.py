"""Gas fees: EIP-1559 fees and the strategies that choose them (pymaker's small classes).

A :class:`GasStrategy` gives the fees of a new transaction and of a same-nonce
replacement; :class:`~keeper.txmanager.TxManager` caps what it returns at the operator's
``max_fee_wei`` before signing. All fees are wei per gas (ints).
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from typing import NewType

from web3 import Web3

from keeper.errors import TxError

__all__ = [
    "MIN_REPLACEMENT_BUMP_PCT",
    "FeeHistoryStrategy",
    "Fees",
    "FixedFeeStrategy",
    "GasStrategy",
    "Wei",
]

Wei = NewType("Wei", int)

#: geth and Anvil refuse a same-nonce replacement unless both fees rise by >= 10 %.
MIN_REPLACEMENT_BUMP_PCT = 10.0


@dataclass(frozen=True)
class Fees:
    """EIP-1559 fees in wei per gas."""

    max_fee_per_gas: int
    max_priority_fee_per_gas: int

    def __post_init__(self) -> None:
        if self.max_priority_fee_per_gas < 0 or self.max_fee_per_gas <= 0:
            raise TxError(f"invalid fees {self}")
        if self.max_priority_fee_per_gas > self.max_fee_per_gas:
            raise TxError(f"priority fee above max fee: {self}")

    def bumped(self, pct: float) -> Fees:
        """Both fees raised by ``pct`` percent, rounded UP and by at least 1 wei, so the
        replacement always clears the node's >= 10 % rule."""

        def up(x: int) -> int:
            return max(x + 1, math.ceil(x * (100.0 + pct) / 100.0))

        return Fees(up(self.max_fee_per_gas), up(self.max_priority_fee_per_gas))

    def at_least(self, other: Fees) -> Fees:
        """Component-wise maximum."""
        return Fees(
            max(self.max_fee_per_gas, other.max_fee_per_gas),
            max(self.max_priority_fee_per_gas, other.max_priority_fee_per_gas),
        )


class GasStrategy(abc.ABC):
    """Chooses the fees of a new transaction and of a replacement."""

    @abc.abstractmethod
    def fees(self, w3: Web3) -> Fees:
        """Fees for a new transaction now."""

    def replacement(self, previous: Fees, w3: Web3, bump_pct: float) -> Fees:
        """Fees for replacing a transaction sent with ``previous``: at least ``bump_pct``
        above it on both fees, and at least what a new transaction would get now."""
        return previous.bumped(bump_pct).at_least(self.fees(w3))


@dataclass(frozen=True)
class FixedFeeStrategy(GasStrategy):
    """Always the same fees (tests, private chains); replacements still bump."""

    fixed: Fees

    def fees(self, w3: Web3) -> Fees:
        return self.fixed

    def replacement(self, previous: Fees, w3: Web3, bump_pct: float) -> Fees:
        return previous.bumped(bump_pct)


@dataclass(frozen=True)
class FeeHistoryStrategy(GasStrategy):
    """Fees from ``eth_feeHistory``: tip = max(``priority_fee_wei``, the ``percentile``
    reward of the last ``blocks`` blocks); max fee = ``base_fee_multiplier`` x the next
    block's base fee + tip (room for the base fee to rise for a few full blocks)."""

    priority_fee_wei: int
    base_fee_multiplier: float = 2.0
    blocks: int = 5
    percentile: float = 50.0

    def fees(self, w3: Web3) -> Fees:
        hist = w3.eth.fee_history(self.blocks, "latest", [self.percentile])
        next_base = int(hist["baseFeePerGas"][-1])
        rewards = sorted(int(r[0]) for r in hist.get("reward", []) if r)
        median_reward = rewards[len(rewards) // 2] if rewards else 0
        tip = max(self.priority_fee_wei, median_reward)
        return Fees(math.ceil(next_base * self.base_fee_multiplier) + tip, tip)
