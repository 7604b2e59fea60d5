"""Subaccounts of the session's key: create, list, transfer, approve an operator.

A subaccount is a ``uint256`` id with an owner (docs/protocol.md §2): the owner, or an
operator the owner approved for all of its subaccounts, acts for it; withdrawals pay the
owner. Each function checks what the user can get wrong before sending (an unknown id, a
subaccount the key neither owns nor operates, the zero address) and says so in one line.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_utils.address import to_checksum_address

from keeper.attestation import ZERO_ADDRESS
from risk_engine.units import WAD
from scripts.client import Session
from scripts.errors import CliError
from scripts.funds import create_account

__all__ = ["AccountRow", "list_accounts", "new_account", "set_operator", "transfer_account"]


@dataclass(frozen=True)
class AccountRow:
    """One line of ``pm account list``: cash in WAD USD, open positions, collateral tokens
    with a balance."""

    account: int
    owner: str
    cash: int
    positions: int
    collateral_tokens: int


def new_account(session: Session) -> int | None:
    """A new subaccount owned by the key: its id (``None`` in a dry run)."""
    return create_account(session)


def list_accounts(session: Session, owner: str) -> list[AccountRow]:
    """``owner``'s subaccounts now, lowest id first."""
    rows = []
    for account in session.subaccounts_of(owner):
        st = session.account_state(account)
        rows.append(
            AccountRow(
                account,
                to_checksum_address(owner),
                int(st["cash"]),
                sum(1 for size in st["sizes"] if int(size) != 0),
                sum(1 for b in st["coll"] if int(b) != 0),
            )
        )
    return rows


def format_rows(rows: list[AccountRow]) -> list[str]:
    """The table ``pm account list`` prints (cash in USD, 2 places)."""
    out = [f"{'id':>6}  {'owner':<42}  {'cash USD':>16}  {'positions':>9}  {'collateral':>10}"]
    for r in rows:
        out.append(
            f"{r.account:>6}  {r.owner:<42}  {r.cash / WAD:>16,.2f}  {r.positions:>9}  "
            f"{r.collateral_tokens:>10}"
        )
    return out


def transfer_account(session: Session, account: int, to: str) -> None:
    """Give subaccount ``account`` to ``to``: every balance, position, bound and nonce stays
    with it; the new owner's operators act for it from now on."""
    to = to_checksum_address(to)
    if to == ZERO_ADDRESS:
        raise CliError("cannot transfer a subaccount to the zero address")
    owner = session.require_can_act(account)
    if to == owner:
        raise CliError(f"{to} already owns subaccount {account}")
    session.send(
        session.vault.functions.transferSubaccount(account, to),
        f"transfer subaccount {account} from {owner} to {to}",
    )


def set_operator(session: Session, operator: str, approved: bool) -> None:
    """Approve (or revoke) ``operator`` for ALL of the key's subaccounts."""
    operator = to_checksum_address(operator)
    if operator == ZERO_ADDRESS:
        raise CliError("the operator cannot be the zero address")
    if operator == session.address:
        raise CliError("you act for your own subaccounts already: no operator needed")
    now = bool(session.vault.functions.isOperator(session.address, operator).call())
    if now == approved:
        state = "already" if approved else "not"
        raise CliError(f"{operator} is {state} an operator of {session.address}")
    verb = "approve" if approved else "revoke"
    session.send(
        session.vault.functions.setOperator(operator, approved),
        f"{verb} operator {operator} for every subaccount of {session.address}",
    )
