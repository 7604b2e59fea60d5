// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {InvariantBase} from "./InvariantBase.sol";

/// @notice Scripted sequences through the same handlers as the invariant suite: they show that
/// the paths the invariants rely on are reached (a liquidation with and without bad debt, an
/// option settlement, safe mode), and that the ghost checks DO fail when the posted numbers
/// are not the truth (so INV-6 and INV-8 cannot pass vacuously).
contract ScenariosTest is InvariantBase {
    // Handler seeds: account(0) = alice's first subaccount, account(1) = bob's, account(2) =
    // carol's; a pair (0, b) is (alice's, account 1 + b % 9). A liquidator seed b picks the
    // actor 1 + b % 4 after the owner (alice: 1 = carol). Instrument seed 0 = BTC perp. Size
    // seed = 2 * size (+1: short).
    uint256 internal constant ALICE = 0;
    uint256 internal constant TO_BOB = 0;
    uint256 internal constant TO_CAROL = 1;
    uint256 internal constant AT_MARK = 100;

    /// alice (maker) buys 30 BTC perp from bob at 60k: $1.8M on $200k, IM $180k, MM $90k.
    function _aliceLong30() internal {
        trades.trade(ALICE, TO_BOB, 0, 60e18, AT_MARK, false);
        assertEq(model.calls("trade1"), 1);
        (int256 size,) = vault.position(model.accountAt(ALICE), 1);
        assertEq(size, 30e18);
        _checkAll();
    }

    function test_liquidation_afterTenPercentDrop() public {
        _aliceLong30();
        market.moveMarketAndPost(0.9e18, 1e18, 1e18, 0, 0); // alice: equity ~$20k < MM ~$81k
        assertLt(model.mmSurplus(model.accountAt(ALICE), true), 0);
        liquidations.liquidate(ALICE, TO_CAROL);
        assertEq(model.calls("liquidate"), 1, "carol liquidates alice");
        assertEq(model.violation(), "");
        assertGt(vault.insuranceFund(), 0, "the fund took its share of the penalty");
        assertEq(vault.ownerOf(model.accountAt(ALICE)), model.actor(2), "carol owns alice's subaccount");
        _checkAll();
    }

    function test_claimPayout_afterALiquidationThatPaysTheOwner() public {
        _aliceLong30();
        market.moveMarketAndPost(0.93e18, 1e18, 1e18, 0, 0); // alice: equity ~$74k < MM ~$84k
        liquidations.liquidate(ALICE, TO_CAROL);
        assertEq(model.calls("liquidate"), 1);
        // equity above the penalty: alice is owed the rest, and claims it; the books balance.
        assertGt(vault.payoutOf(model.actor(ALICE)), 40_000e18);
        _checkAll();
        collateral.claimPayout(ALICE);
        assertEq(model.calls("claimPayout"), 1);
        assertLt(vault.payoutOf(model.actor(ALICE)), 1e12);
        assertEq(model.violation(), "");
        _checkAll();
    }

    function test_transfer_movesOnlyTheOwner() public {
        _aliceLong30();
        collateral.transfer(ALICE, 0); // to bob
        assertEq(model.calls("transfer"), 1);
        assertEq(vault.ownerOf(model.accountAt(ALICE)), model.actor(1));
        assertEq(model.violation(), "");
        // bob now trades it; alice cannot
        trades.trade(ALICE, TO_CAROL, 1, 2e18, AT_MARK, false);
        assertEq(model.calls("trade1"), 2);
        _checkAll();
    }

    function test_liquidation_withBadDebtCoveredByTheFund() public {
        collateral.depositInsurance(2, 100_000e6);
        collateral.depositCash(2, 500_000e6); // carol can carry what she takes over
        _aliceLong30();
        market.moveMarketAndPost(0.8e18, 1e18, 1e18, 0, 0); // alice: equity ~ -$160k
        liquidations.liquidate(ALICE, TO_CAROL);
        assertEq(model.calls("liquidateBadDebt"), 1);
        assertEq(vault.insuranceFund(), 0, "the fund covered what it could");
        assertGt(vault.badDebt(), 0, "the rest is recorded");
        _checkAll();
    }

    function test_liquidation_refusedForAHealthyAccount() public {
        _aliceLong30();
        market.moveMarketAndPost(1.05e18, 1e18, 1e18, 0, 0);
        liquidations.liquidate(ALICE, TO_CAROL);
        assertEq(model.calls("liquidate"), 0);
        assertEq(model.calls("liquidateRefused"), 1);
        _checkAll();
    }

    function test_fundingAndSettlement_keepCashConserved() public {
        // alice buys 10 of the 1-hour BTC call (id 5) from bob, then funding moves on a perp.
        trades.trade(ALICE, TO_BOB, 4, 20e18, AT_MARK, false);
        trades.trade(ALICE, TO_CAROL, 0, 2e18 + 1, AT_MARK, false); // alice short 1 BTC perp
        market.moveMarketAndPost(1.1e18, 1e18, 1e18, 100e18, 0);
        market.applyFunding(ALICE);
        _checkAll();
        for (uint256 i; i < 5; ++i) {
            market.warp(30 minutes);
            market.post();
        }
        (uint256 price, bool isSet) = vault.settlementPrice(5);
        assertTrue(isSet, "the expired call got its settlement price");
        assertEq(price, model.btcSpot());
        market.settle(ALICE);
        market.settle(1); // bob
        assertEq(model.calls("settle"), 2);
        _checkAll();
    }

    function test_safeMode_afterMaxAgeWithoutEpoch() public {
        _aliceLong30();
        market.warp(40 minutes);
        market.warp(40 minutes);
        assertTrue(vault.isSafeMode());
        liquidations.liquidate(ALICE, TO_CAROL); // skipped: nothing attested is fresh
        _checkAll();
        market.post();
        assertFalse(vault.isSafeMode());
        _checkAll();
    }

    /* THE GHOST CHECKS CAN FAIL */

    function test_ghostINV6_tripsWhenALeafOverstatesMm() public {
        _aliceLong30();
        // A lying epoch: alice's MM overstated by $1M. The vault trusts the signers and lets
        // carol liquidate a healthy alice; the ghost check must catch it.
        model.postEpochWithLie(model.accountAt(ALICE), 0, 1_000_000e18);
        liquidations.liquidate(ALICE, TO_CAROL);
        assertEq(model.calls("liquidate"), 1);
        assertEq(model.violation(), "INV-6: an account with true MM surplus >= 0 was liquidated");
    }

    function test_ghostINV8_tripsWhenALeafOverstatesEquity() public {
        _aliceLong30();
        // alice's equity overstated by $1M: the vault lets her withdraw cash she needs as IM.
        model.postEpochWithLie(model.accountAt(ALICE), 1_000_000e18, 0);
        collateral.withdrawCash(ALICE, 150_000e6);
        assertEq(model.calls("withdrawCash"), 1);
        assertEq(model.violation(), "INV-8: a withdrawal left the true IM surplus below zero");
    }
}
