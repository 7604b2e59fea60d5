"""The running bounds and liquidation numbers of docs/protocol.md §5-§6, in integer math.

A reference of what the vault computes on chain (``libraries/MarginBounds.sol``), used by
the keeper (to predict whether a withdrawal, trade or liquidation will pass) and by the
shared vectors (``tests/vectors/bounds.json``). Rounding goes against the account: lower
bounds toward -inf, upper bounds toward +inf, amounts an account pays up.

All values are Python ints in the chain's units (WAD = 1e18 unless said otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from risk_engine.units import WAD

#: "cannot be liquidated on this leaf": a trivially valid upper bound (protocol §5).
UNBOUNDED = 10**36


def div_down(a: int, b: int) -> int:
    """floor(a / b) for b > 0 (toward -inf, also for negative a)."""
    return a // b


def div_up(a: int, b: int) -> int:
    """ceil(a / b) for b > 0 (toward +inf)."""
    return -((-a) // b)


def mul_wad_down(a: int, b: int) -> int:
    return div_down(a * b, WAD)


def mul_wad_up(a: int, b: int) -> int:
    return div_up(a * b, WAD)


@dataclass(frozen=True)
class Bound:
    """``lo <= change of (equity - requirement) <= hi`` of one action, WAD USD."""

    lo: int
    hi: int


def token_value_down(amount: int, price: int, decimals: int) -> int:
    """``amount * price / 10**decimals`` rounded down (WAD USD)."""
    return div_down(amount * price, 10**decimals)


def token_value_up(amount: int, price: int, decimals: int) -> int:
    """``amount * price / 10**decimals`` rounded up (WAD USD)."""
    return div_up(amount * price, 10**decimals)


def haircut_value_down(amount: int, price: int, decimals: int, down: int) -> int:
    """``v * (1 - down)``: the value rounded down, then the haircut rounded down, in two
    steps exactly as ``MarginBounds.haircutValueDown`` (each step rounds the same way, so
    the result is still a lower bound)."""
    return mul_wad_down(token_value_down(amount, price, decimals), WAD - down)


def shocked_value_up(amount: int, price: int, decimals: int, up: int) -> int:
    """``v * (1 + up)``, both steps rounded up (``MarginBounds.shockedValueUp``)."""
    return mul_wad_up(token_value_up(amount, price, decimals), WAD + up)


def deposit_bound(amount: int, price: int, decimals: int, down: int, up: int) -> Bound:
    """Deposit of ``amount`` (token units) worth ``price`` (WAD USD per whole token)."""
    return Bound(
        lo=haircut_value_down(amount, price, decimals, down),
        hi=shocked_value_up(amount, price, decimals, up),
    )


def withdraw_bound(amount: int, price: int, decimals: int, down: int, up: int) -> Bound:
    """Withdrawal of ``amount``: the deposit bound mirrored."""
    return Bound(
        lo=-shocked_value_up(amount, price, decimals, up),
        hi=-haircut_value_down(amount, price, decimals, down),
    )


def cash_bound(delta: int) -> Bound:
    """Deposit (``delta > 0``) or withdrawal of cash, WAD USD: exact."""
    return Bound(lo=delta, hi=delta)


def trade_cash(size: int, price: int) -> int:
    """Cash change of the account that gets ``size`` at ``price``: ``-size*price``, the
    magnitude rounded up (against the buyer; the seller receives the same amount, which is
    what keeps cash conserved)."""
    amount = mul_wad_up(abs(size), price)
    return -amount if size > 0 else amount


def trade_bound(size: int, price: int, mark: int, loss_long: int, loss_short: int) -> Bound:
    """Trade leg: the account gets ``size`` (signed, WAD units) at ``price``."""
    cash = trade_cash(size, price)
    loss_same, loss_opp = (loss_long, loss_short) if size > 0 else (loss_short, loss_long)
    return Bound(
        lo=mul_wad_down(size, mark) + cash - mul_wad_up(loss_same, abs(size)),
        hi=mul_wad_up(size, mark) + cash + mul_wad_up(loss_opp, abs(size)),
    )


def im_surplus_lo(equity: int, im: int, leaf_cum_lo: int, cum_lo_now: int) -> int:
    return (equity - im) + (cum_lo_now - leaf_cum_lo)


def mm_surplus_hi(equity: int, mm: int, leaf_cum_hi: int, cum_hi_now: int) -> int:
    return (equity - mm) + (cum_hi_now - leaf_cum_hi)


def unattested_surplus_lo(cash: int, balances: list[tuple[int, int, int, int]]) -> int:
    """IM lower bound of an account without positions: ``cash + sum(x*p*(1-down))``.

    ``balances`` = ``[(amount, price, decimals, down_shock), ...]``; each term rounds down.
    """
    return cash + sum(haircut_value_down(x, p, dec, down) for x, p, dec, down in balances)


def first_trade_surplus_lo(on_chain_before: int, legs_lo: int) -> int:
    """IM lower bound after a trade of a side that held no position before it (protocol §5):
    ``onChainSurplusLo(before) + (cumLo_after - cumLo_before)``.

    ``on_chain_before`` is :func:`unattested_surplus_lo` of the account before the fill,
    ``legs_lo`` the sum of its legs' :func:`trade_bound` ``lo``. No leaf is involved."""
    return on_chain_before + legs_lo


