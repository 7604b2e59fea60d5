"""The faucet of a test deployment: mint the mock tokens to an address (and, on a local
node, top up its gas money).

The mocks (``contracts/mocks/MockERC20.sol``) let anyone mint, so the faucet is a client-side
flow, not a contract: one ``mint`` per token of the deployment's ``faucet`` table (whole
tokens), each simulated before it is sent. On a local chain (Anvil) an address with less
than :data:`MIN_GAS_ETH` gets :data:`GAS_TOP_UP_ETH` through ``anvil_setBalance``, so a fresh
key can transact at once. Never point it at a chain whose tokens hold value: ``pm deploy``
writes a faucet table only for mock deployments.

Runnable on its own: ``python -m scripts.faucet --rpc-url URL --to ADDRESS``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping

from eth_utils.address import to_checksum_address
from web3.types import RPCEndpoint

from risk_engine.units import WAD
from scripts.client import LOCAL_CHAIN_IDS, Session, format_units, open_session, parse_units
from scripts.errors import CliError

__all__ = ["GAS_TOP_UP_ETH", "MIN_GAS_ETH", "drip", "top_up_gas"]

MIN_GAS_ETH = 1  # below this an address gets a top-up on a local chain
GAS_TOP_UP_ETH = 100


def top_up_gas(session: Session, to: str) -> bool:
    """On a local chain, set ``to``'s ETH balance to :data:`GAS_TOP_UP_ETH` if it is low.
    Returns whether it did. A dry run only says what it would do."""
    if session.deployment.chain_id not in LOCAL_CHAIN_IDS:
        return False
    balance = int(session.w3.eth.get_balance(to_checksum_address(to)))
    if balance >= MIN_GAS_ETH * WAD:
        return False
    if session.dry_run:
        session.echo(f"dry run: would set the ETH balance of {to} to {GAS_TOP_UP_ETH} ETH")
        return False
    session.w3.provider.make_request(
        RPCEndpoint("anvil_setBalance"), [to, hex(GAS_TOP_UP_ETH * WAD)]
    )
    session.echo(f"gas: set the ETH balance of {to} to {GAS_TOP_UP_ETH} ETH (local chain)")
    return True


def drip(
    session: Session, to: str | None = None, amounts: Mapping[str, str] | None = None
) -> dict[str, int]:
    """Mint the faucet amounts (default: the deployment's ``faucet`` table, whole tokens) of
    each mock token to ``to`` (default: the session's key). Returns symbol -> minted units."""
    dep = session.deployment
    table = dict(amounts if amounts is not None else dep.faucet)
    if not table:
        raise CliError(f"deployment {dep.path} has no faucet (not a mock-token deployment)")
    recipient = to_checksum_address(to) if to else session.address
    minted: dict[str, int] = {}
    # The sender pays gas: give it some first on a local chain.
    top_up_gas(session, session.address)
    if recipient != session.address:
        top_up_gas(session, recipient)
    for symbol, whole in table.items():
        token = dep.token(symbol)
        units = parse_units(whole, token.decimals, f"faucet amount of {symbol}")
        session.send(
            session.mock_token(token.address).functions.mint(recipient, units),
            f"faucet {format_units(units, token.decimals)} {token.symbol} to {recipient}",
        )
        minted[token.symbol] = units
    return minted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Mint mock tokens to an address.")
    parser.add_argument("--rpc-url", default="http://127.0.0.1:8545")
    parser.add_argument("--key-env", default="PM_PRIVATE_KEY")
    parser.add_argument("--to", default=None)
    args = parser.parse_args(argv)
    try:
        session = open_session(args.rpc_url, None, key_env=args.key_env)
        drip(session, args.to)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
