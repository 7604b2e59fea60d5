"""``pm deploy --tokens FILE``: a deployment that registers tokens already on chain (as on a
live network) instead of deploying mocks, on a real Anvil."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from web3 import Web3

from keeper.abi import vault_abi
from scripts.anvil import AnvilNode, start_anvil
from scripts.cli import pm
from scripts.deploy import deploy_contract, send, token_at
from scripts.errors import DeploymentError
from scripts.protocol_deploy import load_token_config
from scripts.toolchain.compile import compile_contracts

pytestmark = pytest.mark.anvil


@pytest.fixture
def node() -> Iterator[AnvilNode]:
    n = start_anvil()
    try:
        yield n
    finally:
        n.stop()


def existing_tokens(w3: Web3) -> dict[str, str]:
    """Three ERC-20s deployed by another account before the protocol (the 'real' tokens)."""
    issuer = w3.eth.accounts[5]
    compiled = compile_contracts()
    return {
        sym: deploy_contract(w3, compiled, "MockERC20", [name, sym, dec], issuer).address
        for sym, name, dec in (
            ("USDC", "USD Coin", 6),
            ("WETH", "Wrapped Ether", 18),
            ("cbBTC", "Coinbase Wrapped BTC", 8),
        )
    }


def test_deploy_registers_existing_tokens_instead_of_mocks(node: AnvilNode, tmp_path: Path) -> None:
    w3 = node.web3()
    tokens = existing_tokens(w3)
    config = tmp_path / "tokens.toml"
    config.write_text(
        f"""
[settlement]
address = "{tokens["USDC"].lower()}"

[[collateral]]
address = "{tokens["WETH"]}"
underlying = "ETH"

[[collateral]]
address = "{tokens["cbBTC"]}"
underlying = "BTC"
"""
    )
    out = tmp_path / "deployment.json"
    signer = w3.eth.accounts[2]
    r = CliRunner().invoke(
        pm,
        ["deploy", "--tokens", str(config), "--signer", signer, "--quorum", "1", "--out", str(out)],
        env={"PM_RPC_URL": node.url, "PM_PRIVATE_KEY": ""},
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    dep = json.loads(out.read_text())
    listed = {t["symbol"]: (t["address"], t["decimals"], t["underlying"]) for t in dep["tokens"]}
    assert listed == {
        "USDC": (tokens["USDC"], 6, None),
        "WETH": (tokens["WETH"], 18, "ETH"),
        "cbBTC": (tokens["cbBTC"], 8, "BTC"),
    }
    assert dep["faucet"] == {}, "existing tokens cannot be minted by a faucet"
    vault = w3.eth.contract(address=dep["vault"], abi=vault_abi())
    assert vault.functions.settlementToken().call() == tokens["USDC"]
    registered = vault.functions.tokens().call()
    assert list(registered) == [tokens["WETH"], tokens["cbBTC"]]

    # the registered token works as collateral: a holder deposits it
    holder = w3.eth.accounts[7]
    weth = token_at(w3, tokens["WETH"])
    send(weth.functions.mint(holder, 3 * 10**18), w3.eth.accounts[5])
    send(weth.functions.approve(vault.address, 10**18), holder)
    send(vault.functions.createSubaccount(), holder)
    account = vault.functions.subaccountCount().call()
    assert vault.functions.ownerOf(account).call() == holder
    send(vault.functions.deposit(account, weth.address, 10**18), holder)
    assert vault.functions.collateralBalance(account, weth.address).call() == 10**18


def test_a_token_config_with_an_address_without_code_is_refused(
    node: AnvilNode, tmp_path: Path
) -> None:
    w3 = node.web3()
    config = tmp_path / "tokens.toml"
    config.write_text('[settlement]\naddress = "0x000000000000000000000000000000000000dEaD"\n')
    with pytest.raises(DeploymentError, match="no contract at"):
        load_token_config(w3, config)
    config.write_text('[[collateral]]\naddress = "0x00"\n')
    with pytest.raises(DeploymentError, match=r"no \[settlement\] table"):
        load_token_config(w3, config)
