"""Reference prices on a real Anvil (docs/protocol.md §4, "Reference prices"): with WETH's
reference set to a mock Chainlink feed (5 %, 1 hour), an epoch priced within the deviation
is posted, one beyond it is refused with a readable reason, and a feed that is stale,
answers 0 or reverts is skipped with an event (the decision of docs/security.md §1)."""

from __future__ import annotations

from typing import Any

import pytest
from web3.logs import DISCARD

from keeper.eip712 import sign_epoch
from risk_engine.units import WAD

from .conftest import Market
from .scenario import (
    CALL_LEAF,
    PERP_LEAF,
    REFERENCE_MAX_DEVIATION,
    REFERENCE_MAX_STALENESS,
    fund_all,
    price_references,
)

pytestmark = pytest.mark.anvil


def _skipped(refs: Any, receipt: Any) -> list[dict[str, Any]]:
    return [
        dict(e["args"])
        for e in refs.events.PriceReferenceSkipped().process_receipt(receipt, errors=DISCARD)
    ]


def _weth_price(m: Market) -> int:
    return int(m.vault.functions.tokenPrices().call()[0][1])


def test_reference_is_deployed_and_set_as_pm_deploy_does(anvil_market: Market) -> None:
    m = anvil_market
    feed, refs = price_references(m)
    assert m.vault.functions.priceReferences().call() == refs.address
    assert refs.functions.vault().call() == m.vault.address
    assert refs.functions.referencedTokens().call() == [m.weth.address]
    assert refs.functions.priceReference(m.weth.address).call() == [
        feed.address,
        REFERENCE_MAX_DEVIATION,
        REFERENCE_MAX_STALENESS,
        8,
    ]


def test_price_within_the_deviation_is_posted(anvil_market: Market) -> None:
    m = anvil_market
    price_references(m)
    fund_all(m)
    m.post(m.header([PERP_LEAF, CALL_LEAF], weth_price=3_150 * WAD))  # +5 % exactly
    assert _weth_price(m) == 3_150 * WAD
    m.post(m.header([PERP_LEAF, CALL_LEAF], weth_price=2_850 * WAD))  # -5 % exactly
    assert m.vault.functions.currentEpoch().call()[0] == 2


def test_price_beyond_the_deviation_is_refused_with_a_readable_reason(
    anvil_market: Market,
) -> None:
    m = anvil_market
    price_references(m)
    fund_all(m)
    header = m.header([PERP_LEAF, CALL_LEAF], weth_price=3_151 * WAD)
    m.ready(header)
    sigs = sign_epoch(header, m.signers[:2], m.domain)
    r = m.revert_of(m.vault.functions.postEpoch(header.to_abi(), sigs), m.owner)
    assert r.name == "PriceDeviatesFromReference"
    message = str(r)
    assert f"token={m.weth.address}" in message
    assert "price=3151 [" in message and "referencePrice=3000 [" in message
    assert "deviation=0.050333 [50333333333333334]" in message  # 151 / 3,000, rounded up
    assert "maxDeviation=0.05 [" in message
    assert "further than maxDeviation from its on-chain reference feed" in message
    assert m.vault.functions.currentEpoch().call()[0] == 0  # nothing posted


@pytest.mark.parametrize(
    ("case", "reason"), [("stale", 3), ("zero answer", 2), ("negative answer", 2), ("reverts", 1)]
)
def test_unreadable_reference_is_skipped_with_an_event(
    anvil_market: Market, case: str, reason: int
) -> None:
    m = anvil_market
    feed, refs = price_references(m)
    fund_all(m)
    now = m.chain.now()
    if case == "stale":
        m.tx(feed.functions.setRound(2, 3_000 * 10**8, now - REFERENCE_MAX_STALENESS - 60), m.owner)
    elif case == "zero answer":
        m.tx(feed.functions.setRound(2, 0, now), m.owner)
    elif case == "negative answer":
        m.tx(feed.functions.setRound(2, -1, now), m.owner)
    else:
        m.tx(feed.functions.setReverts(True), m.owner)
    # far from 3,000: the check would refuse it, but the reference cannot be read
    receipt = m.post(m.header([PERP_LEAF, CALL_LEAF], weth_price=9_000 * WAD))
    assert _weth_price(m) == 9_000 * WAD
    (event,) = _skipped(refs, receipt)
    assert (event["epoch"], event["token"], event["reason"]) == (1, m.weth.address, reason)
    # the vault's ABI lists the event too: the keeper decodes it from the vault's logs' ABI
    assert any(e.get("name") == "PriceReferenceSkipped" for e in m.abi)


def test_removed_reference_no_longer_refuses(anvil_market: Market) -> None:
    m = anvil_market
    _, refs = price_references(m)
    fund_all(m)
    m.tx(refs.functions.setPriceReference(m.weth.address, "0x" + "00" * 20, 0, 0), m.owner)
    m.post(m.header([PERP_LEAF, CALL_LEAF], weth_price=9_000 * WAD))
    assert _weth_price(m) == 9_000 * WAD
