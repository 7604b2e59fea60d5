"""Collateral and cash in and out of the vault, for one account (the session's key).

Each function checks what the user can get wrong before building a transaction (the
wallet or vault balance, safe mode, the keeper's leaf) and says so in one line; whatever it
cannot foresee the simulation catches, decoded (``Session.send``). Amounts are strings as
typed (``"1.5"``), converted exactly into the token's decimals.
"""

from __future__ import annotations

from web3.contract import Contract

from keeper.attestation import MarginProof
from scripts.client import (
    KeeperApi,
    Session,
    TokenInfo,
    account_proof,
    empty_margin_proof,
    format_units,
    parse_units,
    require_not_safe_mode,
)
from scripts.errors import CliError

__all__ = ["deposit", "deposit_cash", "ensure_allowance", "withdraw", "withdraw_cash"]

MAX_UINT256 = 2**256 - 1


def _wallet_check(session: Session, token: TokenInfo, contract: Contract, amount: int) -> None:
    have = int(contract.functions.balanceOf(session.address).call())
    if have < amount:
        raise CliError(
            f"too little {token.symbol} in wallet {session.address}: have "
            f"{format_units(have, token.decimals)}, need {format_units(amount, token.decimals)}"
            " (try `pm faucet` on a local chain)"
        )


def ensure_allowance(session: Session, token: TokenInfo, amount: int) -> None:
    """Approve the vault for ``amount`` of ``token`` if the allowance is lower. In a dry run
    the approval is only simulated (the deposit itself then cannot be simulated)."""
    contract = session.token(token.address)
    allowance = int(contract.functions.allowance(session.address, session.deployment.vault).call())
    if allowance >= amount:
        return
    session.send(
        contract.functions.approve(session.deployment.vault, MAX_UINT256), f"approve {token.symbol}"
    )


def _simulated_without_approval(session: Session, token: TokenInfo, amount: int) -> bool:
    if not session.dry_run:
        return False
    contract = session.token(token.address)
    allowance = int(contract.functions.allowance(session.address, session.deployment.vault).call())
    if allowance < amount:
        session.echo(
            f"dry run: the deposit needs the approval above first; checked the wallet balance "
            f"({format_units(amount, token.decimals)} {token.symbol} available), "
            "deposit not simulated"
        )
        return True
    return False


def deposit(session: Session, token_name: str, amount_text: str) -> None:
    """Deposit collateral ``token_name`` (a registered collateral symbol or address)."""
    token = session.deployment.token(token_name)
    if token.underlying is None:
        raise CliError(f"{token.symbol} is the settlement token: use `pm deposit-cash`")
    amount = parse_units(amount_text, token.decimals)
    if amount <= 0:
        raise CliError("amount must be > 0")
    _wallet_check(session, token, session.token(token.address), amount)
    ensure_allowance(session, token, amount)
    if _simulated_without_approval(session, token, amount):
        return
    session.send(
        session.vault.functions.deposit(token.address, amount),
        f"deposit {amount_text} {token.symbol}",
    )


def deposit_cash(session: Session, amount_text: str) -> None:
    """Deposit settlement tokens as cash (a repayment when cash is negative)."""
    token = session.deployment.settlement
    amount = parse_units(amount_text, token.decimals)
    if amount <= 0:
        raise CliError("amount must be > 0")
    _wallet_check(session, token, session.token(token.address), amount)
    ensure_allowance(session, token, amount)
    if _simulated_without_approval(session, token, amount):
        return
    session.send(
        session.vault.functions.depositCash(amount), f"deposit-cash {amount_text} {token.symbol}"
    )


def withdraw(session: Session, api: KeeperApi, token_name: str, amount_text: str) -> None:
    """Withdraw collateral; with open positions (or debt) the keeper's leaf + proof goes
    with it and the vault checks the IM surplus lower bound."""
    token = session.deployment.token(token_name)
    if token.underlying is None:
        raise CliError(f"{token.symbol} is the settlement token: use `pm withdraw-cash`")
    amount = parse_units(amount_text, token.decimals)
    if amount <= 0:
        raise CliError("amount must be > 0")
    have = int(session.vault.functions.collateralBalance(session.address, token.address).call())
    if have < amount:
        raise CliError(
            f"too little {token.symbol} in the vault for {session.address}: have "
            f"{format_units(have, token.decimals)}, asked {amount_text}"
        )
    mp = _proof_if_needed(session, api, "withdraw")
    session.send(
        session.vault.functions.withdraw(token.address, amount, mp.to_abi()),
        f"withdraw {amount_text} {token.symbol}",
    )


def withdraw_cash(session: Session, api: KeeperApi, amount_text: str) -> None:
    """Withdraw settlement tokens from cash (cash may go negative if the margin allows)."""
    token = session.deployment.settlement
    amount = parse_units(amount_text, token.decimals)
    if amount <= 0:
        raise CliError("amount must be > 0")
    state = session.account_state(session.address)
    cash_after = int(state["cash"]) - amount * 10 ** (18 - token.decimals)
    needs_check = bool(state["instruments"]) or cash_after < 0
    mp = _proof_if_needed(session, api, "withdraw-cash", needs_check=needs_check)
    session.send(
        session.vault.functions.withdrawCash(amount, mp.to_abi()),
        f"withdraw-cash {amount_text} {token.symbol}",
    )


def _proof_if_needed(
    session: Session, api: KeeperApi, action: str, needs_check: bool | None = None
) -> MarginProof:
    """The account's proof when the vault will check its margin (open positions, or cash
    below zero after the action), else the empty proof the vault ignores."""
    state = session.account_state(session.address)
    positions = bool(state["instruments"])
    check = (positions or int(state["cash"]) < 0) if needs_check is None else needs_check
    if not check:
        return empty_margin_proof()
    require_not_safe_mode(session, action)
    return account_proof(session, api, session.address, required=positions)
