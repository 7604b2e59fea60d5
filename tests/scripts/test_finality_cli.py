"""``pm`` with the challenge window on (docs/protocol.md §10), against a vault of its own:
the owner sets the window and the minimum bond, the signer posts the bond, the real keeper
(a second in-process pipeline) posts epochs, a withdrawal with positions is queued, listed,
refused before its time and claimed after it (chain time moved inside an Anvil snapshot).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from risk_engine.units import WAD

from .cli_support import SIGNER, CliEnv, KeeperHandle, Result, key, start_keeper

pytestmark = pytest.mark.anvil

OWNER = key("finality owner")
MAKER = key("finality maker")
TAKER = key("finality taker")
CLAIMER = key("finality claimer")
WINDOW = 600


@pytest.fixture(scope="module")
def fresh(
    cli_env: CliEnv, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, KeeperHandle]]:
    tmp = tmp_path_factory.mktemp("finality")
    out = tmp / "deployment.json"
    for who in (OWNER, CLAIMER):
        cli_env.w3.provider.make_request("anvil_setBalance", [who.address, hex(100 * WAD)])  # type: ignore[arg-type]
    cli_env.ok(  # pm deploy through a subprocess, as a user runs it
        "deploy", "--out", str(out), "--signer", SIGNER.address, "--quorum", "1",
        "--max-age", "3600", key=OWNER,
    )  # fmt: skip
    k = start_keeper(cli_env.node.url, out, SIGNER, tmp / "keeper")
    try:
        yield out, KeeperHandle(k, k.api.url)
    finally:
        k.api.stop()
        k.store.close()


def _pm(ce: CliEnv, where: Path, kp: KeeperHandle, *args: str, **kw: object) -> Result:
    """``pm args`` in process (the CLI's own ``main``; subprocesses are covered in
    test_cli.py), which must succeed."""
    return ce.ok_at(where, kp.url, *args, **kw)


def _fails(ce: CliEnv, where: Path, kp: KeeperHandle, *args: str, match: str, **kw: object) -> None:
    ce.fails(*args, "--deployment", str(where), env={"PM_API_URL": kp.url}, match=match, **kw)  # type: ignore[arg-type]


def test_window_bond_queued_withdrawal_and_claim(
    cli_env: CliEnv, fresh: tuple[Path, KeeperHandle], tmp_path: Path
) -> None:
    where, kp = fresh
    w3 = cli_env.w3
    dep = json.loads(where.read_text())
    from keeper.abi import vault_abi

    vault = w3.eth.contract(address=dep["vault"], abi=vault_abi())
    weth = w3.eth.contract(
        address=dep["collateral"]["WETH"],
        abi=[
            {
                "name": "balanceOf",
                "type": "function",
                "stateMutability": "view",
                "inputs": [{"name": "a", "type": "address"}],
                "outputs": [{"name": "", "type": "uint256"}],
            }
        ],
    )

    # Only the owner sets the window; the CLI checks the range before sending.
    _fails(cli_env, where, kp, "dispute-config", str(WINDOW), "100", key=MAKER, match="owner")
    _fails(cli_env, where, kp, "dispute-config", "700000", "100", key=OWNER, match="7 days")
    _pm(cli_env, where, kp, "dispute-config", str(WINDOW), "100", key=OWNER)
    assert vault.functions.disputeConfig().call()[:2] == [WINDOW, 100 * WAD]

    # With the window on, an epoch needs the bond: the signer posts it from its wallet.
    _pm(cli_env, where, kp, "faucet", key=SIGNER)
    _pm(cli_env, where, kp, "bond", "post", "150", key=SIGNER)
    shown = _pm(cli_env, where, kp, "bond", "show").out
    assert f"challenge window: {WINDOW} s" in shown
    assert "signers' bond: 150.00 USD (minimum 100.00 USD)" in shown
    kp.epoch()

    # A flat subaccount is paid at once; one with positions is queued.
    for who, deposits in (
        (MAKER, (("deposit", "WETH", "5"), ("deposit-cash", "50000"))),
        (TAKER, (("deposit-cash", "50000"),)),
    ):
        for args in (("faucet",), *deposits):
            _pm(cli_env, where, kp, *args, key=who)
    kp.epoch()
    q = tmp_path / "q.json"
    _pm(cli_env, where, kp, "quote", "--leg", "ETH-PERP:-1:3500", "--out", str(q), key=MAKER)
    _pm(cli_env, where, kp, "trade", str(q), key=TAKER)
    kp.epoch()
    kp.epoch()  # the first epoch after the trade carries bounds at the previous prices

    wallet = weth.functions.balanceOf(MAKER.address).call()
    r = _pm(cli_env, where, kp, "withdraw", "WETH", "0.1", key=MAKER)
    assert "queued as withdrawal 1 (challenge window)" in r.out, r.out
    assert weth.functions.balanceOf(MAKER.address).call() == wallet  # not paid yet
    listed = _pm(cli_env, where, kp, "withdrawals", key=MAKER).out
    assert "withdrawal 1:" in listed and "0.1 WETH" in listed and "waiting until" in listed
    assert "withdrawal 1:" in _pm(cli_env, where, kp, "withdrawals", "--all").out
    other = _pm(cli_env, where, kp, "withdrawals", "--owner", TAKER.address).out
    assert "no pending withdrawal" in other
    _fails(cli_env, where, kp, "claim-withdrawal", "1", key=CLAIMER, match="can be claimed from")
    _fails(
        cli_env, where, kp, "claim-withdrawal", "9", key=CLAIMER, match="no pending withdrawal 9"
    )

    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[attr-defined]
    try:
        now = int(w3.eth.get_block("latest")["timestamp"])
        w3.provider.make_request("evm_mine", [now + WINDOW + 1])  # type: ignore[attr-defined]
        assert (
            "ready: `pm claim-withdrawal`" in _pm(cli_env, where, kp, "withdrawals", key=MAKER).out
        )
        _pm(cli_env, where, kp, "claim-withdrawal", "1", key=CLAIMER)  # anyone may send it
        assert weth.functions.balanceOf(MAKER.address).call() == wallet + WAD // 10
        assert "no pending withdrawal" in _pm(cli_env, where, kp, "withdrawals", key=MAKER).out
        _fails(cli_env, where, kp, "claim-withdrawal", "1", key=CLAIMER, match="no pending")
        # Every root is final now: the owner may take the whole bond back.
        _pm(cli_env, where, kp, "bond", "withdraw", "150", key=OWNER)
        assert vault.functions.disputeConfig().call()[2] == 0
    finally:
        assert w3.provider.make_request("evm_revert", [snapshot])["result"] is True  # type: ignore[attr-defined]

    # While the newest root is disputable only the bond above the minimum can leave.
    _fails(cli_env, where, kp, "bond", "withdraw", "60", key=OWNER, match="bond")
    _pm(cli_env, where, kp, "bond", "withdraw", "50", key=OWNER)
    _fails(cli_env, where, kp, "bond", "withdraw", "1", key=MAKER, match="owner")
    _fails(cli_env, where, kp, "claim-payout", key=CLAIMER, match="nothing to claim")
