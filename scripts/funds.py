"""Collateral and cash in and out of the vault, for one subaccount of the session's key.

``account`` is a subaccount id, or ``None`` for the lowest id the key holds. A deposit
into a key that holds none creates its first subaccount (``createSubaccount``) and deposits
into it: a deposit is what a new user does first; every other action asks for
``pm account new`` instead.

Each function checks what the user can get wrong before building a transaction (the
wallet or vault balance, safe mode, the keeper's leaf) and says so in one line; whatever it
cannot foresee the simulation catches, decoded (``Session.send``). Amounts are strings as
typed (``"1.5"``), converted exactly into the token's decimals.
"""

from __future__ import annotations

from web3.contract import Contract
from web3.logs import DISCARD

from keeper.account_view import CASH_SCALE, max_withdrawable_cash6, max_withdrawable_token
from keeper.attestation import MarginProof
from keeper.txmanager import TxResult
from scripts.client import (
    KeeperApi,
    Session,
    TokenInfo,
    account_proof,
    format_units,
    parse_units,
    require_not_safe_mode,
    retry_on_new_root,
    utc,
)
from scripts.errors import CliError

__all__ = [
    "create_account",
    "deposit",
    "deposit_cash",
    "ensure_allowance",
    "report_queued",
    "withdraw",
    "withdraw_cash",
]

MAX_UINT256 = 2**256 - 1


def report_queued(session: Session, result: TxResult | None) -> None:
    """After a withdrawal: say where the tokens are when the vault queued them."""
    if result is None:
        return
    events = session.vault.events.WithdrawalQueued().process_receipt(result.receipt, errors=DISCARD)
    for ev in events:
        a = ev["args"]
        session.echo(
            f"queued as withdrawal {a['id']} (challenge window): claimable from "
            f"{utc(int(a['readyAt']))} with `pm claim-withdrawal {a['id']}`"
        )


def _wallet_check(session: Session, token: TokenInfo, contract: Contract, amount: int) -> None:
    have = int(contract.functions.balanceOf(session.address).call())
    if have < amount:
        raise CliError(
            f"too little {token.symbol} in wallet {session.address}: have "
            f"{format_units(have, token.decimals)}, need {format_units(amount, token.decimals)}"
            " (try `pm faucet` on a local chain)"
        )


