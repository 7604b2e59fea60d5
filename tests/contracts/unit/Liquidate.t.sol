// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";

import {BaseTest} from "./BaseTest.sol";
import {Errors} from "../../../contracts/interfaces/Errors.sol";
import {Events} from "../../../contracts/interfaces/Events.sol";
import {AccountLeaf, Epoch, FundingUpdate, MarginProof} from "../../../contracts/interfaces/IMarginVault.sol";

/// @notice liquidate / checkLiquidation / claimPayout: liquidation by transfer
/// (docs/protocol.md §6). The MM upper-bound trigger; the subaccount changes owner whole, its
/// positions and collateral stay; its cash pays the previous owner (a claimable payout) and the
/// insurance fee, and receives the fund's cover of bad debt; the liquidator's deposit brings
/// it to IM; every guard.
///
/// Scenario: alice deposits 10k cash and buys 1 BTC perp from bob at 60k (cash -50k). BTC then
/// marks at 54k: alice's equity is 4k, with IM 6k and MM 4.8k (attested). carol liquidates.
/// With one open position `cumLoNow = cumLo - 1` (a pending funding's rounding, bounded without
/// a loop): imSurplusLo = -2000e18 - 1, pay = 2560e18 - 1, fee = 720e18, netCashPaid =
/// 3280e18 - 1, minDeposit6 = ceil((3280e18 - 1 + 2000e18 + 1) / 1e12) = 5280e6.
contract LiquidateTest is BaseTest {
    uint256 internal constant MIN_DEPOSIT6 = 5280e6;
    uint256 internal constant PAY = 2560e18 - 1;
    uint256 internal constant FEE = 720e18;

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

    function _liquidate(address by, uint256 deposit6) internal {
        MarginProof memory t = _mp(alice);
        vm.prank(by);
        vault.liquidate(aliceAcct, t, deposit6, type(int256).max);
    }

    /// Sum over the three subaccounts of cash, plus the fund and the payouts owed (WAD).
    function _books() internal view returns (int256) {
        return _cash(alice) + _cash(bob) + _cash(carol) + int256(vault.insuranceFund())
            + int256(vault.payoutOf(alice) + vault.payoutOf(bob) + vault.payoutOf(carol));
    }

    /* HAPPY PATH */

    function test_checkLiquidation_quotesPriceAndCapitalNeed() public {
        _crash(4000e18);
        (bool ok, int256 mmHi, uint256 pay, uint256 fee, uint256 covered, uint256 uncovered, uint256 minDeposit6) =
            vault.checkLiquidation(aliceAcct, _mp(alice));
        assertTrue(ok);
        assertEq(mmHi, 4000e18 - 4800e18);
        assertEq(pay, PAY); // equityLo - 30% of MM
        assertEq(fee, FEE); // half the penalty
        assertEq(covered, 0);
        assertEq(uncovered, 0);
        // IM deficit (2000) + pay (2560) + fee (720) - covered (0), in USDC units
        assertEq(minDeposit6, MIN_DEPOSIT6);
    }

    function test_liquidate_transfersTheSubaccountWhole() public {
        _deposit(alice, weth, 1e18); // collateral stays with the subaccount
        _crash(4000e18);
        int256 cashBefore = _cash(alice);
        (int256 loBefore, int256 hiBefore) = _cum(alice);
        int256 booksBefore = _books();
        uint256 heldBefore = usdc.balanceOf(address(vault));

        _liquidate(carol, MIN_DEPOSIT6);

        assertEq(vault.ownerOf(aliceAcct), carol);
        // Nothing is copied: the positions, collateral and state nonce stay where they were.
        assertEq(_size(alice, btcPerp), 1e18);
        assertEq(_size(bob, btcPerp), -1e18);
        assertEq(vault.collateralBalance(aliceAcct, address(weth)), 1e18);
        assertEq(_nonce(alice), 0);
        // cash += deposit - netCashPaid; cumLo and cumHi move by the same exact amount.
        int256 delta = int256(MIN_DEPOSIT6 * 1e12) - int256(PAY + FEE);
        assertEq(_cash(alice), cashBefore + delta);
        (int256 lo, int256 hi) = _cum(alice);
        assertEq(lo, loBefore + delta);
        assertEq(hi, hiBefore + delta);
        // The previous owner is owed `pay`, the fund got `fee`; carol's own subaccount is untouched.
        assertEq(vault.payoutOf(alice), PAY);
        assertEq(vault.insuranceFund(), FEE);
        assertEq(_cash(carol), 100_000e18);
        // Books move by the deposit only; the tokens arrived.
        assertEq(_books(), booksBefore + int256(MIN_DEPOSIT6 * 1e12));
        assertEq(usdc.balanceOf(address(vault)), heldBefore + MIN_DEPOSIT6);
    }

    function test_liquidate_leavesTheSubaccountAtIm() public {
        _crash(4000e18);
        _liquidate(carol, MIN_DEPOSIT6);
        // The same leaf is still valid (nonce kept) and now bounds the subaccount at IM: 0 after
        // the 1 wei the liquidation reserved for the position's pending-funding rounding.
        assertEq(vault.imSurplusLo(aliceAcct, _mp(alice)), 1);
        (bool ok,,,,,,) = vault.checkLiquidation(aliceAcct, _mp(alice));
        assertFalse(ok);
    }

    function test_liquidate_needsNoAccountOfTheLiquidator() public {
        // dave holds 5,280 USDC in his wallet and nothing in the vault: enough, with no
        // takeover buffer and no merge into a book of his.
        address dave = makeAddr("dave");
        usdc.mint(dave, MIN_DEPOSIT6);
        vm.prank(dave);
        usdc.approve(address(vault), type(uint256).max);
        _crash(4000e18);
        _liquidate(dave, MIN_DEPOSIT6);
        assertEq(vault.ownerOf(aliceAcct), dave);
        assertEq(usdc.balanceOf(dave), 0);
    }

    function test_liquidate_emitsEnoughForAnIndexer() public {
        _crash(4000e18);
        MarginProof memory t = _mp(alice);
        int256 delta = int256(MIN_DEPOSIT6 * 1e12) - int256(PAY + FEE);
        (int256 lo, int256 hi) = _cum(alice);
        int256 cash = _cash(alice);
        vm.expectEmit(address(vault));
        emit Events.AccountUpdated(aliceAcct, cash + delta, lo + delta, hi + delta, 0);
        vm.expectEmit(address(vault));
        emit Events.SubaccountTransferred(aliceAcct, alice, carol);
        vm.expectEmit(address(vault));
        emit Events.Liquidated(aliceAcct, alice, carol, -800e18, PAY, FEE, 0, 0, MIN_DEPOSIT6);
        vm.prank(carol);
        vault.liquidate(aliceAcct, t, MIN_DEPOSIT6, type(int256).max);
    }

    function test_liquidate_newOwnerActsAndOldOwnerNoLonger() public {
        _crash(4000e18);
        _liquidate(carol, MIN_DEPOSIT6 + 1000e6); // 1000 above IM
        MarginProof memory t = _mp(alice);
        // carol withdraws the excess on the same leaf; the tokens go to her, the owner.
        uint256 before = usdc.balanceOf(carol);
        vm.prank(carol);
        vault.withdrawCash(aliceAcct, 1000e6, t);
        assertEq(usdc.balanceOf(carol), before + 1000e6);
        assertEq(vault.imSurplusLo(aliceAcct, t), 1); // at IM (+1 wei reserved for funding rounding)
        // alice cannot act on it any more.
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Errors.NotAuthorized.selector, aliceAcct, alice));
        vault.withdrawCash(aliceAcct, 1, t);
    }

    function test_liquidate_leavesPendingFundingOnThePositions() public {
        vm.roll(block.number + 1);
        AccountLeaf[] memory l = new AccountLeaf[](3);
        l[0] = _leaf(alice, 3000e18, 6000e18, 4800e18); // the leaf counts the pending $1000
        l[1] = _leaf(bob, 107_000e18, 6000e18, 4800e18);
        l[2] = _leaf(carol, 100_000e18, 0, 0);
        Epoch memory e = _buildEpoch(l);
        e.funding = new FundingUpdate[](1);
        e.funding[0] = FundingUpdate(btcPerp, 1000e18); // alice owes $1000 of funding
        _postHeader(e);
        (,, uint256 pay,,,, uint256 minDeposit6) = vault.checkLiquidation(aliceAcct, _mp(alice));
        assertEq(pay, 1560e18 - 1); // equityLo (3000 - 1 wei) - 1440
        int256 cashBefore = _cash(alice);
        _liquidate(carol, minDeposit6);
        // Not applied (no loop): the index is still 0, the cash moved only by the quote.
        (, int256 idx) = vault.position(aliceAcct, btcPerp);
        assertEq(idx, 0);
        assertEq(_cash(alice), cashBefore + int256(minDeposit6 * 1e12) - int256(pay + FEE));
        // Anyone applies it later; the bound stays >= 0 (the leaf counted it, 1 wei reserved).
        vault.applyFunding(aliceAcct);
        (, idx) = vault.position(aliceAcct, btcPerp);
        assertEq(idx, 1000e18);
        assertGe(vault.imSurplusLo(aliceAcct, _mp(alice)), 0);
    }

    /* BAD DEBT */

    function test_liquidate_badDebtCoveredByFund() public {
        vm.prank(bob);
        vault.depositInsurance(5000e6);
        _crash(-2000e18);
        (,, uint256 pay, uint256 fee, uint256 covered, uint256 uncovered, uint256 minDeposit6) =
            vault.checkLiquidation(aliceAcct, _mp(alice));
        assertEq(pay, 0);
        assertEq(fee, 0);
        assertEq(covered, 2000e18);
        assertEq(uncovered, 0);
        int256 cashBefore = _cash(alice);
        _liquidate(carol, minDeposit6);
        assertEq(vault.insuranceFund(), 3000e18);
        assertEq(vault.badDebt(), 0);
        assertEq(vault.payoutOf(alice), 0);
        // the fund pays the shortfall into the subaccount
        assertEq(_cash(alice), cashBefore + int256(minDeposit6 * 1e12) + 2000e18);
        assertGe(vault.imSurplusLo(aliceAcct, _mp(alice)), 0);
    }

    function test_liquidate_badDebtUncoveredIsRecorded() public {
        vm.prank(bob);
        vault.depositInsurance(500e6);
        _crash(-2000e18);
        (bool ok,,,, uint256 covered, uint256 uncovered, uint256 minDeposit6) =
            vault.checkLiquidation(aliceAcct, _mp(alice));
        assertTrue(ok);
        assertEq(covered, 500e18);
        assertEq(uncovered, 1500e18);
        int256 booksBefore = _books();
        vm.expectEmit(address(vault));
        emit Events.BadDebt(aliceAcct, 1500e18, 1500e18);
        _liquidate(carol, minDeposit6);
        assertEq(vault.insuranceFund(), 0);
        assertEq(vault.badDebt(), 1500e18);
        // the fund's 500 moved into the subaccount: the books move by the deposit only
        assertEq(_books(), booksBefore + int256(minDeposit6 * 1e12));
    }

    /* PAYOUTS */

    function test_claimPayout_paysThePreviousOwnerInTokenUnits() public {
        _crash(4000e18);
        _liquidate(carol, MIN_DEPOSIT6);
        uint256 before = usdc.balanceOf(alice);
        vm.expectEmit(address(vault));
        emit Events.PayoutClaimed(alice, 2559_999999); // 2560e18 - 1 wei, rounded down
        vm.prank(alice);
        vault.claimPayout();
        assertEq(usdc.balanceOf(alice), before + 2559_999999);
        // the dust below one token unit stays owed
        assertEq(vault.payoutOf(alice), 1e12 - 1);
    }

    function test_claimPayout_revertsWhenNothingToClaim() public {
        vm.prank(alice);
        vm.expectRevert(Errors.NothingToClaim.selector);
        vault.claimPayout();
        // dust below one token unit is nothing to claim either
        _crash(4000e18);
        _liquidate(carol, MIN_DEPOSIT6);
        vm.prank(alice);
        vault.claimPayout();
        vm.prank(alice);
        vm.expectRevert(Errors.NothingToClaim.selector);
        vault.claimPayout();
    }

    /* GUARDS */

    function test_liquidate_revertsWhenDepositTooSmall() public {
        _crash(4000e18);
        MarginProof memory t = _mp(alice);
        vm.prank(carol);
        vm.expectRevert(
            abi.encodeWithSelector(Errors.LiquidationDepositTooSmall.selector, MIN_DEPOSIT6 - 1, MIN_DEPOSIT6)
        );
        vault.liquidate(aliceAcct, t, MIN_DEPOSIT6 - 1, type(int256).max);
    }

    function test_liquidate_revertsWhenLiquidatorCannotPayTheDeposit() public {
        address dave = makeAddr("dave");
        usdc.mint(dave, MIN_DEPOSIT6 - 1);
        vm.prank(dave);
        usdc.approve(address(vault), type(uint256).max);
        _crash(4000e18);
        MarginProof memory t = _mp(alice);
        vm.prank(dave);
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientBalance.selector, dave, MIN_DEPOSIT6 - 1, MIN_DEPOSIT6)
        );
        vault.liquidate(aliceAcct, t, MIN_DEPOSIT6, type(int256).max);
        assertEq(vault.ownerOf(aliceAcct), alice);
    }

    function test_liquidate_revertsWhenHealthy() public {
        _crash(5000e18); // mmSurplusHi = 5000 - 4800 = 200
        MarginProof memory t = _mp(alice);
        vm.prank(carol);
        vm.expectRevert(abi.encodeWithSelector(Errors.AccountHealthy.selector, aliceAcct, int256(200e18)));
        vault.liquidate(aliceAcct, t, MIN_DEPOSIT6, type(int256).max);
        (bool ok, int256 mmHi,,,,,) = vault.checkLiquidation(aliceAcct, t);
        assertFalse(ok);
        assertEq(mmHi, 200e18);
    }

    function test_liquidate_revertsWhenRepaidAfterSnapshot() public {
        _crash(4000e18);
        _depositCash(alice, 1000e6); // cumHi += 1000: mmSurplusHi = -800 + 1000
        MarginProof memory t = _mp(alice);
        vm.prank(carol);
        vm.expectRevert(abi.encodeWithSelector(Errors.AccountHealthy.selector, aliceAcct, int256(200e18)));
        vault.liquidate(aliceAcct, t, MIN_DEPOSIT6, type(int256).max);
    }

    function test_liquidate_revertsWhenAtExactlyMaintenance() public {
        _crash(4800e18); // mmSurplusHi == 0 is not below maintenance
        MarginProof memory t = _mp(alice);
        vm.prank(carol);
        vm.expectRevert(abi.encodeWithSelector(Errors.AccountHealthy.selector, aliceAcct, int256(0)));
        vault.liquidate(aliceAcct, t, MIN_DEPOSIT6, type(int256).max);
    }

    function test_liquidate_revertsWhenFlatAndDebtFreeEvenOnALyingLeaf() public {
        _deposit(carol, weth, 100e18);
        // a quorum signs a leaf that puts carol (no position, no debt) far below maintenance
        _post2(_leaf(carol, 0, 1e30, 1e30), _leaf(bob, 106_000e18, 6000e18, 4800e18));
        (bool ok,,,,,,) = vault.checkLiquidation(carolAcct, _mp(carol));
        assertFalse(ok);
        MarginProof memory t = _mp(carol);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(Errors.NothingToLiquidate.selector, carolAcct));
        vault.liquidate(carolAcct, t, 1e12, type(int256).max);
        assertEq(vault.ownerOf(carolAcct), carol);
    }

    function test_liquidate_flatAccountWithDebtStaysLiquidatable() public {
        _deposit(carol, weth, 10e18);
        vm.prank(carol);
        vault.withdrawCash(carolAcct, 120_000e6, _emptyProof()); // cash -20k against 24k of haircut WETH
        _post2(_leaf(carol, 10_000e18, 12_000e18, 11_000e18), _leaf(bob, 106_000e18, 6000e18, 4800e18));
        (bool ok,,,,,, uint256 minDeposit6) = vault.checkLiquidation(carolAcct, _mp(carol));
        assertTrue(ok);
        MarginProof memory t = _mp(carol);
        vm.prank(bob);
        vault.liquidate(carolAcct, t, minDeposit6, type(int256).max);
        assertEq(vault.ownerOf(carolAcct), bob);
        assertEq(vault.collateralBalance(carolAcct, address(weth)), 10e18);
    }

    function test_liquidate_revertsWhenSelf() public {
        _crash(4000e18);
        MarginProof memory t = _mp(alice);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Errors.SelfLiquidation.selector, aliceAcct));
        vault.liquidate(aliceAcct, t, MIN_DEPOSIT6, type(int256).max);
    }

    function test_liquidate_revertsWhenByAnOperatorOfTheOwner() public {
        vm.prank(alice);
        vault.setOperator(carol, true);
        _crash(4000e18);
        MarginProof memory t = _mp(alice);
        vm.prank(carol);
        vm.expectRevert(abi.encodeWithSelector(Errors.SelfLiquidation.selector, aliceAcct));
        vault.liquidate(aliceAcct, t, MIN_DEPOSIT6, type(int256).max);
        // revoked, carol is a stranger again and may liquidate
        vm.prank(alice);
        vault.setOperator(carol, false);
        _liquidate(carol, MIN_DEPOSIT6);
        assertEq(vault.ownerOf(aliceAcct), carol);
    }

    function test_liquidate_revertsWhenUnknownSubaccount() public {
        _crash(4000e18);
        MarginProof memory t = _mp(alice);
        vm.prank(carol);
        vm.expectRevert(abi.encodeWithSelector(Errors.UnknownSubaccount.selector, 99));
        vault.liquidate(99, t, MIN_DEPOSIT6, type(int256).max);
        vm.expectRevert(abi.encodeWithSelector(Errors.UnknownSubaccount.selector, 99));
        vault.checkLiquidation(99, t);
    }

    function test_liquidate_revertsWhenLeafOfAnotherAccount() public {
        _crash(4000e18);
        MarginProof memory bobLeaf = _mp(bob);
        vm.prank(carol);
        vm.expectRevert(abi.encodeWithSelector(Errors.LeafAccountMismatch.selector, aliceAcct, bobAcct));
        vault.liquidate(aliceAcct, bobLeaf, MIN_DEPOSIT6, type(int256).max);
        // Relabelled as alice's, bob's leaf no longer matches the root.
        bobLeaf.leaf.account = aliceAcct;
        vm.prank(carol);
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidAccountProof.selector, aliceAcct));
        vault.liquidate(aliceAcct, bobLeaf, MIN_DEPOSIT6, type(int256).max);
    }

    function test_liquidate_revertsWhenLeafIsStale() public {
        _crash(4000e18);
        MarginProof memory old = _mp(alice);
        // The next epoch attests alice again: her leaf of the previous root no longer proves.
        _crash(3900e18);
        vm.prank(carol);
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidAccountProof.selector, aliceAcct));
        vault.liquidate(aliceAcct, old, MIN_DEPOSIT6, type(int256).max);
        // A leaf claiming another state nonce is refused before its proof is read.
        MarginProof memory forged = _mp(alice);
        forged.leaf.stateNonce = 1;
        vm.prank(carol);
        vm.expectRevert(abi.encodeWithSelector(Errors.StaleStateNonce.selector, aliceAcct, 0, 1));
        vault.liquidate(aliceAcct, forged, MIN_DEPOSIT6, type(int256).max);
    }

    function test_liquidate_revertsWhenBoundsFromPreviousPrices() public {
        _post3(
            _leaf(alice, 4000e18, 6000e18, 4800e18),
            _leaf(bob, 106_000e18, 6000e18, 4800e18),
            _leaf(carol, 100_000e18, 0, 0)
        );
        // The next epoch is built (snapshot), then alice deposits WETH at the current epoch's
        // prices, then the epoch is posted: its leaf misses the deposit.
        vm.roll(block.number + 1);
        AccountLeaf[] memory l = new AccountLeaf[](1);
        l[0] = _leaf(alice, 3900e18, 6000e18, 4800e18);
        Epoch memory e = _buildEpoch(l);
        vm.roll(block.number + 1);
        _deposit(alice, gov, 1e18);
        vm.roll(block.number + 1);
        _postHeader(e);
        MarginProof memory t = _mp(alice);
        vm.prank(carol);
        vm.expectRevert(abi.encodeWithSelector(Errors.BoundsFromPreviousPrices.selector, aliceAcct, e.epoch + 1));
        vault.liquidate(aliceAcct, t, MIN_DEPOSIT6 * 2, type(int256).max);
    }

    function test_liquidate_revertsWhenCostAboveMaxCashOut() public {
        _crash(4000e18);
        MarginProof memory t = _mp(alice);
        int256 net = int256(PAY + FEE);
        vm.prank(carol);
        vm.expectRevert(abi.encodeWithSelector(Errors.LiquidationCostTooHigh.selector, net, net - 1));
        vault.liquidate(aliceAcct, t, MIN_DEPOSIT6, net - 1);
        vm.prank(carol);
        vault.liquidate(aliceAcct, t, MIN_DEPOSIT6, net); // exactly the limit
    }

    function test_liquidate_revertsInSafeMode() public {
        _crash(4000e18);
        MarginProof memory t = _mp(alice);
        vm.warp(block.timestamp + MAX_AGE + 1);
        vm.prank(carol);
        vm.expectRevert(Errors.SafeMode.selector);
        vault.liquidate(aliceAcct, t, MIN_DEPOSIT6, type(int256).max);
        vm.expectRevert(Errors.SafeMode.selector);
        vault.checkLiquidation(aliceAcct, t);
    }

    function test_liquidate_revertsWhenCalledOnModuleDirectly() public {
        _crash(4000e18);
        MarginProof memory t = _mp(alice);
        vm.prank(carol);
        (bool ok, bytes memory ret) =
            vault.exchangeModule().call(abi.encodeCall(vault.liquidate, (aliceAcct, t, MIN_DEPOSIT6, type(int256).max)));
        assertFalse(ok);
        assertEq(bytes4(ret), Errors.NotDelegated.selector);
    }

    function test_mmSurplusHi_readsTheBound() public {
        _crash(4000e18);
        assertEq(vault.mmSurplusHi(aliceAcct, _mp(alice)), -800e18);
        assertEq(vault.imSurplusLo(aliceAcct, _mp(alice)), -2000e18);
    }
}