def bounds_from_previous_prices(
    last_block: int, last_epoch: int, tainted_epoch: int, epoch: int, snapshot_block: int
) -> bool:
    """Whether an account with positions is refused leaf-based withdrawals and trades now
    (``BoundsFromPreviousPrices``, protocol §5), from ``boundChange(account)`` and the current
    epoch's number and ``snapshotBlock``: tainted for this epoch, or its last bound change
    was priced by an older epoch and mined after this epoch's snapshot (the window)."""
    return tainted_epoch == epoch or (last_epoch < epoch and last_block > snapshot_block)


def min_deposit6(net_cash_paid: int, im_surplus_lo: int, cash_scale: int) -> int:
    """The liquidator's capital need (protocol §6, ``LiquidationQuote.minDeposit6``): the
    smallest deposit, in settlement token units, that leaves the subaccount at IM after it
    pays ``net_cash_paid`` (WAD USD) out of its cash, from its IM lower bound now
    ``im_surplus_lo`` (WAD USD): ``ceil((net_cash_paid - im_surplus_lo) / cash_scale)``,
    rounded up (against the liquidator), 0 when the subaccount stays above IM without one.
    ``cash_scale`` is WAD per token unit (``10**12`` for a 6-decimal USDC)."""
    return max(0, div_up(net_cash_paid - im_surplus_lo, cash_scale))


@dataclass(frozen=True)
class Liquidation:
    """The numbers of one liquidation (protocol §6), WAD USD."""

    eq_lo: int
    eq_hi: int
    penalty: int
    pay: int
    fee: int
    shortfall: int
    covered: int
    uncovered: int
    net_cash_paid: int


def liquidation(
    *,
    equity: int,
    mm: int,
    leaf_cum_lo: int,
    leaf_cum_hi: int,
    cum_lo_now: int,
    cum_hi_now: int,
    liquidation_penalty: int,
    insurance_share: int,
    insurance_fund: int,
) -> Liquidation:
    """Payment, fee and bad debt of liquidating an account with this leaf (protocol §6)."""
    eq_lo = equity + (cum_lo_now - leaf_cum_lo)
    eq_hi = equity + (cum_hi_now - leaf_cum_hi)
    penalty = mul_wad_up(mm, liquidation_penalty)
    pay = max(0, eq_lo - penalty)
    fee = mul_wad_down(min(penalty, max(eq_lo, 0)), insurance_share)
    shortfall = max(0, -eq_hi)
    covered = min(shortfall, insurance_fund)
    return Liquidation(
        eq_lo=eq_lo,
        eq_hi=eq_hi,
        penalty=penalty,
        pay=pay,
        fee=fee,
        shortfall=shortfall,
        covered=covered,
        uncovered=shortfall - covered,
        net_cash_paid=pay + fee - covered,
    )


# ---------------------------------------------------------------------- shared vectors


def _s(v: int) -> str:
    return str(v)


