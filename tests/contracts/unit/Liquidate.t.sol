// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {BaseTest} from "./BaseTest.sol";
import {Errors} from "../../../contracts/interfaces/Errors.sol";
import {Events} from "../../../contracts/interfaces/Events.sol";
import {AccountLeaf, Epoch, FundingUpdate, MarginProof} from "../../../contracts/interfaces/IMarginVault.sol";

/// @notice liquidate / checkLiquidation: the MM upper-bound trigger, whole-account takeover,
/// payment, penalty, insurance fee, bad debt covered and uncovered, the liquidator's IM check,
/// maxCashOut, self-liquidation, stale leaves.
///
/// Scenario: alice deposits 10k cash and buys 1 BTC perp from bob at 60k (cash -50k). BTC then
/// marks at 54k: alice's equity is 4k, with IM 6k and MM 4.8k (attested). carol liquidates.
contract LiquidateTest is BaseTest {
    int256 internal constant UNBOUNDED = 1e36;

    function setUp() public override {
        super.setUp();
        _depositCash(alice, 10_000e6);
        _depositCash(bob, 100_000e6);
        _depositCash(carol, 100_000e6);
        _post2(_leaf(alice, 10_000e18, 0, 0), _leaf(bob, 100_000e18, 0, 0));
        _fill(_quote(alice, bob, btcPerp, 1e18, 60_000e18, 1), aliceKey, bob);
        instLeaf[btcPerp].mark = 54_000e18;
    }

    /// Posts alice's leaf at `equity` (IM 6000, MM 4800), bob's and carol's healthy leaves.
    function _crash(int256 equity) internal {
        _post3(
            _leaf(alice, equity, 6000e18, 4800e18),
            _leaf(bob, 106_000e18, 6000e18, 4800e18),
            _leaf(carol, 100_000e18, 0, 0)
        );
    }

    function _liquidate(address by, int256 maxCashOut) internal {
        MarginProof memory t = _mp(alice);
        MarginProof memory l = _mp(by);
        vm.prank(by);
        vault.liquidate(alice, t, l, maxCashOut);
    }

    /* HAPPY PATH */

    function test_liquidate_takesOverWholeAccount() public {
        _deposit(alice, weth, 1e18); // collateral moves too (adds 2400 / 3750 to the bounds)
        _crash(4000e18);
        (bool ok, int256 mmHi, uint256 pay, uint256 fee, uint256 covered, uint256 uncovered) =
            vault.checkLiquidation(alice, _mp(alice));
        assertTrue(ok);
        assertEq(mmHi, 4000e18 - 4800e18);
        assertEq(pay, 4000e18 - 1440e18); // penalty = 30% of MM
        assertEq(fee, 720e18); // half the penalty
        assertEq(covered, 0);
        assertEq(uncovered, 0);

        int256 aliceCash = _cash(alice);
        int256 totalCash = _cash(alice) + _cash(bob) + _cash(carol) + int256(vault.insuranceFund());
        vm.expectEmit(address(vault));
        emit Events.Liquidated(alice, carol, -800e18, 2560e18, 720e18, 0, 0, 720e18);
        _liquidate(carol, type(int256).max);

        assertEq(_size(alice, btcPerp), 0);
        assertEq(_size(carol, btcPerp), 1e18);
        assertEq(_size(bob, btcPerp) + _size(carol, btcPerp), 0, "sizes sum to zero");
        assertEq(vault.collateralBalance(alice, address(weth)), 0);
        assertEq(vault.collateralBalance(carol, address(weth)), 1e18);
        assertEq(_cash(alice), 2560e18);
        assertEq(_cash(carol), 100_000e18 + aliceCash - 3280e18);
        assertEq(vault.insuranceFund(), 720e18);
        assertEq(_cash(alice) + _cash(bob) + _cash(carol) + int256(vault.insuranceFund()), totalCash, "no cash created");
        assertEq(_nonce(alice), 1);
        (,,,, uint32[] memory ids,,,) = vault.accountState(alice);
        assertEq(ids.length, 0);
        // carol: cumLo += imSurplusLo(alice) - netCashPaid = (4000 - 6000) - 3280; cumHi += UNBOUNDED
        (int256 lo, int256 hi) = _cum(carol);
        assertEq(lo, 100_000e18 - 2000e18 - 3280e18);
        assertEq(hi, 100_000e18 + UNBOUNDED);
    }

    function test_liquidate_emitsEnoughForAnIndexer() public {
        _deposit(alice, weth, 1e18);
        _crash(4000e18);
        MarginProof memory t = _mp(alice);
        (int256 aliceLo, int256 aliceHi) = _cum(alice); // unchanged by the liquidation
        vm.expectEmit(address(vault));
        emit Events.PositionUpdated(alice, btcPerp, 0, 0);
        vm.expectEmit(address(vault));
        emit Events.PositionUpdated(carol, btcPerp, 1e18, 0);
        vm.expectEmit(address(vault));
        emit Events.CollateralUpdated(alice, address(weth), 0);
        vm.expectEmit(address(vault));
        emit Events.CollateralUpdated(carol, address(weth), 1e18);
        vm.expectEmit(address(vault));
        emit Events.AccountUpdated(alice, 2560e18, aliceLo, aliceHi, 1);
        vm.prank(carol);
        vault.liquidate(alice, t, _emptyProof(), type(int256).max);
    }

    function test_liquidate_accountStartsOverWithNextLeaf() public {
        _crash(4000e18);
        _liquidate(carol, type(int256).max);
        // The next epoch attests alice at nonce 1; her new leaf works again.
        _post3(_leaf(alice, 2560e18, 0, 0), _leaf(bob, 106_000e18, 6000e18, 4800e18), _leaf(carol, 50_000e18, 0, 0));
        assertEq(_mp(alice).leaf.stateNonce, 1);
        _fill(_quote(bob, alice, ethPerp, -0.1e18, 3000e18, 9), bobKey, alice);
        assertEq(_size(alice, ethPerp), 0.1e18);
    }

    function test_liquidate_mergesIntoLiquidatorPositions() public {
        // carol is short 0.5 BTC already; she must show her own leaf.
        _post3(_leaf(alice, 10_000e18, 0, 0), _leaf(bob, 100_000e18, 0, 0), _leaf(carol, 100_000e18, 0, 0));
        _fill(_quote(carol, bob, btcPerp, -0.5e18, 60_000e18, 1), carolKey, bob);
        _post3(
            _leaf(alice, 4000e18, 6000e18, 4800e18),
            _leaf(bob, 106_000e18, 6000e18, 4800e18),
            _leaf(carol, 103_000e18, 3000e18, 2400e18)
        );
        _liquidate(carol, type(int256).max);
        assertEq(_size(carol, btcPerp), 0.5e18);
        assertEq(_size(alice, btcPerp), 0);
        assertEq(_size(bob, btcPerp) + _size(carol, btcPerp), 0);
    }

    function test_liquidate_appliesPendingFundingFirst() public {
        vm.roll(block.number + 1);
        AccountLeaf[] memory l = new AccountLeaf[](3);
        l[0] = _leaf(alice, 3000e18, 6000e18, 4800e18);
        l[1] = _leaf(bob, 107_000e18, 6000e18, 4800e18);
        l[2] = _leaf(carol, 100_000e18, 0, 0);
        Epoch memory e = _buildEpoch(l);
        e.funding = new FundingUpdate[](1);
        e.funding[0] = FundingUpdate(btcPerp, 1000e18); // alice owes $1000 of funding
        _postHeader(e);
        (,, uint256 payView,,,) = vault.checkLiquidation(alice, _mp(alice));
        int256 aliceCash = _cash(alice);
        _liquidate(carol, type(int256).max);
        // eqLo = 3000 - 1 wei (rounding of the funding applied), pay = eqLo - 1440.
        assertEq(_cash(alice), 1560e18 - 1);
        assertEq(payView, 1560e18 - 1);
        (, int256 idx) = vault.position(carol, btcPerp);
        assertEq(idx, 1000e18);
        assertEq(_cash(carol), 100_000e18 + aliceCash - 1000e18 - int256(1560e18 - 1) - int256(720e18));
    }

    /* BAD DEBT */

    function test_liquidate_badDebtCoveredByFund() public {
        vm.prank(bob);
        vault.depositInsurance(5000e6);
        _crash(-2000e18);
        int256 aliceCash = _cash(alice);
        _liquidate(carol, type(int256).max);
        assertEq(_cash(alice), 0);
        assertEq(vault.insuranceFund(), 3000e18);
        assertEq(vault.badDebt(), 0);
        assertEq(_cash(carol), 100_000e18 + aliceCash + 2000e18); // the fund pays the shortfall
    }

    function test_liquidate_badDebtUncoveredIsRecorded() public {
        vm.prank(bob);
        vault.depositInsurance(500e6);
        _crash(-2000e18);
        (bool ok,,,, uint256 covered, uint256 uncovered) = vault.checkLiquidation(alice, _mp(alice));
        assertTrue(ok);
        assertEq(covered, 500e18);
        assertEq(uncovered, 1500e18);
        vm.expectEmit(address(vault));
        emit Events.BadDebt(alice, 1500e18, 1500e18);
        _liquidate(carol, type(int256).max);
        assertEq(vault.insuranceFund(), 0);
        assertEq(vault.badDebt(), 1500e18);
    }

    /* GUARDS */

    function test_liquidate_revertsWhenHealthy() public {
        _crash(5000e18); // mmSurplusHi = 5000 - 4800 = 200
        MarginProof memory t = _mp(alice);
        vm.prank(carol);
        vm.expectRevert(abi.encodeWithSelector(Errors.AccountHealthy.selector, alice, int256(200e18)));
        vault.liquidate(alice, t, _emptyProof(), type(int256).max);
        (bool ok, int256 mmHi,,,,) = vault.checkLiquidation(alice, t);
        assertFalse(ok);
        assertEq(mmHi, 200e18);
    }

    function test_liquidate_revertsWhenRepaidAfterSnapshot() public {
        _crash(4000e18);
        _depositCash(alice, 1000e6); // cumHi += 1000: mmSurplusHi = -800 + 1000
        MarginProof memory t = _mp(alice);
        vm.prank(carol);
        vm.expectRevert(abi.encodeWithSelector(Errors.AccountHealthy.selector, alice, int256(200e18)));
        vault.liquidate(alice, t, _emptyProof(), type(int256).max);
    }

    function test_liquidate_revertsWhenAtExactlyMaintenance() public {
        _crash(4800e18); // mmSurplusHi == 0 is not below maintenance
        MarginProof memory t = _mp(alice);
        vm.prank(carol);
        vm.expectRevert(abi.encodeWithSelector(Errors.AccountHealthy.selector, alice, int256(0)));
        vault.liquidate(alice, t, _emptyProof(), type(int256).max);
    }

    function test_liquidate_revertsWhenFlatAndDebtFreeEvenOnALyingLeaf() public {
        _deposit(carol, weth, 100e18);
        // a quorum signs a leaf that puts carol (no position, no debt) far below maintenance
        _post2(_leaf(carol, 0, 1e30, 1e30), _leaf(bob, 106_000e18, 6000e18, 4800e18));
        (bool ok,,,,,) = vault.checkLiquidation(carol, _mp(carol));
        assertFalse(ok);
        MarginProof memory t = _mp(carol);
        MarginProof memory l = _mp(bob);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(Errors.NothingToLiquidate.selector, carol));
        vault.liquidate(carol, t, l, type(int256).max);
        assertEq(vault.collateralBalance(carol, address(weth)), 100e18);
    }

    function test_liquidate_flatAccountWithDebtStaysLiquidatable() public {
        _deposit(carol, weth, 10e18);
        vm.prank(carol);
        vault.withdrawCash(120_000e6, _emptyProof()); // cash -20k against 24k of haircut WETH
        _post2(_leaf(carol, 10_000e18, 12_000e18, 11_000e18), _leaf(bob, 106_000e18, 6000e18, 4800e18));
        (bool ok,,,,,) = vault.checkLiquidation(carol, _mp(carol));
        assertTrue(ok);
        _liquidateBy(bob, carol);
        assertEq(vault.collateralBalance(bob, address(weth)), 10e18);
    }

    function _liquidateBy(address by, address who) internal {
        MarginProof memory t = _mp(who);
        MarginProof memory l = _mp(by);
        vm.prank(by);
        vault.liquidate(who, t, l, type(int256).max);
    }

    function test_liquidate_revertsWhenSelf() public {
        _crash(4000e18);
        MarginProof memory t = _mp(alice);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Errors.SelfLiquidation.selector, alice));
        vault.liquidate(alice, t, t, type(int256).max);
    }

    function test_liquidate_revertsWhenLeafOfAnotherAccount() public {
        _crash(4000e18);
        MarginProof memory bobLeaf = _mp(bob);
        vm.prank(carol);
        vm.expectRevert(abi.encodeWithSelector(Errors.LeafAccountMismatch.selector, alice, bob));
        vault.liquidate(alice, bobLeaf, _emptyProof(), type(int256).max);
        // Relabelled as alice's, bob's leaf no longer matches the root.
        bobLeaf.leaf.account = alice;
        vm.prank(carol);
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidAccountProof.selector, alice));
        vault.liquidate(alice, bobLeaf, _emptyProof(), type(int256).max);
    }

    function test_liquidate_revertsWhenLeafHasOldStateNonce() public {
        _crash(4000e18);
        MarginProof memory old = _mp(alice);
        _liquidate(carol, type(int256).max);
        // Her old (nonce 0) leaf described the portfolio carol now holds: it is dead.
        MarginProof memory b = _mp(bob);
        // Flat and debt-free after the takeover: refused before any leaf is read.
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(Errors.NothingToLiquidate.selector, alice));
        vault.liquidate(alice, old, b, type(int256).max);
        // Flat after the takeover, alice trades on her on-chain value (2560 cash), leaf ignored;
        this.fillExternal(bob, alice, 9);
        assertEq(_size(alice, ethPerp), 0.1e18);
        vm.prank(carol);
        vm.expectRevert(abi.encodeWithSelector(Errors.StaleStateNonce.selector, alice, 1, 0));
        vault.liquidate(alice, old, _mp(carol), type(int256).max);
        // holding a position again, her old leaf cannot bound her before the next epoch.
        vm.expectRevert(abi.encodeWithSelector(Errors.StaleStateNonce.selector, alice, 1, 0));
        this.fillExternal(bob, alice, 10);
    }

    function fillExternal(address maker, address taker, uint256 nonce) external {
        _fill(_quote(maker, taker, ethPerp, -0.1e18, 3000e18, nonce), bobKey, taker);
    }

    function test_liquidate_revertsWhenCostAboveMaxCashOut() public {
        _crash(4000e18);
        MarginProof memory t = _mp(alice);
        vm.prank(carol);
        vm.expectRevert(
            abi.encodeWithSelector(Errors.LiquidationCostTooHigh.selector, int256(3280e18), int256(3000e18))
        );
        vault.liquidate(alice, t, _emptyProof(), 3000e18);
        vm.prank(carol);
        vault.liquidate(alice, t, _emptyProof(), 3280e18); // exactly the limit
    }

    function test_liquidate_revertsWhenLiquidatorLacksMargin() public {
        address dave = makeAddr("dave");
        _fund(dave);
        _depositCash(dave, 5000e6);
        _crash(4000e18);
        // dave: 5000 + imSurplusLo(alice) (-2000) - netCashPaid (3280) = -280
        MarginProof memory t = _mp(alice);
        vm.prank(dave);
        vm.expectRevert(abi.encodeWithSelector(Errors.InsufficientMargin.selector, dave, -int256(280e18)));
        vault.liquidate(alice, t, _emptyProof(), type(int256).max);
    }

    function test_liquidate_revertsWhenTakeoverBufferExceedsLiquidatorSurplus() public {
        address dave = makeAddr("dave");
        _fund(dave);
        _depositCash(dave, 5300e6);
        _crash(4000e18);
        // dave: 5300 + imSurplusLo(alice) (-2000) - netCashPaid (3280) = 20, minus the buffer.
        vault.setTakeoverBuffer(100e18);
        MarginProof memory t = _mp(alice);
        vm.prank(dave);
        vm.expectRevert(abi.encodeWithSelector(Errors.InsufficientMargin.selector, dave, -int256(80e18)));
        vault.liquidate(alice, t, _emptyProof(), type(int256).max);
        // The same takeover passes without the buffer's last 80, leaving dave exactly at 0.
        vault.setTakeoverBuffer(20e18);
        vm.prank(dave);
        vault.liquidate(alice, t, _emptyProof(), type(int256).max);
        assertEq(_size(dave, btcPerp), 1e18);
        // cumLo(L) += imSurplusLo(A) - netCashPaid - takeoverBuffer
        (int256 lo, int256 hi) = _cum(dave);
        assertEq(lo, 5300e18 - 2000e18 - 3280e18 - 20e18);
        assertEq(hi, 5300e18 + UNBOUNDED);
    }

    function test_liquidate_revertsInSafeMode() public {
        _crash(4000e18);
        MarginProof memory t = _mp(alice);
        vm.warp(block.timestamp + MAX_AGE + 1);
        vm.prank(carol);
        vm.expectRevert(Errors.SafeMode.selector);
        vault.liquidate(alice, t, _emptyProof(), type(int256).max);
        vm.expectRevert(Errors.SafeMode.selector);
        vault.checkLiquidation(alice, t);
    }

    function test_liquidate_revertsWhenCalledOnModuleDirectly() public {
        _crash(4000e18);
        MarginProof memory t = _mp(alice);
        vm.prank(carol);
        (bool ok, bytes memory ret) =
            vault.exchangeModule().call(abi.encodeCall(vault.liquidate, (alice, t, _emptyProof(), type(int256).max)));
        assertFalse(ok);
        assertEq(bytes4(ret), Errors.NotDelegated.selector);
    }

    function test_mmSurplusHi_readsTheBound() public {
        _crash(4000e18);
        assertEq(vault.mmSurplusHi(alice, _mp(alice)), -800e18);
        assertEq(vault.imSurplusLo(alice, _mp(alice)), -2000e18);
    }
}
