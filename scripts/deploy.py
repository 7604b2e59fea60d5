"""Putting contracts on chain and sending owner transactions, readable on revert.

``deploy_contract`` takes the bytecode of a fresh compile (:mod:`scripts.toolchain`:
deploying is build and operations work, the keeper never does it); ``vault_at`` and
``token_at`` bind deployed addresses with the exported ABIs (:mod:`keeper.abi`). The
protocol's deployment itself (tokens, vault, instruments, signers) is one function,
:func:`scripts.protocol_deploy.deploy_protocol`.

Every transaction is simulated first (``transact`` estimates gas), so a revert comes back as
a :class:`~keeper.errors.VaultRevert` with the readable custom error, never a bare status 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from keeper.abi import mock_erc20_abi, vault_abi
from keeper.revert import as_vault_revert
from scripts.errors import DeploymentError
from scripts.toolchain.compile import CompileResult

DEFAULT_MAX_AGE = 3600  # seconds: one missed hourly epoch is tolerated, two are not
DEFAULT_FUTURE_TOLERANCE = 60  # seconds of clock skew between keeper and chain


def send(
    fn: ContractFunction, sender: str, abi: Sequence[dict[str, Any]] | None = None
) -> TxReceipt:
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


def vault_at(w3: Web3, address: str) -> Contract:
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=vault_abi())


def token_at(w3: Web3, address: str) -> Contract:
    """A mock token (``mint`` included): the test deployments' tokens."""
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=mock_erc20_abi())
