// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {BaseTest} from "./BaseTest.sol";
import {Errors} from "../../../contracts/interfaces/Errors.sol";
import {AccountLeaf, Epoch, MarginProof} from "../../../contracts/interfaces/IMarginVault.sol";

/// @notice The snapshot-to-post window (docs/security.md, finding 3; docs/protocol.md §5): a
/// bound change mined after the next epoch's snapshot but priced by the current epoch is missing
/// from the next leaf; until a leaf includes it, the account's leaf-based value-out actions are
/// refused.
///
/// Scenario: alice (100k cash) buys 1 BTC perp from bob at 60k: she holds a position, so her
/// withdrawals go through her leaf. carol is flat (on-chain valuation).
contract SnapshotWindowTest is BaseTest {
    function setUp() public override {
        super.setUp();
        _depositCash(alice, 100_000e6);
        _depositCash(bob, 100_000e6);
        _post2(_leaf(alice, 100_000e18, 0, 0), _leaf(bob, 100_000e18, 0, 0));
        _fill(_quote(alice, bob, btcPerp, 1e18, 60_000e18, 1), aliceKey, bob);
        vm.roll(block.number + 1);
        _postLeaves(); // epoch 2: leaves after the trade
        vm.roll(block.number + 1);
    }

    /// Alice's, bob's and carol's leaves (healthy), built now: the snapshot is the previous block.
    function _build() internal returns (Epoch memory) {
        AccountLeaf[] memory l = new AccountLeaf[](3);
        l[0] = _leaf(alice, 100_000e18, 6000e18, 4800e18);
        l[1] = _leaf(bob, 100_000e18, 6000e18, 4800e18);
        l[2] = _leaf(carol, 0, 0, 0);
        return _buildEpoch(l);
    }

    function _postLeaves() internal {
        _postHeader(_build());
    }

    /// Builds the next epoch, then `alice` deposits 1 WETH one block later (inside the window,
    /// priced by the current epoch), then the epoch is posted one block after that.
    function _depositInWindow(address who) internal {
        vm.roll(block.number + 1);
        Epoch memory e = _build();
        vm.roll(block.number + 1);
        _deposit(who, weth, 1e18);
        vm.roll(block.number + 1);
        _postHeader(e);
        vm.roll(block.number + 1);
    }

    function _withdrawCash(address who, uint256 amount6) internal {
        MarginProof memory mp = _mp(who);
        vm.prank(who);
        vault.withdrawCash(acctOf[who], amount6, mp);
    }

    function test_withdrawCash_revertsAfterDepositInSnapshotWindow() public {
        _depositInWindow(alice);
        MarginProof memory mp = _mp(alice);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Errors.BoundsFromPreviousPrices.selector, aliceAcct, 4));
        vault.withdrawCash(aliceAcct, 1000e6, mp);
        // the next epoch's snapshot follows the deposit: its leaf prices it
        vm.roll(block.number + 1);
        _postLeaves();
        vm.roll(block.number + 1);
        _withdrawCash(alice, 1000e6);
        assertEq(_cash(alice), 40_000e18 - 1000e18);
    }

    function test_withdraw_revertsWhenChangedInWindowAndAgainAfterPost() public {
        _depositInWindow(alice);
        _deposit(alice, weth, 1e18); // after the post: does not clear the window's change
        (,, uint64 tainted) = vault.boundChange(aliceAcct);
        assertEq(tainted, 3);
        MarginProof memory mp = _mp(alice);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Errors.BoundsFromPreviousPrices.selector, aliceAcct, 4));
        vault.withdraw(aliceAcct, address(weth), 1e18, mp);
        vm.roll(block.number + 1);
        _postLeaves();
        vm.roll(block.number + 1);
        mp = _mp(alice);
        vm.prank(alice);
        vault.withdraw(aliceAcct, address(weth), 1e18, mp);
        assertEq(vault.collateralBalance(aliceAcct, address(weth)), 1e18);
    }

    function test_executeQuote_revertsAfterDepositInSnapshotWindow() public {
        _depositInWindow(alice);
        vm.expectRevert(abi.encodeWithSelector(Errors.BoundsFromPreviousPrices.selector, aliceAcct, 4));
        this.fillExternal();
    }

    function fillExternal() external {
        _fill(_quote(bob, alice, btcPerp, 0.1e18, 60_000e18, 2), bobKey, alice);
    }

    function test_withdrawCash_allowedAfterPostWithoutWindowChange() public {
        _deposit(alice, weth, 1e18); // before the next snapshot: the next leaf includes it
        vm.roll(block.number + 1);
        _postLeaves();
        _deposit(alice, weth, 1e18); // same block, after the post: priced by the new epoch
        vm.roll(block.number + 1);
        _deposit(alice, weth, 1e18);
        _withdrawCash(alice, 1000e6);
        assertEq(_cash(alice), 40_000e18 - 1000e18);
    }

    function test_withdrawCash_revertsWhenDepositPrecedesPostInSameBlock() public {
        vm.roll(block.number + 1);
        Epoch memory e = _build();
        _deposit(alice, weth, 1e18); // mined before the post, in its block: old prices
        _postHeader(e);
        vm.roll(block.number + 1);
        MarginProof memory mp = _mp(alice);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Errors.BoundsFromPreviousPrices.selector, aliceAcct, 4));
        vault.withdrawCash(aliceAcct, 1000e6, mp);
    }

    function test_withdrawCash_flatAccountUnaffectedByWindow() public {
        _depositInWindow(carol);
        _withdrawCash(carol, 1000e6); // on-chain valuation at the new prices: no leaf involved
        assertEq(_cash(carol), -1000e18);
    }

    function test_applyFunding_byAnyoneDoesNotMarkTheAccount() public {
        (uint64 blockBefore,,) = vault.boundChange(aliceAcct);
        vm.prank(carol);
        vault.applyFunding(aliceAcct);
        (uint64 blockAfter,,) = vault.boundChange(aliceAcct);
        assertEq(blockAfter, blockBefore);
    }
}
