// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {BaseTest} from "./BaseTest.sol";
import {Errors} from "../../../contracts/interfaces/Errors.sol";
import {Events} from "../../../contracts/interfaces/Events.sol";
import {
    Epoch,
    FundingUpdate,
    Settlement,
    AccountLeaf,
    Quote,
    InstrumentProof,
    MarginProof
} from "../../../contracts/interfaces/IMarginVault.sol";

/// @notice applyFunding and settle: funding per position index, payoff at settlement, rounding
/// against the account, safe-mode behaviour.
contract FundingSettlementTest is BaseTest {
    function setUp() public override {
        super.setUp();
        _depositCash(alice, 100_000e6);
        _depositCash(bob, 100_000e6);
        _post2(_leaf(alice, 100_000e18, 0, 0), _leaf(bob, 100_000e18, 0, 0));
    }

    /* FUNDING */

    function test_applyFunding_longPaysShortReceives() public {
        _fill(_quote(alice, bob, btcPerp, 2e18, 60_000e18, 1), aliceKey, bob);
        int256 a0 = _cash(alice);
        int256 b0 = _cash(bob);
        (int256 lo0, int256 hi0) = _cum(alice);
        _postFunding(btcPerp, 10e18); // $10 per unit since the positions opened
        vm.expectEmit(address(vault));
        emit Events.FundingApplied(aliceAcct, btcPerp, 20e18, 10e18);
        vault.applyFunding(aliceAcct);
        vault.applyFunding(bobAcct);
        assertEq(_cash(alice), a0 - 20e18);
        assertEq(_cash(bob), b0 + 20e18);
        (, int256 idx) = vault.position(aliceAcct, btcPerp);
        assertEq(idx, 10e18);
        // The leaf counts pending funding: only the 1-wei rounding enters the bound.
        (int256 lo, int256 hi) = _cum(alice);
        assertEq(lo, lo0 - 1);
        assertEq(hi, hi0);
        // Applying again charges nothing.
        vault.applyFunding(aliceAcct);
        assertEq(_cash(alice), a0 - 20e18);
    }

    function test_applyFunding_roundsAgainstBothSides() public {
        _fill(_quote(alice, bob, btcPerp, 3, 60_000e18, 1), aliceKey, bob); // 3 wei of size
        int256 a0 = _cash(alice);
        int256 b0 = _cash(bob);
        _postFunding(btcPerp, 0.5e18); // 3 * 0.5 = 1.5 wei
        vault.applyFunding(aliceAcct);
        vault.applyFunding(bobAcct);
        assertEq(_cash(alice), a0 - 2, "long pays rounded up");
        assertEq(_cash(bob), b0 + 1, "short receives rounded down");
    }

    function test_applyFunding_newPositionStartsAtCurrentIndex() public {
        vm.roll(block.number + 1);
        AccountLeaf[] memory l = new AccountLeaf[](2);
        l[0] = _leaf(alice, 100_000e18, 0, 0);
        l[1] = _leaf(bob, 100_000e18, 0, 0);
        Epoch memory e = _buildEpoch(l);
        e.funding = new FundingUpdate[](1);
        e.funding[0] = FundingUpdate(btcPerp, 7e18);
        _postHeader(e);
        _fill(_quote(alice, bob, btcPerp, 1e18, 60_000e18, 1), aliceKey, bob);
        (, int256 idx) = vault.position(aliceAcct, btcPerp);
        assertEq(idx, 7e18);
        int256 a0 = _cash(alice);
        vault.applyFunding(aliceAcct);
        assertEq(_cash(alice), a0, "no funding for the time before the position existed");
    }

    function test_applyFunding_chargedBeforeAnyPositionChange() public {
        _fill(_quote(alice, bob, btcPerp, 1e18, 60_000e18, 1), aliceKey, bob);
        _post2(_leaf(alice, 100_000e18, 6000e18, 4800e18), _leaf(bob, 100_000e18, 6000e18, 4800e18));
        vm.roll(block.number + 1);
        AccountLeaf[] memory l = new AccountLeaf[](2);
        l[0] = _leaf(alice, 100_000e18, 6000e18, 4800e18);
        l[1] = _leaf(bob, 100_000e18, 6000e18, 4800e18);
        Epoch memory e = _buildEpoch(l);
        e.funding = new FundingUpdate[](1);
        e.funding[0] = FundingUpdate(btcPerp, -4e18); // shorts pay longs
        _postHeader(e);
        int256 a0 = _cash(alice);
        _fill(_quote(alice, bob, btcPerp, -1e18, 60_000e18, 2), aliceKey, bob); // alice closes
        assertEq(_cash(alice), a0 + 4e18 + 60_000e18);
        assertEq(_size(alice, btcPerp), 0);
    }

    function test_applyFunding_ignoresOptionsAndEmptyAccounts() public {
        _fill(_quote(alice, bob, btcCall, 1e18, 2000e18, 1), aliceKey, bob);
        int256 a0 = _cash(alice);
        vault.applyFunding(aliceAcct);
        vault.applyFunding(carolAcct);
        assertEq(_cash(alice), a0);
        assertEq(_cash(carol), 0);
    }

    /* SETTLEMENT */

    function test_settle_callPaysMaxSMinusK() public {
        _fill(_quote(alice, bob, btcCall, 1e18, 2000e18, 1), aliceKey, bob);
        int256 a0 = _cash(alice);
        int256 b0 = _cash(bob);
        vm.warp(EXPIRY);
        _postSettlement(btcCall, 65_000e18);
        (int256 lo0,) = _cum(alice);
        vm.expectEmit(address(vault));
        emit Events.OptionSettled(aliceAcct, btcCall, 1e18, 65_000e18, 5000e18);
        vault.settle(aliceAcct, btcCall);
        vault.settle(bobAcct, btcCall);
        assertEq(_cash(alice), a0 + 5000e18);
        assertEq(_cash(bob), b0 - 5000e18);
        assertEq(_size(alice, btcCall), 0);
        assertEq(_size(bob, btcCall), 0);
        (int256 lo,) = _cum(alice);
        assertEq(lo, lo0 - 1);
        (,,,, uint32[] memory ids,,,) = vault.accountState(aliceAcct);
        assertEq(ids.length, 0);
    }

    function test_postEpoch_revertsWhenSettlementBeforeExpiryOnChain() public {
        vm.warp(EXPIRY - 30);
        vm.roll(block.number + 1);
        Epoch memory e = _buildEpoch(new AccountLeaf[](0));
        e.timestamp = EXPIRY + 30; // past expiry, within futureTolerance of the chain
        e.settlements = new Settlement[](1);
        e.settlements[0] = Settlement(btcCall, 70_000e18);
        bytes[] memory sigs = _signEpoch(e, _quorumKeys());
        vm.expectRevert(abi.encodeWithSelector(Errors.NotExpired.selector, btcCall, EXPIRY, EXPIRY - 30));
        vault.postEpoch(e, sigs);
        vm.warp(EXPIRY); // the chain reaches expiry: the same header is accepted
        _postHeader(e);
        (uint256 price, bool isSet) = vault.settlementPrice(btcCall);
        assertTrue(isSet);
        assertEq(price, 70_000e18);
    }

    function test_executeQuote_revertsWhenOptionSettled() public {
        vm.warp(EXPIRY);
        _postSettlement(btcCall, 70_000e18); // the call's INSTRUMENT leaf is still in the root
        Quote memory q = _quote(alice, bob, btcCall, 1e18, 2000e18, 7);
        bytes memory sig = _signQuote(q, aliceKey);
        InstrumentProof[] memory ips = _legProofs(q);
        MarginProof memory none = _emptyProof();
        // settled implies expired on chain (settlement needs expiry <= block.timestamp)
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(Errors.InstrumentExpired.selector, btcCall, EXPIRY));
        vault.executeQuote(q, sig, ips, none, bobAcct, none);
    }

    function test_settle_putPaysMaxKMinusS() public {
        _fill(_quote(alice, bob, btcPut, 2e18, 1500e18, 1), aliceKey, bob);
        int256 a0 = _cash(alice);
        vm.warp(EXPIRY + 1);
        _postSettlement(btcPut, 55_000e18);
        vault.settle(aliceAcct, btcPut);
        assertEq(_cash(alice), a0 + 10_000e18);
    }

    function test_settle_outOfTheMoneyPaysNothing() public {
        _fill(_quote(alice, bob, btcPut, 1e18, 1500e18, 1), aliceKey, bob);
        int256 b0 = _cash(bob);
        vm.warp(EXPIRY);
        _postSettlement(btcPut, 70_000e18);
        vault.settle(bobAcct, btcPut);
        assertEq(_cash(bob), b0);
        assertEq(_size(bob, btcPut), 0);
    }

    function test_settle_roundsAgainstTheAccount() public {
        _fill(_quote(alice, bob, btcCall, 3, 2000e18, 1), aliceKey, bob); // 3 wei of size
        int256 a0 = _cash(alice);
        int256 b0 = _cash(bob);
        vm.warp(EXPIRY);
        _postSettlement(btcCall, 60_000e18 + 0.5e18); // payoff $0.5: 1.5 wei
        vault.settle(aliceAcct, btcCall);
        vault.settle(bobAcct, btcCall);
        assertEq(_cash(alice), a0 + 1);
        assertEq(_cash(bob), b0 - 2);
    }

    function test_settle_worksInSafeMode() public {
        _fill(_quote(alice, bob, btcCall, 1e18, 2000e18, 1), aliceKey, bob);
        vm.warp(EXPIRY);
        _postSettlement(btcCall, 61_000e18);
        vm.warp(block.timestamp + MAX_AGE + 1);
        assertTrue(vault.isSafeMode());
        vault.settle(bobAcct, btcCall);
        assertEq(_size(bob, btcCall), 0);
    }

    function test_settle_revertsWhenPriceNotSetOrNoPositionOrPerp() public {
        _fill(_quote(alice, bob, btcCall, 1e18, 2000e18, 1), aliceKey, bob);
        vm.expectRevert(abi.encodeWithSelector(Errors.SettlementPriceNotSet.selector, btcCall));
        vault.settle(aliceAcct, btcCall);
        vm.warp(EXPIRY);
        _postSettlement(btcCall, 61_000e18);
        vm.expectRevert(abi.encodeWithSelector(Errors.NoPosition.selector, carolAcct, btcCall));
        vault.settle(carolAcct, btcCall);
        vm.expectRevert(abi.encodeWithSelector(Errors.NotAnOption.selector, btcPerp));
        vault.settle(aliceAcct, btcPerp);
        vm.expectRevert(abi.encodeWithSelector(Errors.UnknownInstrument.selector, 0));
        vault.settle(aliceAcct, 0);
        vault.settle(aliceAcct, btcCall);
        vm.expectRevert(abi.encodeWithSelector(Errors.NoPosition.selector, aliceAcct, btcCall));
        vault.settle(aliceAcct, btcCall); // settled once only
    }
}
