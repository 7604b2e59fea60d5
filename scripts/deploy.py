"""Deploy the mock tokens and the vault (local chains), from the Python-compiled artifacts.

As a function: ``deploy(w3, owner=...) -> Deployment``. As a command:
``python -m scripts.deploy --rpc-url http://127.0.0.1:8545`` deploys with the node's first
unlocked account and writes ``deployments/<chainId>.json``.

Every transaction is simulated first (``transact`` estimates gas), so a revert comes back as
a :class:`~keeper.errors.VaultRevert` with the readable custom error, never a bare status 0.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction

from keeper.compile import CompileResult, compile_contracts
from keeper.revert import as_vault_revert
from keeper.toolchain import REPO_ROOT
from scripts.errors import DeploymentError

#: Collateral mocks of the local deployment: symbol -> decimals.
DEFAULT_COLLATERAL: tuple[tuple[str, int], ...] = (("WETH", 18), ("WBTC", 8))
DEFAULT_MAX_AGE = 3600  # seconds: one missed hourly epoch is tolerated, two are not
DEFAULT_FUTURE_TOLERANCE = 60  # seconds of clock skew between keeper and chain


@dataclass(frozen=True)
class Deployment:
    """Addresses of one deployment."""

    chain_id: int
    owner: str
    vault: str
    settlement_token: str
    collateral: dict[str, str] = field(default_factory=dict)  # symbol -> address
    block: int = 0

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


def send(fn: ContractFunction, sender: str, abi: Sequence[dict[str, Any]] | None = None) -> Any:
    """Send ``fn`` from ``sender`` and return the receipt; a revert raises a readable error."""
    w3 = fn.w3
    try:
        tx_hash = fn.transact({"from": sender})
    except Exception as exc:  # noqa: BLE001 - web3 and eth-tester raise different types
        decoded = as_vault_revert(exc, abi if abi is not None else fn.contract_abi)
        if decoded is not None:
            raise decoded from exc
        raise
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
    if receipt["status"] != 1:
        raise DeploymentError(f"{fn.fn_name} reverted in tx 0x{bytes(tx_hash).hex()}")
    return receipt


def deploy_contract(
    w3: Web3, compiled: CompileResult, name: str, args: Sequence[Any], sender: str
) -> Contract:
    """Deploy contract ``name`` with constructor ``args`` from ``sender``."""
    art = compiled[name]
    factory = w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
    try:
        tx_hash = factory.constructor(*args).transact({"from": sender})
    except Exception as exc:  # noqa: BLE001
        decoded = as_vault_revert(exc, art.abi)
        if decoded is not None:
            raise decoded from exc
        raise DeploymentError(f"deploying {name} failed: {exc}") from exc
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
    if receipt["status"] != 1 or not receipt["contractAddress"]:
        raise DeploymentError(f"deploying {name} failed in tx 0x{bytes(tx_hash).hex()}")
    return w3.eth.contract(address=receipt["contractAddress"], abi=art.abi)


def vault_at(w3: Web3, address: str, compiled: CompileResult | None = None) -> Contract:
    compiled = compiled or compile_contracts()
    return w3.eth.contract(
        address=Web3.to_checksum_address(address), abi=compiled["MarginVault"].abi
    )


def token_at(w3: Web3, address: str, compiled: CompileResult | None = None) -> Contract:
    compiled = compiled or compile_contracts()
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=compiled["MockERC20"].abi)


def deploy(
    w3: Web3,
    *,
    owner: str | None = None,
    max_age: int = DEFAULT_MAX_AGE,
    future_tolerance: int = DEFAULT_FUTURE_TOLERANCE,
    collateral: Sequence[tuple[str, int]] = DEFAULT_COLLATERAL,
    compiled: CompileResult | None = None,
) -> Deployment:
    """Deploy a USDC-like settlement mock (6 decimals), one mock per ``collateral`` entry and
    the vault owned by ``owner`` (default: the node's first account), and register the
    collateral mocks in order. Signers, instruments and epochs are left to the caller."""
    compiled = compiled or compile_contracts()
    owner = Web3.to_checksum_address(owner or w3.eth.accounts[0])
    usdc = deploy_contract(w3, compiled, "MockERC20", ["USD Coin (mock)", "USDC", 6], owner)
    vault = deploy_contract(
        w3, compiled, "MarginVault", [owner, usdc.address, max_age, future_tolerance], owner
    )
    tokens: dict[str, str] = {}
    for symbol, decimals in collateral:
        t = deploy_contract(
            w3, compiled, "MockERC20", [f"{symbol} (mock)", symbol, decimals], owner
        )
        send(vault.functions.registerToken(t.address), owner)
        tokens[symbol] = t.address
    return Deployment(
        chain_id=w3.eth.chain_id,
        owner=owner,
        vault=vault.address,
        settlement_token=usdc.address,
        collateral=tokens,
        block=w3.eth.block_number,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Deploy mock tokens and the MarginVault.")
    parser.add_argument("--rpc-url", default="http://127.0.0.1:8545")
    parser.add_argument("--out", type=Path, default=None, help="default deployments/<chainId>.json")
    args = parser.parse_args(argv)
    w3 = Web3(Web3.HTTPProvider(args.rpc_url))
    d = deploy(w3)
    out = args.out or REPO_ROOT / "deployments" / f"{d.chain_id}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(d.to_json())
    print(d.to_json(), end="")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
