"""The ``pm`` side of finality (docs/protocol.md §10): queued withdrawals, the signers' bond,
the challenge window, and the payouts a liquidation or a fraud proof credits.

With the vault's challenge window on, a withdrawal that an attested number decided is debited
at once and paid after the window: ``pm withdraw``/``pm withdraw-cash`` say so
(:func:`scripts.funds.report_queued`), ``pm withdrawals`` lists them, ``pm claim-withdrawal ID``
pays one that is ready, ``pm return-withdrawal ID`` credits a void one back. ``pm bond`` shows
and posts the bond, ``pm dispute-config`` sets the window (owner), ``pm claim-payout`` pays what
a liquidation or a won dispute credited to the key.
"""

from __future__ import annotations

from typing import Any

from scripts.client import Session, format_units, parse_units, utc
from scripts.errors import CliError
from scripts.funds import ensure_allowance

__all__ = [
    "bond_status",
    "claim_payout",
    "claim_withdrawal",
    "list_withdrawals",
    "post_bond",
    "return_withdrawal",
    "set_dispute_config",
    "withdraw_bond",
]

WAD = 10**18
MAX_WINDOW = 7 * 86_400


def _usd(wad: int) -> str:
    return f"{wad / WAD:,.2f} USD"


def _pending(session: Session, wid: int) -> tuple[dict[str, Any], bool]:
    w, void = session.vault.functions.pendingWithdrawal(wid).call()
    keys = ("account", "to", "queuedAt", "token", "readyAt", "isCash", "amount")
    return dict(zip(keys, w, strict=True)), bool(void)


def _token_label(session: Session, address: str) -> tuple[str, int]:
    for t in session.deployment.tokens:
        if t.address.lower() == str(address).lower():
            return t.symbol, t.decimals
    return str(address), 18


def list_withdrawals(session: Session, owner: str | None = None, *, everyone: bool = False) -> None:
    """Print the pending withdrawals paid to ``owner`` (default: the key's address; every one
    with ``everyone``): id, subaccount, amount, status."""
    count = int(session.vault.functions.pendingWithdrawalCount().call())
    who = None if everyone else (owner or session.address)
    now = int(session.w3.eth.get_block("latest")["timestamp"])
    rows = 0
    for wid in range(1, count + 1):
        w, void = _pending(session, wid)
        if int(w["amount"]) == 0:
            continue  # claimed or returned
        if who is not None and str(w["to"]).lower() != who.lower():
            continue
        symbol, decimals = _token_label(session, w["token"])
        if void:
            status = "void: `pm return-withdrawal` credits it back"
        elif now >= int(w["readyAt"]):
            status = "ready: `pm claim-withdrawal`"
        else:
            status = f"waiting until {utc(int(w['readyAt']))}"
        session.echo(
            f"withdrawal {wid}: subaccount {w['account']}, "
            f"{format_units(int(w['amount']), decimals)} {symbol} to {w['to']}, {status}"
        )
        rows += 1
    if rows == 0:
        session.echo("no pending withdrawal" + ("" if who is None else f" to {who}"))


def claim_withdrawal(session: Session, wid: int) -> None:
    w, void = _pending(session, wid)
    if int(w["amount"]) == 0:
        raise CliError(f"no pending withdrawal {wid} (never queued, or claimed or returned)")
    if void:
        raise CliError(
            f"withdrawal {wid} is void (a fraud was proven during its window): "
            f"`pm return-withdrawal {wid}` credits it back to subaccount {w['account']}"
        )
    symbol, decimals = _token_label(session, w["token"])
    session.send(
        session.vault.functions.claimWithdrawal(wid),
        f"claim withdrawal {wid}: {format_units(int(w['amount']), decimals)} {symbol} to {w['to']}",
    )


def return_withdrawal(session: Session, wid: int) -> None:
    w, _ = _pending(session, wid)
    session.send(
        session.vault.functions.returnWithdrawal(wid),
        f"return withdrawal {wid} to subaccount {w['account']}",
    )


def bond_status(session: Session) -> None:
    window, min_bond, bond = session.vault.functions.disputeConfig().call()
    fraud_epoch, judged = session.vault.functions.fraudState().call()
    if int(window) == 0:
        session.echo("challenge window: off (roots final when posted, withdrawals paid at once)")
    else:
        session.echo(f"challenge window: {int(window)} s")
    session.echo(f"signers' bond: {_usd(int(bond))} (minimum {_usd(int(min_bond))})")
    if int(fraud_epoch):
        session.echo(
            f"SAFE MODE: a fraud was proven in epoch {fraud_epoch}; waiting for an epoch "
            "from a rotated signer set"
        )
    elif int(judged):
        session.echo(f"last fraud declaration judged epochs up to {judged}")


def post_bond(session: Session, amount_text: str, *, approve_max: bool = False) -> None:
    token = session.deployment.settlement
    amount = parse_units(amount_text, token.decimals)
    if amount <= 0:
        raise CliError("amount must be > 0")
    have = int(session.token(token.address).functions.balanceOf(session.address).call())
    if have < amount:
        raise CliError(
            f"too little {token.symbol} in the wallet: have {format_units(have, token.decimals)}, "
            f"asked {amount_text}"
        )
    ensure_allowance(session, token, amount, approve_max=approve_max)
    session.send(
        session.vault.functions.postBond(amount), f"post {amount_text} {token.symbol} of bond"
    )


def withdraw_bond(session: Session, amount_text: str, to: str | None) -> None:
    token = session.deployment.settlement
    amount = parse_units(amount_text, token.decimals)
    if amount <= 0:
        raise CliError("amount must be > 0")
    dest = to or session.address
    session.send(
        session.vault.functions.withdrawBond(amount, dest),
        f"withdraw {amount_text} {token.symbol} of bond to {dest}",
    )


def set_dispute_config(session: Session, window: int, min_bond_text: str) -> None:
    if not 0 <= window <= MAX_WINDOW:
        raise CliError(f"window must be 0 to {MAX_WINDOW} seconds (7 days), got {window}")
    token = session.deployment.settlement
    min_bond = parse_units(min_bond_text, token.decimals)
    if min_bond < 0:
        raise CliError("minimum bond must be >= 0")
    session.send(
        session.vault.functions.setDisputeConfig(window, min_bond),
        f"set the challenge window to {window} s and the minimum bond to {min_bond_text} "
        f"{token.symbol}",
    )


def claim_payout(session: Session) -> None:
    due = int(session.vault.functions.payoutOf(session.address).call())
    token = session.deployment.settlement
    units = due // 10 ** (18 - token.decimals)
    if units == 0:
        raise CliError(f"nothing to claim for {session.address}")
    session.send(
        session.vault.functions.claimPayout(),
        f"claim payout {format_units(units, token.decimals)} {token.symbol}",
    )
