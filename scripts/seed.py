"""Fund and seed accounts: faucet, then deposits of collateral and cash, one call per account.

Used by the demo to set up its traders, and runnable on its own::

    PM_PRIVATE_KEY=0x... python -m scripts.seed --rpc-url URL --token WETH=5 --cash 50000

:func:`seed_account` works on an open :class:`~scripts.client.Session` (its key's lowest
subaccount; the first deposit creates it, as ``pm deposit`` does); :func:`seed_accounts`
opens one session per key. A plan without deposits only mints to the wallet (a liquidator's
capital). Every transaction goes through
``Session.send`` (simulated first).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from eth_account.signers.local import LocalAccount

from scripts.client import Session, connect, load_deployment
from scripts.errors import CliError
from scripts.faucet import drip
from scripts.funds import deposit, deposit_cash

__all__ = ["SeedPlan", "seed_account", "seed_accounts"]


@dataclass(frozen=True)
class SeedPlan:
    """What one account gets: ``mint`` (symbol -> whole tokens minted to the wallet, default
    the faucet table), ``deposit`` (collateral symbol -> amount deposited), ``cash``
    (settlement tokens deposited as cash, "0" for none)."""

    deposit: Mapping[str, str] = field(default_factory=dict)
    cash: str = "0"
    mint: Mapping[str, str] | None = None


def seed_account(session: Session, plan: SeedPlan) -> None:
    """Mint to the session's account, then deposit per ``plan``."""
    mint = dict(plan.mint) if plan.mint is not None else None
    if mint is None:
        mint = dict(session.deployment.faucet)
        # Mint at least what the plan deposits, so any plan can be seeded.
        for sym, amt in plan.deposit.items():
            canonical = session.deployment.token(sym).symbol
            mint[canonical] = _max(mint.get(canonical, "0"), amt)
        usdc = session.deployment.settlement.symbol
        mint[usdc] = _max(mint.get(usdc, "0"), plan.cash)
    drip(session, None, mint)
    for symbol, amount in plan.deposit.items():
        deposit(session, symbol, amount)
    if Decimal(plan.cash or "0") > 0:
        deposit_cash(session, plan.cash)


def _max(a: str, b: str) -> str:
    return a if Decimal(a) >= Decimal(b) else b


def seed_accounts(
    rpc_url: str,
    accounts: Sequence[tuple[LocalAccount, SeedPlan]],
    *,
    deployment_file: Path | None = None,
) -> None:
    """Seed each ``(account, plan)`` on the chain at ``rpc_url``."""
    w3 = connect(rpc_url)
    dep = load_deployment(w3, deployment_file)
    for account, plan in accounts:
        seed_account(Session(w3, dep, account), plan)


def _pairs(items: Sequence[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise CliError(f"{what} {item!r} must look like SYMBOL=AMOUNT")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def main(argv: list[str] | None = None) -> int:
    from scripts.client import load_key

    parser = argparse.ArgumentParser(description="Mint mock tokens and deposit them.")
    parser.add_argument("--rpc-url", default="http://127.0.0.1:8545")
    parser.add_argument("--key-env", default="PM_PRIVATE_KEY")
    parser.add_argument("--token", action="append", default=[], help="SYMBOL=AMOUNT deposit")
    parser.add_argument("--cash", default="0", help="settlement tokens to deposit as cash")
    args = parser.parse_args(argv)
    try:
        plan = SeedPlan(deposit=_pairs(args.token, "--token"), cash=args.cash)
        seed_accounts(args.rpc_url, [(load_key(args.key_env), plan)])
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
