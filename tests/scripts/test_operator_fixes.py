"""Operator fixes of issue 13 on the session's Anvil: `pm deploy` keeps a live deployment
file, deposits approve the exact amount unless --approve-max, `--config` after the keeper
subcommand, revert messages show field values, the license is an SPDX expression."""

from __future__ import annotations

import tomllib
from pathlib import Path

from click.testing import CliRunner
from eth_abi.abi import encode
from eth_utils.crypto import keccak

from keeper.abi import vault_abi
from keeper.cli import keeper_cli
from keeper.revert import decode_revert
from risk_engine.units import WAD
from scripts.toolchain.paths import REPO_ROOT
from tests.scripts.cli_support import SIGNER, CliEnv, key


def test_pm_deploy_refuses_to_overwrite_a_live_deployment_without_force(cli_env: CliEnv) -> None:
    before = (cli_env.deployments / "31337.json").read_text()
    cli_env.fails(
        "deploy", "--signer", SIGNER.address, "--quorum", "1", match="pass --force to overwrite"
    )
    assert (cli_env.deployments / "31337.json").read_text() == before


def test_pm_deploy_overwrites_a_stale_file_whose_vault_has_no_code(
    cli_env: CliEnv, tmp_path: Path
) -> None:
    stale = tmp_path / "stale.json"
    stale.write_text('{"vault": "0x000000000000000000000000000000000000dEaD"}')
    cli_env.ok("deploy", "--out", str(stale), "--signer", SIGNER.address, "--quorum", "1")
    assert "USDC" in stale.read_text()


def test_deposits_approve_exactly_the_amount_unless_approve_max(cli_env: CliEnv) -> None:
    who = key("approver")
    cli_env.w3.provider.make_request("anvil_setBalance", [who.address, hex(10 * WAD)])  # type: ignore[arg-type]
    cli_env.ok("faucet", key=who)
    usdc = cli_env.deployment["settlement_token"]
    vault = cli_env.deployment["vault"]
    token = cli_env.w3.eth.contract(
        address=usdc,
        abi=[
            {
                "name": "allowance",
                "type": "function",
                "stateMutability": "view",
                "inputs": [{"type": "address"}, {"type": "address"}],
                "outputs": [{"type": "uint256"}],
            }
        ],
    )
    r = cli_env.ok("deposit-cash", "12.5", key=who)
    assert "approve 12.5 USDC" in r.out
    # the approval was used up by the deposit: nothing left for anyone to pull
    assert token.functions.allowance(who.address, vault).call() == 0
    r = cli_env.ok("deposit-cash", "1", "--approve-max", key=who)
    assert "approve unlimited USDC" in r.out
    # an unlimited allowance is never spent down (OpenZeppelin ERC20)
    assert token.functions.allowance(who.address, vault).call() == 2**256 - 1


def test_keeper_takes_config_after_the_subcommand_too(tmp_path: Path) -> None:
    bad = tmp_path / "keeper.toml"
    bad.write_text("[chain]\nrpc_url = 'not a url'\n")
    for args in (["run", "--config", str(bad)], ["--config", str(bad), "run"]):
        r = CliRunner().invoke(keeper_cli, args, obj={})
        assert r.exit_code != 0
        assert "configuration:" in r.output, r.output  # the file was read, in both places
    r = CliRunner().invoke(keeper_cli, ["verify", "--epoch", "1", "--config", str(bad)], obj={})
    assert "configuration:" in r.output, r.output


def test_liquidator_takes_config_after_the_subcommand_too(tmp_path: Path) -> None:
    from keeper.liquidator.cli import liquidator_cli

    bad = tmp_path / "keeper.toml"
    bad.write_text("[chain]\nrpc_url = 'not a url'\n")
    for args in (["run", "--once", "--config", str(bad)], ["--config", str(bad), "run", "--once"]):
        r = CliRunner().invoke(liquidator_cli, args, obj=None)
        assert r.exit_code != 0
        assert "configuration:" in r.output, r.output  # the file was read, in both places


def test_a_revert_message_shows_the_epoch_number_not_the_field_name() -> None:
    selector = keccak(text="BoundsFromPreviousPrices(uint256,uint64)")[:4]
    msg = decode_revert(selector + encode(["uint256", "uint64"], [3, 42]), vault_abi())
    assert "wait for epoch 42" in msg and "epoch untilEpoch" not in msg


def test_the_license_is_an_spdx_expression_setuptools_does_not_warn_about() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert project["project"]["license"] == "MIT"
    assert "setuptools>=77" in project["build-system"]["requires"][0]


def test_times_in_messages_are_utc_dates() -> None:
    from scripts.client import utc

    assert utc(1_733_338_702) == "2024-12-04 18:58:22 UTC"
    selector = keccak(text="QuoteExpired(uint64,uint256)")[:4]
    msg = decode_revert(selector + encode(["uint64", "uint256"], [1_733_338_702, 5]), vault_abi())
    assert "deadline=1733338702 (2024-12-04 18:58:22 UTC)" in msg