def ensure_allowance(
    session: Session, token: TokenInfo, amount: int, *, approve_max: bool = False
) -> None:
    """Approve the vault for exactly ``amount`` of ``token`` if the allowance is lower (an
    unlimited approval would let a compromised vault take the whole wallet; ``approve_max``
    opts in to MAX_UINT256, one approval for all later deposits). In a dry run the approval
    is only simulated (the deposit itself then cannot be simulated)."""
    contract = session.token(token.address)
    allowance = int(contract.functions.allowance(session.address, session.deployment.vault).call())
    if allowance >= amount:
        return
    value = MAX_UINT256 if approve_max else amount
    shown = "unlimited" if approve_max else format_units(amount, token.decimals)
    session.send(
        contract.functions.approve(session.deployment.vault, value),
        f"approve {shown} {token.symbol}",
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


def create_account(session: Session) -> int | None:
    """``createSubaccount`` from the session's key: the new id (``None`` in a dry run)."""
    result = session.send(session.vault.functions.createSubaccount(), "create subaccount")
    if result is None:
        return None
    events = session.vault.events.SubaccountTransferred().process_receipt(
        result.receipt, errors=DISCARD
    )
    account = int(events[0]["args"]["account"])
    session.echo(f"subaccount {account} created, owned by {session.address}")
    return account


def _deposit_target(session: Session, account: int | None) -> int | None:
    """The subaccount a deposit goes to: ``account`` (the key must own or operate it), the
    key's lowest, or a new first one (``None`` when only simulated)."""
    if account is not None:
        session.require_can_act(account)
        return account
    mine = session.subaccounts_of(session.address)
    if mine:
        return mine[0]
    session.echo(f"{session.address} has no subaccount yet: creating its first")
    return create_account(session)


def deposit(
    session: Session,
    token_name: str,
    amount_text: str,
    account: int | None = None,
    *,
    approve_max: bool = False,
) -> None:
    """Deposit collateral ``token_name`` (a registered collateral symbol or address) into
    subaccount ``account`` (see the module docstring for the default)."""
    token = session.deployment.token(token_name)
    if token.underlying is None:
        raise CliError(f"{token.symbol} is the settlement token: use `pm deposit-cash`")
    amount = parse_units(amount_text, token.decimals)
    if amount <= 0:
        raise CliError("amount must be > 0")
    _wallet_check(session, token, session.token(token.address), amount)
    target = _deposit_target(session, account)
    ensure_allowance(session, token, amount, approve_max=approve_max)
    if target is None or _simulated_without_approval(session, token, amount):
        return
    session.send(
        session.vault.functions.deposit(target, token.address, amount),
        f"deposit {amount_text} {token.symbol} into subaccount {target}",
    )


def deposit_cash(
    session: Session, amount_text: str, account: int | None = None, *, approve_max: bool = False
) -> None:
    """Deposit settlement tokens as cash into ``account`` (a repayment when its cash is
    negative)."""
    token = session.deployment.settlement
    amount = parse_units(amount_text, token.decimals)
    if amount <= 0:
        raise CliError("amount must be > 0")
    _wallet_check(session, token, session.token(token.address), amount)
    target = _deposit_target(session, account)
    ensure_allowance(session, token, amount, approve_max=approve_max)
    if target is None or _simulated_without_approval(session, token, amount):
        return
    session.send(
        session.vault.functions.depositCash(target, amount),
        f"deposit-cash {amount_text} {token.symbol} into subaccount {target}",
    )


def withdraw(
    session: Session,
    api: KeeperApi,
    token_name: str,
    amount_text: str,
    account: int | None = None,
) -> None:
    """Withdraw collateral of ``account`` to its owner; with open positions (or debt) the
    keeper's leaf + proof goes with it and the vault checks the IM surplus lower bound."""
    token = session.deployment.token(token_name)
    if token.underlying is None:
        raise CliError(f"{token.symbol} is the settlement token: use `pm withdraw-cash`")
    amount = parse_units(amount_text, token.decimals)
    if amount <= 0:
        raise CliError("amount must be > 0")
    target = session.resolve_account(account)
    owner = session.require_can_act(target)
    have = int(session.vault.functions.collateralBalance(target, token.address).call())
    if have < amount:
        raise CliError(
            f"too little {token.symbol} in subaccount {target}: have "
            f"{format_units(have, token.decimals)}, asked {amount_text}"
        )

    def attempt() -> None:
        mp = _proof_if_needed(session, api, target, "withdraw")
        surplus = _im_surplus_lo(session, target, mp)
        prices = {str(p[0]): p for p in session.vault.functions.tokenPrices().call()}
        price = prices.get(token.address)
        if surplus is not None and price is not None:
            most = max_withdrawable_token(
                surplus, have, int(price[1]), int(price[3]), token.decimals
            )
            if amount > most:
                raise CliError(
                    f"withdraw {amount_text} {token.symbol} from subaccount {target} refused: "
                    f"the margin allows at most {format_units(most, token.decimals)} "
                    f"{token.symbol} now "
                    f"(IM surplus lower bound {surplus / 10**18:,.2f} USD)"
                )
        result = session.send(
            session.vault.functions.withdraw(target, token.address, amount, mp.to_abi()),
            f"withdraw {amount_text} {token.symbol} from subaccount {target} to {owner}",
        )
        report_queued(session, result)

    retry_on_new_root(session, attempt)


def withdraw_cash(
    session: Session, api: KeeperApi, amount_text: str, account: int | None = None
) -> None:
    """Withdraw settlement tokens from ``account``'s cash to its owner (cash may go
    negative if the margin allows)."""
    token = session.deployment.settlement
    amount = parse_units(amount_text, token.decimals)
    if amount <= 0:
        raise CliError("amount must be > 0")
    target = session.resolve_account(account)
    owner = session.require_can_act(target)

    def attempt() -> None:
        state = session.account_state(target)
        cash_after = int(state["cash"]) - amount * 10 ** (18 - token.decimals)
        needs_check = bool(state["instruments"]) or cash_after < 0
        mp = _proof_if_needed(session, api, target, "withdraw-cash", needs_check=needs_check)
        surplus = _im_surplus_lo(session, target, mp)
        if surplus is not None and amount * CASH_SCALE > surplus:
            most = max_withdrawable_cash6(surplus)
            raise CliError(
                f"withdraw-cash {amount_text} {token.symbol} from subaccount {target} refused: the "
                f"margin allows at most {format_units(most, token.decimals)} {token.symbol} now "
                f"(IM surplus lower bound {surplus / 10**18:,.2f} USD)"
            )
        result = session.send(
            session.vault.functions.withdrawCash(target, amount, mp.to_abi()),
            f"withdraw-cash {amount_text} {token.symbol} from subaccount {target} to {owner}",
        )
        report_queued(session, result)

    retry_on_new_root(session, attempt)


def withdrawable_cash6(session: Session, api: KeeperApi, account: int) -> int | None:
    """Settlement-token units a ``withdraw-cash`` from ``account`` passes with now (the
    vault's IM surplus lower bound with the latest proof); ``None`` when the vault checks
    no margin (no positions: only the cash balance limits it) or the view reverts."""
    state = session.account_state(account)
    if not state["instruments"]:
        return None
    surplus = _im_surplus_lo(session, account, account_proof(session, api, account, required=True))
    return None if surplus is None else max_withdrawable_cash6(surplus)


def _im_surplus_lo(session: Session, account: int, mp: MarginProof) -> int | None:
    """The vault's IM surplus lower bound (WAD USD) with ``mp``, before the action; ``None``
    when the view reverts (the send's simulation then reports why)."""
    try:
        return int(session.vault.functions.imSurplusLo(account, mp.to_abi()).call())
    except Exception:  # noqa: BLE001 - a reverted view: leave the verdict to the simulation
        return None


def _proof_if_needed(
    session: Session,
    api: KeeperApi,
    account: int,
    action: str,
    needs_check: bool | None = None,
) -> MarginProof:
    """The subaccount's proof when the vault will check its margin (open positions, or
    cash below zero after the action), else the empty proof the vault ignores."""
    state = session.account_state(account)
    positions = bool(state["instruments"])
    check = (positions or int(state["cash"]) < 0) if needs_check is None else needs_check
    if not check:
        return MarginProof.empty(account)
    require_not_safe_mode(session, action)
    return account_proof(session, api, account, required=positions)
