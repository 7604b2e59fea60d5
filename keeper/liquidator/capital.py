"""What a liquidation by transfer costs the liquidator (docs/protocol.md §6), in integer math.

The liquidator receives the whole subaccount and must leave it at or above IM in the same
transaction, by depositing settlement tokens into it. The subaccount's cash moves by
``deposit - netCashPaid`` (``netCashPaid = pay + fee - covered``), and its IM lower bound
with it, so the smallest deposit is::

    minDeposit6 = ceil((netCashPaid - imSurplusLo_now) / CASH_SCALE), 0 if negative

i.e. the capital need = IM deficit + pay + fee - covered (``checkLiquidation``'s
``minDeposit6``). ``imSurplusLo_now`` counts each position's pending funding as 1 wei off
``cumLo`` (``cumLo - instruments.length``: liquidation applies no funding, and the vault
bounds its rounding without a loop).

Pure: no web3. WAD USD ints; settlement token amounts in its own units (``*6`` names).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from keeper.bounds import div_up, im_surplus_lo

__all__ = ["CapitalNeed", "cash_scale", "deposit6_up", "im_surplus_lo_now"]


def cash_scale(settlement_decimals: int) -> int:
    """WAD per settlement token unit (``10**12`` for a 6-decimal USDC)."""
    return int(10 ** (18 - settlement_decimals))


def im_surplus_lo_now(
    equity: int, im: int, leaf_cum_lo: int, cum_lo_now: int, n_instruments: int
) -> int:
    """The subaccount's IM surplus lower bound as ``liquidate`` evaluates it: one wei of
    pending-funding rounding per held instrument off ``cumLo`` (WAD USD, rounded down)."""
    return im_surplus_lo(equity, im, leaf_cum_lo, cum_lo_now - n_instruments)


def deposit6_up(cost: int, im_surplus_lo: int, scale: int) -> int:
    """The smallest deposit (settlement token units, rounded up) that leaves the subaccount
    at IM after paying ``cost`` (WAD USD) out of its cash: ``ceil((cost - imSurplusLo) /
    scale)``, 0 when the subaccount is above IM after paying."""
    return max(0, int(div_up(cost - im_surplus_lo, scale)))


@dataclass(frozen=True)
class CapitalNeed:
    """The capital one liquidation needs (WAD USD, ``min_deposit6`` in settlement token
    units): ``im_deficit`` is ``-imSurplusLo_now`` (>= 0 below IM), ``pay`` goes to the
    previous owner, ``fee`` to the insurance fund, ``covered`` comes from it. ``total`` is
    ``min_deposit6`` in WAD: IM deficit + pay + fee - covered, rounded up to a token unit."""

    im_deficit: int
    pay: int
    fee: int
    covered: int
    min_deposit6: int
    scale: int

    @property
    def net_cash_paid(self) -> int:
        return self.pay + self.fee - self.covered

    @property
    def total(self) -> int:
        return self.min_deposit6 * self.scale

    def to_json(self) -> dict[str, Any]:
        """USD floats (logs and reports only) and the exact ``minDeposit6``."""
        return {
            "im_deficit_usd": round(self.im_deficit / 10**18, 6),
            "pay_usd": round(self.pay / 10**18, 6),
            "fee_usd": round(self.fee / 10**18, 6),
            "covered_usd": round(self.covered / 10**18, 6),
            "total_usd": round(self.total / 10**18, 6),
            "min_deposit6": self.min_deposit6,
        }

    def line(self) -> str:
        """``capital need 1,234.57 USD = IM deficit 1,000.00 + pay 200.00 + fee 34.57 -
        covered 0.00`` (the total rounded up to a token unit)."""
        usd = [x / 10**18 for x in (self.total, self.im_deficit, self.pay, self.fee, self.covered)]
        return (
            f"capital need {usd[0]:,.2f} USD = IM deficit {usd[1]:,.2f} + pay {usd[2]:,.2f} "
            f"+ fee {usd[3]:,.2f} - covered {usd[4]:,.2f}"
        )
