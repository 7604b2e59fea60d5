"""The keeper facing a vault that refuses its post (docs/operations.md §6 and §10,
"Reference prices"): WETH's on-chain reference disagrees with the market feed by more than
its maximum deviation, so `postEpoch` reverts `PriceDeviatesFromReference` in simulation.
The pipeline abandons the epoch number, logs the decoded reason in one readable line and
counts it by error name; once the reference agrees again, the next epoch is mined."""

from __future__ import annotations

import logging

import pytest

from keeper.eip712 import Epoch
from keeper.metrics import KeeperMetrics
from keeper.store import Store
from risk_engine.units import WAD
from scripts.deploy import deploy_contract
from scripts.pipeline_world import World, make_pipeline
from scripts.protocol_deploy import PriceReferenceSpec, deploy_price_references
from scripts.toolchain.compile import compile_contracts

pytestmark = pytest.mark.anvil


def test_refused_post_is_logged_readably_and_counted(
    world: World, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    compiled = compile_contracts()
    # ETH / USD at 1,000: the simulated market trades ETH far above it
    feed = deploy_contract(world.w3, compiled, "MockAggregatorV3", [8, 1_000 * 10**8], world.owner)
    deploy_price_references(
        world.w3,
        compiled,
        vault=world.vault,
        owner=world.owner,
        references=[PriceReferenceSpec("WETH", feed.address, 5 * WAD // 100, 3_600)],
        tokens={"WETH": world.tokens["WETH"].address},
    )
    metrics = KeeperMetrics()
    p = make_pipeline(world, store, metrics=metrics)
    world.fund_cash(world.actor("alice"), 10_000)

    with caplog.at_level(logging.ERROR, logger="keeper.pipeline"):
        r = p.run_epoch()
    assert r.status == "failed" and r.epoch == 1
    assert r.reason is not None and "PriceDeviatesFromReference(token=" in r.reason
    assert "referencePrice=1000 [" in r.reason and "maxDeviation=0.05 [" in r.reason
    refused = [
        rec for rec in caplog.records if rec.getMessage() == "postEpoch refused by the vault"
    ]
    assert len(refused) == 1
    assert refused[0].__dict__["error"] == "PriceDeviatesFromReference"
    assert "\n" not in refused[0].__dict__["why"]
    counted = metrics.registry.get_sample_value(
        "pm_keeper_post_refusals_total", {"error": "PriceDeviatesFromReference"}
    )
    assert counted == 1.0
    assert world.vault.functions.currentEpoch().call()[0] == 0

    # the reference agrees with the attested price again: the next epoch is mined
    rec = store.get_epoch(1)
    assert rec is not None and rec.header is not None
    attested = Epoch.from_json(rec.header).tokens[0].price
    world.tx(feed.functions.setAnswer(attested // 10**10), world.owner)
    r2 = p.run_epoch()
    assert r2.status == "mined", r2
    assert (
        metrics.registry.get_sample_value(
            "pm_keeper_post_refusals_total", {"error": "PriceDeviatesFromReference"}
        )
        == 1.0
    )
