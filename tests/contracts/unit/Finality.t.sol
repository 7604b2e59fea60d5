// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {BaseTest} from "./BaseTest.sol";
import {Errors} from "../../../contracts/interfaces/Errors.sol";
import {Events} from "../../../contracts/interfaces/Events.sol";
import {IFinality, PendingWithdrawal} from "../../../contracts/interfaces/IFinality.sol";
import {AccountLeaf, Epoch} from "../../../contracts/interfaces/IMarginVault.sol";

/// @notice The challenge window, the signers' bond, queued withdrawals, the duplicate-leaf fraud
/// proof and the safe mode it causes until a rotated signer set posts (docs/protocol.md §10).
contract FinalityTest is BaseTest {
    uint64 internal constant WINDOW = 1 hours;
    uint256 internal constant MIN_BOND6 = 100_000e6;

    IFinality internal fin;

    function setUp() public override {
        super.setUp();
        fin = IFinality(address(vault));
    }

    /// @dev Disputes on: the window, the minimum bond, and carol's bond for the signer set.
    function _enable() internal {
        fin.setDisputeConfig(WINDOW, MIN_BOND6);
        vm.prank(carol);
        fin.postBond(MIN_BOND6);
    }

    /// @dev alice borrows against 1 WETH: her withdrawal rests on the epoch's price.
    function _aliceBorrows(uint256 amount6) internal {
        _depositCash(bob, 10_000e6);
        _deposit(alice, weth, 1e18);
        vm.prank(alice);
        vault.withdrawCash(aliceAcct, amount6, _emptyProof());
    }

    /// @dev An epoch whose tree holds two leaves for alice: one honest, one with inflated equity.
    function _postDuplicate() internal returns (Epoch memory e, AccountLeaf memory a, AccountLeaf memory b) {
        a = _leaf(alice, 1000e18, 100e18, 50e18);
        b = _leaf(alice, 1_000_000e18, 100e18, 50e18);
        e = _post2(a, b);
    }

    function _dispute(uint64 epoch, AccountLeaf memory a, AccountLeaf memory b) internal {
        fin.disputeDuplicateLeaf(
            epoch, a, _merkleProof(treeLeaves, _hashAccountLeaf(a)), b, _merkleProof(treeLeaves, _hashAccountLeaf(b))
        );
    }

    /* CONFIGURATION AND BOND */

    function test_config_ownerOnlyAndBounded() public {
        vm.prank(alice);
        vm.expectRevert();
        fin.setDisputeConfig(WINDOW, 0);
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidChallengeWindow.selector, 7 days + 1, 7 days));
        fin.setDisputeConfig(7 days + 1, 0);
        vm.expectEmit(address(vault));
        emit Events.DisputeConfigSet(WINDOW, MIN_BOND6);
        fin.setDisputeConfig(WINDOW, MIN_BOND6);
        (uint64 w, uint256 minBond, uint256 bond) = fin.disputeConfig();
        assertEq(w, WINDOW);
        assertEq(minBond, MIN_BOND6 * 1e12);
        assertEq(bond, 0);
    }

    function test_postEpoch_needsTheBondWhileTheWindowIsOpen() public {
        fin.setDisputeConfig(WINDOW, MIN_BOND6);
        vm.roll(block.number + 1);
        Epoch memory e = _buildEpoch(new AccountLeaf[](0));
        bytes[] memory sigs = _signEpoch(e, _quorumKeys());
        vm.expectRevert(abi.encodeWithSelector(Errors.BondTooLow.selector, 0, MIN_BOND6 * 1e12));
        vault.postEpoch(e, sigs);
        vm.prank(carol);
        fin.postBond(MIN_BOND6);
        vault.postEpoch(e, sigs);
        (bytes32 root, uint64 postedAt) = fin.epochRecord(e.epoch);
        assertEq(root, e.root);
        assertEq(postedAt, block.timestamp);
    }

    function test_epochRecord_onlyWhileDisputesAreOn() public {
        Epoch memory e = _post();
        (bytes32 root,) = fin.epochRecord(e.epoch);
        assertEq(root, bytes32(0));
    }

    function test_withdrawBond_lockedWhileARootIsDisputable() public {
        _enable();
        vm.prank(carol);
        fin.postBond(5e6); // 5 USDC above the minimum
        _post();
        vm.expectRevert(abi.encodeWithSelector(Errors.BondLocked.selector, 6e18, 5e18));
        fin.withdrawBond(6e6, owner);
        fin.withdrawBond(5e6, owner);
        vm.warp(block.timestamp + WINDOW + 1);
        fin.withdrawBond(MIN_BOND6, owner);
        (,, uint256 bond) = fin.disputeConfig();
        assertEq(bond, 0);
        assertEq(usdc.balanceOf(owner), MIN_BOND6 + 5e6);
    }

    function test_unknownSelector_revertsInTheModule() public {
        (bool ok,) = address(vault).call(abi.encodeWithSignature("noSuchFunction()"));
        assertFalse(ok);
    }

    /* QUEUED WITHDRAWALS */

    function test_withdrawal_paidAtOnceWhenWindowIsZero() public {
        _post();
        uint256 before = usdc.balanceOf(alice);
        _aliceBorrows(1000e6);
        assertEq(usdc.balanceOf(alice), before + 1000e6);
        assertEq(fin.pendingWithdrawalCount(), 0);
    }

    function test_withdrawal_paidAtOnceWithoutPositionsOrDebt() public {
        _enable();
        _post();
        _depositCash(alice, 500e6);
        uint256 before = usdc.balanceOf(alice);
        vm.prank(alice);
        vault.withdrawCash(aliceAcct, 500e6, _emptyProof());
        assertEq(usdc.balanceOf(alice), before + 500e6);
        assertEq(fin.pendingWithdrawalCount(), 0);
    }

    function test_withdrawal_restingOnAnEpochWaitsForTheWindow() public {
        _enable();
        _post();
        uint256 before = usdc.balanceOf(alice);
        _depositCash(bob, 10_000e6);
        _deposit(alice, weth, 1e18);
        vm.expectEmit(address(vault));
        emit Events.WithdrawalQueued(1, aliceAcct, alice, address(usdc), 1000e6, uint64(block.timestamp) + WINDOW);
        vm.prank(alice);
        vault.withdrawCash(aliceAcct, 1000e6, _emptyProof());
        assertEq(usdc.balanceOf(alice), before); // debited from the account, not paid yet
        assertEq(_cash(alice), -1000e18);
        (PendingWithdrawal memory w, bool isVoid) = fin.pendingWithdrawal(1);
        assertEq(w.account, aliceAcct);
        assertTrue(w.isCash);
        assertFalse(isVoid);
        vm.expectRevert(abi.encodeWithSelector(Errors.WithdrawalNotReady.selector, 1, w.readyAt));
        fin.claimWithdrawal(1);
        vm.warp(w.readyAt);
        vm.prank(bob); // anyone may claim: it pays the owner
        fin.claimWithdrawal(1);
        assertEq(usdc.balanceOf(alice), before + 1000e6);
        vm.expectRevert(abi.encodeWithSelector(Errors.UnknownWithdrawal.selector, 1));
        fin.claimWithdrawal(1);
        vm.expectRevert(abi.encodeWithSelector(Errors.UnknownWithdrawal.selector, 1));
        fin.returnWithdrawal(1);
    }

    function test_collateralWithdrawal_ofAnAccountInDebtIsQueuedAndReturnedAfterFraud() public {
        _enable();
        _post();
        _aliceBorrows(1000e6); // id 1
        vm.prank(alice);
        vault.withdraw(aliceAcct, address(weth), 0.1e18, _emptyProof()); // id 2: still in debt
        (PendingWithdrawal memory w,) = fin.pendingWithdrawal(2);
        assertFalse(w.isCash);
        assertEq(w.token, address(weth));
        (, uint256[] memory before) = _balances(aliceAcct);
        assertEq(before[0], 0.9e18);
        (Epoch memory e, AccountLeaf memory a, AccountLeaf memory b) = _postDuplicate();
        _dispute(e.epoch, a, b);
        (, bool isVoid) = fin.pendingWithdrawal(2);
        assertTrue(isVoid);
        vm.warp(block.timestamp + WINDOW);
        vm.expectRevert(abi.encodeWithSelector(Errors.WithdrawalVoid.selector, 2));
        fin.claimWithdrawal(2);
        bytes32 chain0 = vault.stateChain(aliceAcct);
        fin.returnWithdrawal(2);
        fin.returnWithdrawal(1);
        (, uint256[] memory after_) = _balances(aliceAcct);
        assertEq(after_[0], 1e18);
        assertEq(_cash(alice), 0);
        // two returns, each a balance delta and a bounds delta: four deltas
        assertEq(uint64(uint256(vault.stateChain(aliceAcct))), uint64(uint256(chain0)) + 4);
        vm.expectRevert(abi.encodeWithSelector(Errors.UnknownWithdrawal.selector, 2));
        fin.returnWithdrawal(2);
    }

    function test_withdrawal_queuedBeforeAFraudButFinalIsStillPaid() public {
        _enable();
        _post();
        _aliceBorrows(1000e6);
        vm.warp(block.timestamp + WINDOW);
        (Epoch memory e, AccountLeaf memory a, AccountLeaf memory b) = _postDuplicate();
        _dispute(e.epoch, a, b); // declared at readyAt: outside [queuedAt, readyAt)
        vm.expectRevert(abi.encodeWithSelector(Errors.WithdrawalNotVoid.selector, 1));
        fin.returnWithdrawal(1);
        uint256 before = usdc.balanceOf(alice);
        fin.claimWithdrawal(1);
        assertEq(usdc.balanceOf(alice), before + 1000e6);
    }

    /* FRAUD PROOF */

    function test_disputeDuplicateLeaf_slashesTheBondAndEntersSafeMode() public {
        _enable();
        (Epoch memory e, AccountLeaf memory a, AccountLeaf memory b) = _postDuplicate();
        assertFalse(vault.isSafeMode());
        uint256 insurance0 = vault.insuranceFund();
        vm.expectEmit(address(vault));
        emit Events.FraudProven(e.epoch, bob, MIN_BOND6 * 1e12 / 2, MIN_BOND6 * 1e12 / 2);
        vm.prank(bob);
        _dispute(e.epoch, a, b);
        assertTrue(vault.isSafeMode());
        (uint64 fraudEpoch, uint64 through) = fin.fraudState();
        assertEq(fraudEpoch, e.epoch);
        assertEq(through, e.epoch);
        (,, uint256 bond) = fin.disputeConfig();
        assertEq(bond, 0);
        assertEq(vault.payoutOf(bob), MIN_BOND6 * 1e12 / 2);
        assertEq(vault.insuranceFund(), insurance0 + MIN_BOND6 * 1e12 / 2);
        uint256 before = usdc.balanceOf(bob);
        vm.prank(bob);
        vault.claimPayout();
        assertEq(usdc.balanceOf(bob), before + MIN_BOND6 / 2);
    }

    function test_dispute_revertsOnAnHonestPairOfLeaves() public {
        _enable();
        AccountLeaf memory a = _leaf(alice, 1000e18, 100e18, 50e18);
        AccountLeaf memory b = _leaf(bob, 1000e18, 100e18, 50e18);
        Epoch memory e = _post2(a, b);
        vm.expectRevert(abi.encodeWithSelector(Errors.LeafAccountMismatch.selector, aliceAcct, bobAcct));
        _dispute(e.epoch, a, b);
        vm.expectRevert(abi.encodeWithSelector(Errors.NotADuplicate.selector, aliceAcct));
        _dispute(e.epoch, a, a);
    }

    function test_dispute_revertsOnAWrongProof() public {
        _enable();
        (Epoch memory e, AccountLeaf memory a, AccountLeaf memory b) = _postDuplicate();
        AccountLeaf memory notInTree = _leaf(alice, 2_000_000e18, 100e18, 50e18);
        bytes32[] memory pa = _merkleProof(treeLeaves, _hashAccountLeaf(a));
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidAccountProof.selector, aliceAcct));
        fin.disputeDuplicateLeaf(e.epoch, a, pa, notInTree, pa);
        // the right leaves against another epoch's root
        bytes32[] memory pb = _merkleProof(treeLeaves, _hashAccountLeaf(b));
        _post();
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidAccountProof.selector, aliceAcct));
        fin.disputeDuplicateLeaf(e.epoch + 1, a, pa, b, pb);
    }

    function test_dispute_revertsAfterTheWindow() public {
        _enable();
        (Epoch memory e, AccountLeaf memory a, AccountLeaf memory b) = _postDuplicate();
        bytes32[] memory pa = _merkleProof(treeLeaves, _hashAccountLeaf(a));
        bytes32[] memory pb = _merkleProof(treeLeaves, _hashAccountLeaf(b));
        uint256 closes = block.timestamp + WINDOW;
        vm.warp(closes + 1);
        vm.expectRevert(abi.encodeWithSelector(Errors.ChallengeWindowOver.selector, e.epoch, closes));
        fin.disputeDuplicateLeaf(e.epoch, a, pa, b, pb);
        vm.warp(closes); // the last second of the window still counts
        fin.disputeDuplicateLeaf(e.epoch, a, pa, b, pb);
    }

    function test_dispute_revertsWhenDuplicated() public {
        _enable();
        (Epoch memory e, AccountLeaf memory a, AccountLeaf memory b) = _postDuplicate();
        _dispute(e.epoch, a, b);
        vm.expectRevert(abi.encodeWithSelector(Errors.EpochAlreadyJudged.selector, e.epoch, e.epoch));
        _dispute(e.epoch, a, b);
    }

    function test_dispute_revertsForAnEpochNotRecorded() public {
        Epoch memory e = _post(); // window 0 when posted
        _enable();
        AccountLeaf memory a = _leaf(alice, 1, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(Errors.EpochNotDisputable.selector, e.epoch));
        fin.disputeDuplicateLeaf(e.epoch, a, new bytes32[](0), a, new bytes32[](0));
        vm.expectRevert(abi.encodeWithSelector(Errors.EpochNotDisputable.selector, e.epoch + 5));
        fin.disputeDuplicateLeaf(e.epoch + 5, a, new bytes32[](0), a, new bytes32[](0));
    }

    /* SAFE MODE AND RESTORE */

    function test_safeMode_blocksRootBasedActionsUntilARotatedSetPosts() public {
        _enable();
        (Epoch memory e, AccountLeaf memory a, AccountLeaf memory b) = _postDuplicate();
        _dispute(e.epoch, a, b);
        // root-based actions stop
        _deposit(alice, weth, 1e18);
        vm.prank(alice);
        vm.expectRevert(Errors.SafeMode.selector);
        vault.withdrawCash(aliceAcct, 1e6, _emptyProof());
        // the same set cannot restore, even re-registered (a new config version)
        vm.roll(block.number + 1);
        Epoch memory next = _buildEpoch(new AccountLeaf[](0));
        bytes[] memory sigs = _signEpoch(next, _quorumKeys());
        vm.expectRevert(abi.encodeWithSelector(Errors.SignersNotRotated.selector, 3, 2));
        vault.postEpoch(next, sigs);
        vault.setSigners(signerAddrs, 2);
        next.configVersion = vault.configVersion();
        sigs = _signEpoch(next, _quorumKeys());
        vm.expectRevert(abi.encodeWithSelector(Errors.SignersNotRotated.selector, 3, 2));
        vault.postEpoch(next, sigs);
        // one old signer kept beside two new ones, quorum 2: the old set alone is below it
        _rotate(1);
        next.configVersion = vault.configVersion();
        // ... and no bond: the slashed one must be posted again
        sigs = _signEpoch(next, _quorumKeys());
        vm.expectRevert(abi.encodeWithSelector(Errors.BondTooLow.selector, 0, MIN_BOND6 * 1e12));
        vault.postEpoch(next, sigs);
        vm.prank(carol);
        fin.postBond(MIN_BOND6);
        vm.expectEmit(address(vault));
        emit Events.SafeModeLifted(next.epoch, vault.configVersion());
        vault.postEpoch(next, sigs);
        nextEpoch = next.epoch + 1;
        assertFalse(vault.isSafeMode());
        (uint64 fraudEpoch,) = fin.fraudState();
        assertEq(fraudEpoch, 0);
        vm.prank(alice);
        vault.withdrawCash(aliceAcct, 1e6, _emptyProof()); // queued again, not refused
        assertEq(fin.pendingWithdrawalCount(), 1);
    }

    function test_rotatedSet_epochsAreDisputableAgain_oldOnesAreNot() public {
        _enable();
        (Epoch memory e, AccountLeaf memory a, AccountLeaf memory b) = _postDuplicate();
        _dispute(e.epoch, a, b);
        _rotate(0);
        vm.prank(carol);
        fin.postBond(MIN_BOND6);
        (Epoch memory e2, AccountLeaf memory a2, AccountLeaf memory b2) = _postDuplicate();
        assertFalse(vault.isSafeMode());
        vm.expectRevert(abi.encodeWithSelector(Errors.EpochAlreadyJudged.selector, e.epoch, e.epoch));
        fin.disputeDuplicateLeaf(e.epoch, a, new bytes32[](0), b, new bytes32[](0));
        _dispute(e2.epoch, a2, b2);
        assertTrue(vault.isSafeMode());
    }

    function test_epochHistory_refusesToOverwriteADisputableRoot() public {
        _enable();
        Epoch memory first = _post();
        vm.roll(block.number + 1);
        Epoch memory e = _buildEpoch(new AccountLeaf[](0));
        e.epoch = first.epoch + 8192; // same ring slot
        bytes[] memory sigs = _signEpoch(e, _quorumKeys());
        vm.expectRevert(abi.encodeWithSelector(Errors.EpochHistoryFull.selector, first.epoch));
        vault.postEpoch(e, sigs);
        vm.warp(block.timestamp + WINDOW + 1);
        e.timestamp = uint64(block.timestamp);
        sigs = _signEpoch(e, _quorumKeys());
        vault.postEpoch(e, sigs);
        (bytes32 root,) = fin.epochRecord(first.epoch);
        assertEq(root, bytes32(0)); // overwritten: that epoch is final
    }

    /* HELPERS */

    /// @dev A new signer set of `keep` old signers and 3 - keep new ones, quorum 2; the
    /// BaseTest quorum keys become the set's first two keys.
    function _rotate(uint256 keep) internal {
        address[] memory set = new address[](3);
        for (uint256 i; i < 3; ++i) {
            if (i >= keep) {
                (address s, uint256 k) = makeAddrAndKey(string.concat("rotated", vm.toString(i)));
                signerAddrs[i] = s;
                signerKeys[i] = k;
            }
            set[i] = signerAddrs[i];
        }
        vault.setSigners(set, 2);
    }

    function _balances(uint256 account) internal view returns (int256 cash, uint256[] memory balances) {
        uint256[] memory all;
        (cash,,,,,,, all) = vault.accountState(account);
        balances = new uint256[](1);
        balances[0] = all[0]; // WETH, the first registered token
    }
}
