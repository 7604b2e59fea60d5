"""``pm liquidate ID``: take one subaccount over by hand, as the bot does (docs/protocol.md §6).

The key's address receives subaccount ``ID`` whole and, in the same transaction, deposits
from its wallet what brings it back to IM. Everything the vault would refuse is refused
here first, in one line and before anything is sent: an unknown id, a subaccount the key
owns or operates (``SelfLiquidation``), safe mode, a stale or missing leaf, a healthy
subaccount, one whose last change was priced by an older epoch
(``BoundsFromPreviousPrices``), a deposit below the capital need, a wallet short of it.

The capital need is the vault's ``checkLiquidation(...).minDeposit6`` = IM deficit + pay +
fee - covered (:mod:`keeper.liquidator.capital`); the default deposit adds the slippage
allowed on the cost (``maxCashOut``), so the subaccount stays at IM at the worst cost the
transaction accepts. The vault is approved for exactly the deposit.
"""

from __future__ import annotations

from dataclasses import dataclass

from keeper.bounds import bounds_from_previous_prices
from keeper.liquidator.capital import CapitalNeed, cash_scale, deposit6_up
from scripts.client import (
    KeeperApi,
    Session,
    account_proof,
    format_units,
    parse_units,
    require_not_safe_mode,
)
from scripts.errors import CliError

__all__ = ["LiquidationPlan", "liquidate", "max_cash_out"]

#: The cost slippage allowed by default: the larger of 10 USD and 1 % (the bot's defaults).
SLIPPAGE_WAD = 10 * 10**18
SLIPPAGE_FRACTION_BPS = 100


def max_cash_out(net_cash_paid: int) -> int:
    """``netCashPaid`` plus the larger of 10 USD and 1 % of its size (WAD, up)."""
    fraction_up = -((-abs(net_cash_paid) * SLIPPAGE_FRACTION_BPS) // 10_000)
    return net_cash_paid + max(SLIPPAGE_WAD, fraction_up)


@dataclass(frozen=True)
class LiquidationPlan:
    """What ``pm liquidate`` sends: the capital need, the deposit and the cost limit."""

    account: int
    owner: str
    need: CapitalNeed
    deposit6: int
    max_cash_out: int  # WAD USD


def _plan(
    session: Session, api: KeeperApi, account: int, deposit_text: str | None
) -> tuple[LiquidationPlan, tuple[object, ...]]:
    owner = session.owner_of(account)
    me = session.address
    vault = session.vault.functions
    if owner == me or vault.isOperator(owner, me).call():
        raise CliError(
            f"subaccount {account} is owned by {owner}, which {me} owns or operates: a "
            "subaccount cannot be liquidated by its owner or an operator (SelfLiquidation)"
        )
    require_not_safe_mode(session, "liquidate")
    state = session.account_state(account)
    if not state["instruments"] and int(state["cash"]) >= 0:
        raise CliError(f"subaccount {account} holds no position and no debt: nothing to liquidate")
    mp = account_proof(session, api, account, required=True)
    ok, mm_hi, pay, fee, covered, _uncovered, need6 = vault.checkLiquidation(
        account, mp.to_abi()
    ).call()
    if not ok:
        raise CliError(
            f"subaccount {account} is not liquidatable: its MM surplus upper bound is "
            f"{format_units(int(mm_hi), 18, 2)} USD (>= 0)"
        )
    last_block, last_epoch, tainted = vault.boundChange(account).call()
    epoch, snapshot_block, _, _ = vault.currentEpoch().call()
    if bounds_from_previous_prices(
        int(last_block), int(last_epoch), int(tainted), int(epoch), int(snapshot_block)
    ):
        raise CliError(
            f"subaccount {account} changed after epoch {epoch}'s snapshot: the vault takes it "
            f"over from epoch {int(epoch) + 1} (BoundsFromPreviousPrices)"
        )
    token = session.deployment.settlement
    scale = cash_scale(token.decimals)
    # liquidate counts each position's pending funding as 1 wei off cumLo (no funding loop)
    im_lo = int(vault.imSurplusLo(account, mp.to_abi()).call()) - len(state["instruments"])
    need = CapitalNeed(
        im_deficit=-im_lo,
        pay=int(pay),
        fee=int(fee),
        covered=int(covered),
        min_deposit6=int(need6),
        scale=scale,
    )
    cap = max_cash_out(need.net_cash_paid)
    if deposit_text is None:
        deposit6 = max(need.min_deposit6, deposit6_up(cap, im_lo, scale))
    else:
        deposit6 = parse_units(deposit_text, token.decimals, "--deposit")
        if deposit6 < need.min_deposit6:
            raise CliError(
                f"--deposit {deposit_text} is below the capital need "
                f"{format_units(need.min_deposit6, token.decimals)} {token.symbol} "
                "(LiquidationDepositTooSmall)"
            )
    plan = LiquidationPlan(account, owner, need, deposit6, cap)
    return plan, mp.to_abi()


def liquidate(
    session: Session, api: KeeperApi, account: int, deposit_text: str | None = None
) -> LiquidationPlan:
    """Take subaccount ``account`` over from the session's key (see the module docstring)."""
    plan, proof = _plan(session, api, account, deposit_text)
    token = session.deployment.settlement
    session.echo(f"subaccount {account} (owner {plan.owner}): {plan.need.line()}")
    contract = session.token(token.address)
    have = int(contract.functions.balanceOf(session.address).call())
    if have < plan.deposit6:
        raise CliError(
            f"too little {token.symbol} in wallet {session.address}: have "
            f"{format_units(have, token.decimals)}, the liquidation needs "
            f"{format_units(plan.deposit6, token.decimals)} ({plan.need.line()}, plus slippage)"
        )
    allowance = int(contract.functions.allowance(session.address, session.deployment.vault).call())
    if allowance != plan.deposit6:
        session.send(
            contract.functions.approve(session.deployment.vault, plan.deposit6),
            f"approve {format_units(plan.deposit6, token.decimals)} {token.symbol} (exactly the "
            "deposit)",
        )
        if session.dry_run:
            session.echo("dry run: the liquidation needs the approval above first; not simulated")
            return plan
    session.send(
        session.vault.functions.liquidate(account, proof, plan.deposit6, plan.max_cash_out),
        f"liquidate subaccount {account}, depositing "
        f"{format_units(plan.deposit6, token.decimals)} {token.symbol}",
    )
    return plan
