// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {BaseTest} from "./BaseTest.sol";
import {Errors} from "../../../contracts/interfaces/Errors.sol";
import {Events} from "../../../contracts/interfaces/Events.sol";
import {MarginProof, Quote} from "../../../contracts/interfaces/IMarginVault.sol";
import {MarginBounds} from "../../../contracts/libraries/MarginBounds.sol";

/// @notice deposit / withdraw / depositCash / withdrawCash / depositInsurance and the IM gate.
contract CollateralTest is BaseTest {
    int256 internal constant UNBOUNDED = 1e36;

    /// alice (maker) buys 1 BTC perp from bob at 60k; both hold 100k cash and are in the tree.
    function _aliceLongBtc() internal {
        _depositCash(alice, 100_000e6);
        _depositCash(bob, 100_000e6);
        _post2(_leaf(alice, 100_000e18, 0, 0), _leaf(bob, 100_000e18, 0, 0));
        _fill(_quote(alice, bob, btcPerp, 1e18, 60_000e18, 1), aliceKey, bob);
    }

    /* DEPOSIT */

    function test_deposit_beforeFirstEpochAddsUnboundedHi() public {
        vm.expectEmit(address(vault));
        emit Events.AccountUpdated(aliceAcct, 0, 0, UNBOUNDED, 0);
        _deposit(alice, weth, 1e18);
        assertEq(vault.collateralBalance(aliceAcct, address(weth)), 1e18);
        assertEq(weth.balanceOf(address(vault)), 1e18);
        (int256 lo, int256 hi) = _cum(alice);
        assertEq(lo, 0);
        assertEq(hi, UNBOUNDED);
    }

    function test_deposit_addsShockedBounds() public {
        _post();
        _deposit(alice, weth, 1e18); // $3000, down 20%, up 25%
        (int256 lo, int256 hi) = _cum(alice);
        assertEq(lo, 2400e18);
        assertEq(hi, 3750e18);
        _deposit(alice, wbtc, 1e8); // $60000 at 8 decimals, down 15%, up 20%
        (lo, hi) = _cum(alice);
        assertEq(lo, 2400e18 + 51_000e18);
        assertEq(hi, 3750e18 + 72_000e18);
        (,,,,,,, uint256[] memory bals) = vault.accountState(aliceAcct);
        assertEq(bals.length, 3);
        assertEq(bals[0], 1e18);
        assertEq(bals[1], 1e8);
        assertEq(bals[2], 0);
    }

    function test_deposit_revertsWhenUnknownTokenOrZero() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Errors.UnknownToken.selector, address(usdc)));
        vault.deposit(aliceAcct, address(usdc), 1);
        vm.prank(alice);
        vm.expectRevert(Errors.ZeroAmount.selector);
        vault.deposit(aliceAcct, address(weth), 0);
    }

    /* WITHDRAW */

    function test_withdraw_noPositionsNoDebtWorksWithoutLeaf() public {
        _deposit(alice, weth, 2e18);
        uint256 before = weth.balanceOf(alice);
        vm.prank(alice);
        vault.withdraw(aliceAcct, address(weth), 1e18, _emptyProof()); // also in safe mode: nothing is owed
        assertEq(weth.balanceOf(alice), before + 1e18);
        assertEq(vault.collateralBalance(aliceAcct, address(weth)), 1e18);
        (int256 lo, int256 hi) = _cum(alice);
        assertEq(lo, -UNBOUNDED); // no fresh price: a trivially valid bound
        assertEq(hi, UNBOUNDED);
    }

    function test_withdraw_subtractsShockedBounds() public {
        _deposit(alice, weth, 2e18);
        _post();
        (int256 lo0, int256 hi0) = _cum(alice);
        vm.prank(alice);
        vault.withdraw(aliceAcct, address(weth), 1e18, _emptyProof());
        (int256 lo, int256 hi) = _cum(alice);
        assertEq(lo, lo0 - 3750e18);
        assertEq(hi, hi0 - 2400e18);
    }

    function test_withdraw_revertsWhenZeroOrUnknownToken() public {
        _deposit(alice, weth, 1e18);
        vm.startPrank(alice);
        vm.expectRevert(Errors.ZeroAmount.selector);
        vault.withdraw(aliceAcct, address(weth), 0, _emptyProof());
        vm.expectRevert(abi.encodeWithSelector(Errors.UnknownToken.selector, address(usdc)));
        vault.withdraw(aliceAcct, address(usdc), 1, _emptyProof());
        vm.expectRevert(Errors.ZeroAmount.selector);
        vault.withdrawCash(aliceAcct, 0, _emptyProof());
        vm.stopPrank();
    }

    function test_withdraw_revertsWhenOverBalance() public {
        _deposit(alice, weth, 1e18);
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(Errors.InsufficientBalance.selector, aliceAcct, address(weth), 1e18, 2e18)
        );
        vault.withdraw(aliceAcct, address(weth), 2e18, _emptyProof());
    }

    function test_withdraw_revertsWhenDebtUncoveredOnChainValuation() public {
        _post();
        _depositCash(bob, 10_000e6); // liquidity to borrow
        _deposit(alice, weth, 1e18); // haircut value 2400
        vm.prank(alice);
        vault.withdrawCash(aliceAcct, 2000e6, _emptyProof()); // cash -2000, surplus 400
        vm.prank(alice);
        // 0.5 WETH left is worth 1200 after haircut: 1200 - 2000 < 0.
        vm.expectRevert(abi.encodeWithSelector(Errors.InsufficientMargin.selector, aliceAcct, -int256(800e18)));
        vault.withdraw(aliceAcct, address(weth), 0.5e18, _emptyProof());
        vm.prank(alice);
        vault.withdraw(aliceAcct, address(weth), 0.1e18, _emptyProof()); // 0.9 WETH: 2160 - 2000 >= 0
        assertEq(vault.imSurplusLo(aliceAcct, _emptyProof()), 160e18);
    }

    function test_withdraw_revertsWhenOverTheImBound() public {
        _aliceLongBtc();
        _deposit(alice, weth, 1e18);
        // Leaf-based: imSurplusLo = 100k - 6000 (leg) + 2400 (deposit lo); withdrawing the WETH
        // subtracts 3750 (its upper value): 100k - 6000 + 2400 - 3750 >= 0, allowed.
        vm.prank(alice);
        vault.withdraw(aliceAcct, address(weth), 1e18, _mp(alice));
        // Now withdraw cash to exactly zero surplus, then one unit more.
        int256 s = vault.imSurplusLo(aliceAcct, _mp(alice));
        assertEq(s, 100_000e18 - 6000e18 + 2400e18 - 3750e18);
        MarginProof memory mp = _mp(alice);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Errors.InsufficientMargin.selector, aliceAcct, -int256(1e12)));
        vault.withdrawCash(aliceAcct, uint256(s) / 1e12 + 1, mp);
        vm.prank(alice);
        vault.withdrawCash(aliceAcct, uint256(s) / 1e12, mp);
        assertEq(vault.imSurplusLo(aliceAcct, mp), 0);
    }

    function test_withdraw_revertsWhenLeafMissingForAccountWithPositions() public {
        _aliceLongBtc();
        _deposit(alice, weth, 1e18);
        MarginProof memory mp = _mp(bob); // another account's leaf
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Errors.LeafAccountMismatch.selector, aliceAcct, bobAcct));
        vault.withdraw(aliceAcct, address(weth), 1e18, mp);
        mp = _mp(alice);
        mp.leaf.equity += 1; // tampered leaf
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidAccountProof.selector, aliceAcct));
        vault.withdraw(aliceAcct, address(weth), 1e18, mp);
    }

    /* CASH */

    function test_depositCash_scalesToWadAndMovesTokens() public {
        uint256 before = usdc.balanceOf(alice);
        vm.expectEmit(address(vault));
        emit Events.AccountUpdated(aliceAcct, 1234.5e18, 1234.5e18, 1234.5e18, 0);
        _depositCash(alice, 1234.5e6);
        assertEq(_cash(alice), 1234.5e18);
        assertEq(usdc.balanceOf(alice), before - 1234.5e6);
        assertEq(usdc.balanceOf(address(vault)), 1234.5e6);
    }

    function test_depositCash_revertsWhenZero() public {
        vm.prank(alice);
        vm.expectRevert(Errors.ZeroAmount.selector);
        vault.depositCash(aliceAcct, 0);
    }

    function test_withdrawCash_withinCashWorksInSafeMode() public {
        _depositCash(alice, 100e6);
        assertTrue(vault.isSafeMode());
        vm.prank(alice);
        vault.withdrawCash(aliceAcct, 100e6, _emptyProof());
        assertEq(_cash(alice), 0);
        (int256 lo, int256 hi) = _cum(alice);
        assertEq(lo, 0);
        assertEq(hi, 0);
    }

    function test_withdrawCash_revertsWhenBorrowingInSafeMode() public {
        _deposit(alice, weth, 1e18);
        vm.prank(alice);
        vm.expectRevert(Errors.SafeMode.selector);
        vault.withdrawCash(aliceAcct, 1e6, _emptyProof());
    }

    function test_withdrawCash_borrowsAgainstHaircutCollateral() public {
        _post();
        _depositCash(bob, 10_000e6); // liquidity to borrow
        _deposit(alice, weth, 1e18); // 3000 * (1 - 0.2) = 2400
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Errors.InsufficientMargin.selector, aliceAcct, -int256(1e12)));
        vault.withdrawCash(aliceAcct, 2400e6 + 1, _emptyProof());
        vm.prank(alice);
        vault.withdrawCash(aliceAcct, 2400e6, _emptyProof());
        assertEq(_cash(alice), -2400e18);
        assertEq(vault.imSurplusLo(aliceAcct, _emptyProof()), 0);
    }

    function test_withdrawCash_revertsWhenNothingToBorrowAgainst() public {
        _post();
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Errors.InsufficientMargin.selector, aliceAcct, -int256(1e18)));
        vault.withdrawCash(aliceAcct, 1e6, _emptyProof());
    }

    /* INSURANCE */

    function test_depositInsurance_growsFund() public {
        vm.prank(alice);
        vault.depositInsurance(500e6);
        assertEq(vault.insuranceFund(), 500e18);
        assertEq(usdc.balanceOf(address(vault)), 500e6);
        vm.prank(alice);
        vm.expectRevert(Errors.ZeroAmount.selector);
        vault.depositInsurance(0);
    }

    /* REENTRANCY AND TOKEN CONSERVATION */

    function test_deposit_tokensOnlyLeaveThroughChecks() public {
        _depositCash(alice, 1000e6);
        _deposit(alice, weth, 1e18);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(Errors.InsufficientBalance.selector, bobAcct, address(weth), 0, 1e18));
        vault.withdraw(bobAcct, address(weth), 1e18, _emptyProof());
        assertEq(weth.balanceOf(address(vault)), 1e18);
        assertEq(usdc.balanceOf(address(vault)), 1000e6);
    }
}
