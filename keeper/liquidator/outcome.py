"""What one tick of the liquidator found and did: candidates, outcomes, the tick's report.

WAD USD ints (docs/protocol.md §1); USD floats only in :meth:`Outcome.log_fields`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from keeper.liquidator.capital import CapitalNeed
from keeper.liquidator.config import wad_to_usd

if TYPE_CHECKING:  # annotations only: the records stay importable without web3
    from keeper.attestation import MarginProof
    from keeper.chain import AccountState

__all__ = ["Candidate", "Outcome", "OutcomeStatus", "TickReport"]

OutcomeStatus = Literal["liquidated", "skipped", "reverted", "pending", "failed", "simulated"]


@dataclass(frozen=True)
class Candidate:
    """A subaccount whose MM surplus upper bound (WAD, as the contract computes it) is < 0."""

    account: int
    proof: MarginProof
    state: AccountState
    mm_surplus_hi: int


@dataclass(frozen=True)
class Outcome:
    """One liquidation attempt of subaccount ``account`` (an id; a transaction hash for a
    resumed request that cannot be decoded). WAD USD ints.

    ``equity_taken``: the subaccount's equity lower bound ``eqLo`` (what the contract pays
    from); ``net_cash_paid``: ``pay + fee - covered`` (from the view when skipped or
    simulated, from the ``Liquidated`` event when mined); ``profit = equity_taken -
    net_cash_paid``; ``capital``: the view's capital need (IM deficit + pay + fee -
    covered); ``deposit6``: what the bot deposits (or deposited), settlement token units;
    ``headroom``: the subaccount's IM surplus lower bound after it at ``max_cash_out``.
    ``reason`` starts with a short tag (``view_healthy``, ``own_subaccount``,
    ``insufficient_capital``, ``unprofitable``, ``simulation_reverted``, ``reverted``...).
    """

    account: int | str
    status: OutcomeStatus
    mm_surplus_hi: int
    reason: str | None = None
    net_cash_paid: int | None = None
    max_cash_out: int | None = None
    equity_taken: int | None = None
    profit: int | None = None
    headroom: int | None = None
    capital: CapitalNeed | None = None
    deposit6: int | None = None
    tx_hash: str | None = None
    block: int | None = None
    gas_used: int = 0

    def log_fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {"account": self.account, "status": self.status}
        if self.reason:
            out["reason"] = self.reason
        for name in (
            "mm_surplus_hi",
            "net_cash_paid",
            "max_cash_out",
            "equity_taken",
            "profit",
            "headroom",
        ):
            v = getattr(self, name)
            if v is not None:
                out[f"{name}_usd"] = round(wad_to_usd(v), 6)
        if self.capital is not None:
            out["capital_need"] = self.capital.to_json()
        if self.deposit6 is not None:
            out["deposit6"] = self.deposit6
        if self.tx_hash:
            out.update(tx=self.tx_hash, block=self.block, gas=self.gas_used)
        return out


@dataclass(frozen=True)
class TickReport:
    """What one tick saw and did. ``skipped``: why the whole tick did nothing (safe mode,
    no epoch, leaves unavailable), else None. ``epoch``, ``block``, ``candidates``: of the
    last read; ``rereads``: reads after the root moved under an attempt."""

    epoch: int
    block: int
    accounts_with_positions: int
    candidates: tuple[Candidate, ...] = ()
    outcomes: tuple[Outcome, ...] = ()
    skipped: str | None = None
    seconds: float = 0.0
    rereads: int = 0

    @property
    def liquidated(self) -> tuple[int | str, ...]:
        return tuple(o.account for o in self.outcomes if o.status == "liquidated")
