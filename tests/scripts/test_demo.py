"""``make demo`` in CI: ``python -m scripts.demo --fast`` as a subprocess, as a user runs it.

The successful run keeps its Anvil (``--keep``) so that this test re-checks the outcome on
chain itself, from the addresses in ``summary.json`` and the vault's ABI, without the demo's
own checking code: the naked book was liquidated by transfer (a ``Liquidated`` event, its
subaccount now the liquidator's with the positions it opened, the previous owner's payout
claimable, the liquidator's deposit its capital used, within its wallet) and the hedged books
were not (no event, same owner, still the positions they opened); sizes still sum to zero per
instrument over every subaccount; the printed liquidation transaction is the one on chain.
The test then stops that Anvil by its pid.

The guard run gives the cash books only 1x their portfolio IM: the crash then takes the
options book below maintenance too, and the demo must exit 1 and name it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from keeper.abi import vault_abi
from risk_engine.units import WAD
from scripts.toolchain.paths import REPO_ROOT

pytestmark = [pytest.mark.anvil, pytest.mark.slow]

DEMO_TIMEOUT = 240  # seconds; the demo itself must finish in under 180


def _run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PM_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    return subprocess.run(
        [sys.executable, "-m", "scripts.demo", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT,
    )


def _stop_anvil(pid: int) -> None:
    """Stop the Anvil the demo left running: only that pid, and only if it is an anvil."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return
    if b"anvil" not in cmdline:
        return
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        if not Path(f"/proc/{pid}").exists():
            return
        try:
            if Path(f"/proc/{pid}/status").read_text().find("State:\tZ") >= 0:
                return
        except OSError:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


def _wall_time(stdout: str) -> float:
    m = re.search(r"Total wall time ([0-9.]+) s", stdout)
    assert m, "the demo did not print its wall time"
    return float(m.group(1))


def test_help_lists_the_options() -> None:
    r = _run_demo("--help")
    assert r.returncode == 0, r.stderr
    for option in ("--fast", "--keep", "--out", "--seed", "--capital-multiple"):
        assert option in r.stdout


