// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {BaseTest} from "./BaseTest.sol";
import {Errors} from "../../../contracts/interfaces/Errors.sol";
import {MarginProof, Quote, InstrumentProof} from "../../../contracts/interfaces/IMarginVault.sol";

/// @notice Safe mode (docs/protocol.md §4): with no attestation younger than maxAge, deposits,
/// repayments, settlement, funding, cancels and debt-free withdrawals work; everything that
/// needs attested numbers reverts with SafeMode().
contract SafeModeTest is BaseTest {
    function setUp() public override {
        super.setUp();
        _depositCash(alice, 100_000e6);
        _depositCash(bob, 100_000e6);
        _deposit(alice, weth, 1e18);
        _post2(_leaf(alice, 102_400e18, 0, 0), _leaf(bob, 100_000e18, 0, 0));
        _fill(_quote(alice, bob, btcPerp, 1e18, 60_000e18, 1), aliceKey, bob);
        _post2(_leaf(alice, 42_400e18, 6000e18, 4800e18), _leaf(bob, 160_000e18, 6000e18, 4800e18));
    }

    function test_isSafeMode_switchesAtMaxAge() public {
        (,, uint64 ts,) = vault.currentEpoch();
        vm.warp(ts + MAX_AGE);
        assertFalse(vault.isSafeMode());
        vm.warp(ts + MAX_AGE + 1);
        assertTrue(vault.isSafeMode());
        _post(); // a fresh epoch ends safe mode
        assertFalse(vault.isSafeMode());
    }

    function test_safeMode_depositsAndRepaymentsWork() public {
        vm.warp(block.timestamp + MAX_AGE + 1);
        (int256 lo0, int256 hi0) = _cum(alice);
        _deposit(alice, wbtc, 1e8);
        (int256 lo, int256 hi) = _cum(alice);
        assertEq(lo, lo0, "stale prices: a deposit counts nothing toward the lower bound");
        assertEq(hi, hi0 + 1e36);
        _depositCash(alice, 10e6);
        vm.prank(alice);
        vault.depositInsurance(1e6);
        vm.prank(alice);
        vault.cancelQuote(99);
        vault.applyFunding(aliceAcct);
    }

    function test_safeMode_blocksWithdrawalsNeedingALeaf() public {
        MarginProof memory mp = _mp(alice);
        vm.warp(block.timestamp + MAX_AGE + 1);
        vm.startPrank(alice);
        vm.expectRevert(Errors.SafeMode.selector);
        vault.withdraw(aliceAcct, address(weth), 1e18, mp);
        vm.expectRevert(Errors.SafeMode.selector);
        vault.withdrawCash(aliceAcct, 1e6, mp);
        vm.stopPrank();
        vm.expectRevert(Errors.SafeMode.selector);
        vault.imSurplusLo(aliceAcct, mp);
        vm.expectRevert(Errors.SafeMode.selector);
        vault.mmSurplusHi(aliceAcct, mp);
    }

    function test_safeMode_debtFreeAccountWithoutPositionsCanLeave() public {
        address dave = makeAddr("dave");
        _fund(dave);
        _depositCash(dave, 500e6);
        _deposit(dave, gov, 1000e18);
        vm.warp(block.timestamp + MAX_AGE + 1);
        vm.startPrank(dave);
        vault.withdraw(acctOf[dave], address(gov), 1000e18, _emptyProof());
        vault.withdrawCash(acctOf[dave], 500e6, _emptyProof());
        vm.expectRevert(Errors.SafeMode.selector); // borrowing needs prices
        vault.withdrawCash(acctOf[dave], 1, _emptyProof());
        vm.stopPrank();
        assertEq(_cash(dave), 0);
    }

    function test_safeMode_blocksTradesAndLiquidations() public {
        Quote memory q = _quote(bob, alice, ethPerp, 1e18, 3000e18, 5);
        q.deadline = uint64(block.timestamp + 1 days);
        bytes memory sig = _signQuote(q, bobKey);
        InstrumentProof[] memory ips = _legProofs(q);
        MarginProof memory a = _mp(alice);
        MarginProof memory b = _mp(bob);
        vm.warp(block.timestamp + MAX_AGE + 1);
        vm.prank(alice);
        vm.expectRevert(Errors.SafeMode.selector);
        vault.executeQuote(q, sig, ips, b, aliceAcct, a);
        vm.prank(carol);
        vm.expectRevert(Errors.SafeMode.selector);
        vault.liquidate(aliceAcct, a, 1e6, type(int256).max);
    }
}
