"""``pm liquidate ID`` (scripts/liquidate.py) in the crash: every refusal is one line before
anything is sent, and a liquidator with enough USDC in its wallet takes the subaccount over
with the deposit the bot would send."""

from __future__ import annotations

import pytest

from keeper.api import ProofApi
from scripts.client import KeeperApi, Session
from scripts.errors import CliError
from scripts.liquidate import liquidate

from .conftest import Crash

pytestmark = pytest.mark.anvil


def _session(crash: Crash, who: object, lines: list[str], *, dry_run: bool = False) -> Session:
    return Session(crash.world.w3, crash.world.deployment, who, dry_run=dry_run, echo=lines.append)  # type: ignore[arg-type]


def test_pm_liquidate_refuses_in_one_line_then_takes_the_subaccount_over(crash: Crash) -> None:
    w = crash.world
    victim = crash.id(crash.victim)
    with ProofApi(crash.store, port=0) as server:
        api = KeeperApi(server.url)
        lines: list[str] = []
        # before the crash: healthy
        with pytest.raises(CliError, match=f"subaccount {victim} is not liquidatable"):
            liquidate(_session(crash, crash.liquidator, lines), api, victim)
        crash.shock()
        crash.lift_edge(crash.epoch())
        sent = {
            who.address: w.w3.eth.get_transaction_count(who.address)
            for who in (crash.victim, crash.pauper, crash.liquidator)
        }
        for who, account, match in (
            (crash.liquidator, 999_999, "unknown subaccount 999999"),
            (crash.victim, victim, "cannot be liquidated by its owner or an operator"),
            (crash.pauper, victim, "too little USDC in wallet"),
            (crash.liquidator, crash.id(crash.edge), "is not liquidatable"),
        ):
            with pytest.raises(CliError, match=match) as err:
                liquidate(_session(crash, who, lines), api, account)
            assert "\n" not in str(err.value)
        with pytest.raises(CliError, match="below the capital need"):
            liquidate(_session(crash, crash.liquidator, lines), api, victim, "1")
        # a dry run approves nothing for real and sends nothing
        lines.clear()
        liquidate(_session(crash, crash.liquidator, lines, dry_run=True), api, victim)
        assert any("capital need" in ln and "IM deficit" in ln for ln in lines)
        assert any("not simulated" in ln for ln in lines)
        for address, nonce in sent.items():
            assert w.w3.eth.get_transaction_count(address) == nonce
        assert crash.owner(crash.victim) == crash.victim.address
        # the real one
        wallet = crash.wallet6(crash.liquidator)
        plan = liquidate(_session(crash, crash.liquidator, lines), api, victim)
    assert crash.owner(crash.victim) == crash.liquidator.address
    assert crash.wallet6(crash.liquidator) == wallet - plan.deposit6
    assert plan.deposit6 >= plan.need.min_deposit6 > 0
    assert w.usdc.functions.allowance(crash.liquidator.address, w.vault.address).call() == 0