def test_demo_liquidates_the_naked_book_and_not_the_hedged_ones(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    r = _run_demo("--fast", "--keep", "--out", str(out))
    summary_file = out / "summary.json"
    summary: dict[str, Any] = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
    try:
        assert r.returncode == 0, f"demo failed ({r.returncode}):\n{r.stdout[-4000:]}\n{r.stderr}"
        assert "Traceback" not in r.stderr
        assert _wall_time(r.stdout) < 180
        assert summary["ok"] is True and summary["anvilKept"] is True
        _check_on_chain(summary, r.stdout)
        for label in ("options-mm", "carry", "naked"):
            report = Path(summary["reports"][label])
            assert report.is_file() and report.read_text().lstrip().startswith("<!DOCTYPE html")
            assert str(report) in r.stdout
    finally:
        if summary.get("anvilPid"):
            _stop_anvil(int(summary["anvilPid"]))


def _check_on_chain(summary: dict[str, Any], stdout: str) -> None:
    w3 = Web3(Web3.HTTPProvider(summary["rpcUrl"], request_kwargs={"timeout": 10}))
    assert w3.eth.chain_id == summary["chainId"]
    vault = w3.eth.contract(address=summary["vault"], abi=vault_abi())
    books = summary["books"]
    liquidated = {
        int(ev["args"]["account"]): ev
        for ev in vault.events.Liquidated().get_logs(from_block=summary["deploymentBlock"])
    }

    def positions(account: int) -> dict[int, int]:
        state = vault.functions.accountState(account).call()
        return {int(i): int(s) for i, s in zip(state[4], state[5], strict=True) if s}

    def opened(label: str) -> dict[int, int]:
        return {int(f["id"]): int(Decimal(f["size"]) * WAD) for f in books[label]["fills"]}

    # the naked book: its subaccount taken over by the bot, with the positions it opened
    naked = books["naked"]["subaccount"]
    assert naked in liquidated, "no Liquidated event for the naked book"
    ev = liquidated[naked]
    assert ev["args"]["liquidator"] == summary["liquidator"]
    assert ev["args"]["previousOwner"] == books["naked"]["address"]
    assert vault.functions.ownerOf(naked).call() == summary["liquidator"]
    assert positions(naked) == opened("naked")
    assert vault.functions.payoutOf(books["naked"]["address"]).call() == ev["args"]["pay"] > 0
    # the liquidator's capital used: its deposit, out of a 10,000 USD wallet
    used = Decimal(int(ev["args"]["deposit6"])) / 10**6
    assert 0 < used <= 10_000
    assert summary["liquidatorCapitalUsedUsd"] == pytest.approx(float(used))
    assert f"liquidator's capital used {used:,.2f} USD" in stdout
    # the liquidation the demo printed is the one on chain
    tx = summary["crash"]["liquidation"]
    assert "0x" + bytes(ev["transactionHash"]).hex() == tx["tx_hash"]
    receipt = w3.eth.get_transaction_receipt(tx["tx_hash"])
    assert receipt["status"] == 1
    assert receipt["blockNumber"] == tx["block"] and receipt["gasUsed"] == tx["gas_used"]
    assert tx["tx_hash"] in stdout and f"gas {tx['gas_used']:,}" in stdout
    # the hedged books: no liquidation, still exactly the positions they opened
    for label in ("options-mm", "carry"):
        account = books[label]["subaccount"]
        assert books[label]["hedged"] is True
        assert account not in liquidated, f"{label} was liquidated"
        assert vault.functions.ownerOf(account).call() == books[label]["address"]
        assert positions(account) == opened(label), label
        assert opened(label), f"{label} opened no positions"
    # no size created or lost: every instrument sums to zero over every subaccount
    totals: dict[int, int] = {}
    for account in range(1, vault.functions.subaccountCount().call() + 1):
        for iid, size in positions(account).items():
            totals[iid] = totals.get(iid, 0) + size
    assert all(v == 0 for v in totals.values()), totals


def test_demo_fails_when_a_hedged_book_is_taken_down_too(tmp_path: Path) -> None:
    """With only 1x its portfolio IM the options book cannot absorb the crash: the demo
    must not claim success."""
    out = tmp_path / "demo-thin"
    r = _run_demo("--fast", "--capital-multiple", "1", "--out", str(out))
    assert r.returncode == 1, r.stdout[-3000:]
    assert "Traceback" not in r.stderr
    failed = [ln for ln in r.stderr.splitlines() if ln.startswith("DEMO FAILED")]
    assert len(failed) == 1, r.stderr
    assert "options-mm" in failed[0]
    assert "carry" not in failed[0] and "naked" not in failed[0]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ok"] is False and "options-mm" in summary["reason"]
    # without --keep the demo stopped its Anvil
    pid = int(summary["anvilPid"])
    assert (
        not Path(f"/proc/{pid}").exists() or "State:\tZ" in Path(f"/proc/{pid}/status").read_text()
    )


def test_demo_fails_when_the_naked_book_survives(tmp_path: Path) -> None:
    """With 4x its IM the naked book absorbs the crash: nothing to liquidate, and the demo
    must say that its point was not made instead of exiting 0."""
    out = tmp_path / "demo-rich"
    r = _run_demo("--fast", "--capital-multiple", "4", "--out", str(out))
    assert r.returncode == 1, r.stdout[-3000:]
    assert "Traceback" not in r.stderr
    failed = [ln for ln in r.stderr.splitlines() if ln.startswith("DEMO FAILED")]
    assert len(failed) == 1, r.stderr
    assert "naked: Liquidated event MISSING" in failed[0]
    assert "options-mm" not in failed[0] and "carry" not in failed[0]
    assert "none: the naked book was not liquidated" in r.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ok"] is False and summary["crash"]["liquidation"] is None