_TOKEN_CASES = [
    # (amount, price, decimals, down, up)
    (10**18, 3_000 * WAD, 18, 15 * 10**16, 20 * 10**16),
    (123_456_789, 60_000 * WAD, 8, 12 * 10**16, 15 * 10**16),
    (1, 3_333_333_333_333_333_333, 18, 333_333_333_333_333_333, 1),
    (7, 1, 6, 0, 0),
    (5 * 10**17, 1_000_000_000_000_000_001, 18, WAD, 3 * WAD),
]
_TRADE_CASES = [
    # (size, price, mark, lossLong, lossShort)
    (WAD, 60_000 * WAD, 60_100 * WAD, 9_000 * WAD, 9_600 * WAD),
    (-(2 * WAD), 120 * WAD, 118 * WAD, 118 * WAD, 700 * WAD),
    (3, 1, 2, 5, 7),
    (-7, 333_333_333_333_333_333, 333_333_333_333_333_334, 1, 10**17 + 1),
    (1_234_567_890_123_456_789, 2_999_999_999_999_999_999, 3_000 * WAD, 450 * WAD, 0),
]
_LIQ_CASES = [
    # (equity, im, mm, leafCumLo, leafCumHi, cumLoNow, cumHiNow, penalty, share, fund)
    # minDeposit6: 1,470 USDC exactly (IM deficit 550 + pay 890 + fee 30)
    (1_000 * WAD, 1_500 * WAD, 1_200 * WAD, 0, 0, -50 * WAD, 10 * WAD, 5 * 10**16, 5 * 10**17, 0),
    # bad debt partly covered: the fund's 200 USD lowers the need to 1,300 USDC
    (-500 * WAD, 1_000 * WAD, 800 * WAD, 1, 2, 1, 2, 10**17, 3 * 10**17, 200 * WAD),
    # 10 wei over 1,000 USDC: rounded up to one more token unit
    (-500 * WAD, 1_000 * WAD, 800 * WAD, 0, 0, -7, 3, 10**17, 3 * 10**17, 10_000 * WAD),
    # no IM: the subaccount stays above IM after paying (need < 0), no deposit
    (30 * WAD, 0, 100 * WAD, 0, 0, 0, 0, 5 * 10**17, 10**17, 1),
    # a need of 6 wei: one token unit
    (3, 7, 7, 1, 2, 0, 5, 333_333_333_333_333_333, 666_666_666_666_666_667, 0),
]
#: WAD per settlement token unit of the liquidation cases (a 6-decimal USDC).
_CASH_SCALE = 10**12


def vector_cases() -> dict[str, Any]:
    """The cases of ``tests/vectors/bounds.json``: inputs and expected outputs."""
    tokens = []
    for amount, price, dec, down, up in _TOKEN_CASES:
        d = deposit_bound(amount, price, dec, down, up)
        w = withdraw_bound(amount, price, dec, down, up)
        tokens.append(
            {
                "amount": _s(amount),
                "price": _s(price),
                "decimals": _s(dec),
                "downShock": _s(down),
                "upShock": _s(up),
                "depositLo": _s(d.lo),
                "depositHi": _s(d.hi),
                "withdrawLo": _s(w.lo),
                "withdrawHi": _s(w.hi),
            }
        )
    trades = []
    for size, price, mark, ll, ls in _TRADE_CASES:
        b = trade_bound(size, price, mark, ll, ls)
        trades.append(
            {
                "size": _s(size),
                "price": _s(price),
                "mark": _s(mark),
                "lossPerUnitLong": _s(ll),
                "lossPerUnitShort": _s(ls),
                "cash": _s(trade_cash(size, price)),
                "lo": _s(b.lo),
                "hi": _s(b.hi),
            }
        )
    liqs = []
    for eq, im, mm, lcl, lch, cl, ch, pen, share, fund in _LIQ_CASES:
        r = liquidation(
            equity=eq,
            mm=mm,
            leaf_cum_lo=lcl,
            leaf_cum_hi=lch,
            cum_lo_now=cl,
            cum_hi_now=ch,
            liquidation_penalty=pen,
            insurance_share=share,
            insurance_fund=fund,
        )
        im_lo = im_surplus_lo(eq, im, lcl, cl)
        liqs.append(
            {
                "equity": _s(eq),
                "im": _s(im),
                "mm": _s(mm),
                "leafCumLo": _s(lcl),
                "leafCumHi": _s(lch),
                "cumLoNow": _s(cl),
                "cumHiNow": _s(ch),
                "liquidationPenalty": _s(pen),
                "insuranceShare": _s(share),
                "insuranceFund": _s(fund),
                "mmSurplusHi": _s(mm_surplus_hi(eq, mm, lch, ch)),
                "eqLo": _s(r.eq_lo),
                "eqHi": _s(r.eq_hi),
                "penalty": _s(r.penalty),
                "pay": _s(r.pay),
                "fee": _s(r.fee),
                "covered": _s(r.covered),
                "uncovered": _s(r.uncovered),
                "netCashPaid": _s(r.net_cash_paid),
                "imSurplusLoNow": _s(im_lo),
                "minDeposit6": _s(min_deposit6(r.net_cash_paid, im_lo, _CASH_SCALE)),
            }
        )
    return {
        "WAD": _s(WAD),
        "UNBOUNDED": _s(UNBOUNDED),
        "nTokens": _s(len(tokens)),
        "tokens": tokens,
        "nTrades": _s(len(trades)),
        "trades": trades,
        "cashScale": _s(_CASH_SCALE),
        "nLiquidations": _s(len(liqs)),
        "liquidations": liqs,
    }
