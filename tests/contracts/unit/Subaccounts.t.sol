// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {BaseTest} from "./BaseTest.sol";
import {Errors} from "../../../contracts/interfaces/Errors.sol";
import {Events} from "../../../contracts/interfaces/Events.sol";
import {AccountState, InstrumentProof, MarginProof, Quote} from "../../../contracts/interfaces/IMarginVault.sol";

/// @notice Subaccounts (docs/protocol.md, "Subaccounts"): ids, owners, operators, transfers,
/// and the authority every action that names a subaccount checks.
///
/// Fixture: alice owns subaccount 1, bob 2, carol 3 (BaseTest). alice holds a BTC perp long
/// against bob, so both need their leaves.
contract SubaccountsTest is BaseTest {
    function setUp() public override {
        super.setUp();
        _depositCash(alice, 100_000e6);
        _depositCash(bob, 100_000e6);
        _deposit(alice, weth, 2e18);
        _post2(_leaf(alice, 106_000e18, 0, 0), _leaf(bob, 100_000e18, 0, 0));
        _fill(_quote(alice, bob, btcPerp, 1e18, 60_000e18, 1), aliceKey, bob);
        _post2(_leaf(alice, 106_000e18, 6000e18, 4800e18), _leaf(bob, 100_000e18, 6000e18, 4800e18));
    }

    /* CREATION AND VIEWS */

    function test_createSubaccount_numbersFromOneAndEmitsTheOwner() public {
        assertEq(vault.subaccountCount(), 3);
        assertEq(vault.ownerOf(1), alice);
        assertEq(vault.ownerOf(3), carol);
        vm.expectEmit(address(vault));
        emit Events.SubaccountTransferred(4, address(0), alice);
        vm.prank(alice);
        uint256 second = vault.createSubaccount();
        assertEq(second, 4);
        assertEq(vault.ownerOf(4), alice);
        assertEq(vault.subaccountCount(), 4);
    }

    function test_ownerOf_revertsWhenUnknownSubaccount() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.UnknownSubaccount.selector, 0));
        vault.ownerOf(0);
        vm.expectRevert(abi.encodeWithSelector(Errors.UnknownSubaccount.selector, 4));
        vault.ownerOf(4);
    }

    function test_subaccountsOfOneOwnerAreSeparateBooks() public {
        vm.prank(alice);
        uint256 second = vault.createSubaccount();
        vm.prank(alice);
        vault.depositCash(second, 500e6);
        assertEq(_cashOf(second), 500e18);
        assertEq(_cash(alice), 40_000e18); // the first is untouched
        assertEq(_sizeOf(second, btcPerp), 0);
    }

    /* TRANSFER */

    function test_transferSubaccount_movesOnlyTheOwner() public {
        AccountState memory before = _stateOf(aliceAcct);
        vm.expectEmit(address(vault));
        emit Events.SubaccountTransferred(aliceAcct, alice, carol);
        vm.prank(alice);
        vault.transferSubaccount(aliceAcct, carol);
        assertEq(vault.ownerOf(aliceAcct), carol);
        assertEq(keccak256(abi.encode(_stateOf(aliceAcct))), keccak256(abi.encode(before)));
        // the leaf stays valid: carol withdraws on it, to herself
        MarginProof memory mp = _mp(alice);
        uint256 held = usdc.balanceOf(carol);
        vm.prank(carol);
        vault.withdrawCash(aliceAcct, 1000e6, mp);
        assertEq(usdc.balanceOf(carol), held + 1000e6);
        // and alice no longer acts on it
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Errors.NotAuthorized.selector, aliceAcct, alice));
        vault.withdrawCash(aliceAcct, 1000e6, mp);
    }

    function testFuzz_transferSubaccount_changesNoBalanceCashPositionBoundOrNonce(
        uint256 toSeed,
        uint96 cash6,
        uint96 weth18
    ) public {
        address to = address(uint160(bound(toSeed, 1, type(uint160).max)));
        cash6 = uint96(bound(cash6, 1, 1_000_000e6));
        weth18 = uint96(bound(weth18, 1, 1000e18));
        _depositCash(alice, cash6);
        _deposit(alice, weth, weth18);
        bytes memory before = _full(aliceAcct);
        bytes memory bobBefore = _full(bobAcct);
        uint256 held = usdc.balanceOf(address(vault));
        uint256 heldWeth = weth.balanceOf(address(vault));
        vm.prank(alice);
        vault.transferSubaccount(aliceAcct, to);
        assertEq(vault.ownerOf(aliceAcct), to);
        assertEq(_full(aliceAcct), before);
        assertEq(usdc.balanceOf(address(vault)), held);
        assertEq(weth.balanceOf(address(vault)), heldWeth);
        assertEq(_full(bobAcct), bobBefore); // and nobody else's
    }

    function test_transferSubaccount_revertsWhenToZeroAddress() public {
        vm.prank(alice);
        vm.expectRevert(Errors.ZeroAddress.selector);
        vault.transferSubaccount(aliceAcct, address(0));
        assertEq(vault.ownerOf(aliceAcct), alice);
    }

    function test_transferSubaccount_revertsWhenNotOwnerNorOperator() public {
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(Errors.NotAuthorized.selector, aliceAcct, bob));
        vault.transferSubaccount(aliceAcct, bob);
    }

    function test_transferSubaccount_revertsWhenUnknownSubaccount() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Errors.UnknownSubaccount.selector, 77));
        vault.transferSubaccount(77, bob);
    }

    /* OPERATORS */

    function test_setOperator_actsForEverySubaccountOfTheOwnerAndPaysTheOwner() public {
        vm.prank(alice);
        uint256 second = vault.createSubaccount();
        vm.expectEmit(address(vault));
        emit Events.OperatorSet(alice, carol, true);
        vm.prank(alice);
        vault.setOperator(carol, true);
        assertTrue(vault.isOperator(alice, carol));
        // carol deposits her own tokens into alice's second subaccount...
        vm.prank(carol);
        vault.depositCash(second, 700e6);
        assertEq(_cashOf(second), 700e18);
        // ...and withdraws from the first: the tokens go to alice, the owner.
        uint256 aliceHeld = usdc.balanceOf(alice);
        uint256 carolHeld = usdc.balanceOf(carol);
        MarginProof memory mp = _mp(alice);
        vm.prank(carol);
        vault.withdrawCash(aliceAcct, 1000e6, mp);
        assertEq(usdc.balanceOf(alice), aliceHeld + 1000e6);
        assertEq(usdc.balanceOf(carol), carolHeld);
        vm.prank(carol);
        vault.withdraw(aliceAcct, address(weth), 1e18, mp);
        assertEq(weth.balanceOf(carol), 10_000e18);
        // an operator may transfer, too
        vm.prank(carol);
        vault.transferSubaccount(second, bob);
        assertEq(vault.ownerOf(second), bob);
    }

    function test_setOperator_revokedOperatorIsAStrangerAgain() public {
        vm.prank(alice);
        vault.setOperator(carol, true);
        vm.prank(alice);
        vault.setOperator(carol, false);
        assertFalse(vault.isOperator(alice, carol));
        vm.prank(carol);
        vm.expectRevert(abi.encodeWithSelector(Errors.NotAuthorized.selector, aliceAcct, carol));
        vault.depositCash(aliceAcct, 1e6);
    }

    function test_setOperator_followsTheOwnerNotTheSubaccount() public {
        vm.prank(alice);
        vault.setOperator(carol, true);
        vm.prank(alice);
        vault.transferSubaccount(aliceAcct, bob);
        // carol operated for alice; the subaccount is bob's now
        vm.prank(carol);
        vm.expectRevert(abi.encodeWithSelector(Errors.NotAuthorized.selector, aliceAcct, carol));
        vault.depositCash(aliceAcct, 1e6);
    }

    /* AUTHORITY OF EVERY ACTION */

    function test_deposit_revertsWhenNotOwnerNorOperator() public {
        // a stranger's deposit would move someone's bounds
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(Errors.NotAuthorized.selector, aliceAcct, bob));
        vault.deposit(aliceAcct, address(weth), 1e18);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(Errors.NotAuthorized.selector, aliceAcct, bob));
        vault.depositCash(aliceAcct, 1e6);
    }

    function test_withdraw_revertsWhenNotOwnerNorOperator() public {
        MarginProof memory mp = _mp(alice);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(Errors.NotAuthorized.selector, aliceAcct, bob));
        vault.withdraw(aliceAcct, address(weth), 1e18, mp);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(Errors.NotAuthorized.selector, aliceAcct, bob));
        vault.withdrawCash(aliceAcct, 1e6, mp);
    }

    function test_actions_revertWhenUnknownSubaccount() public {
        vm.startPrank(alice);
        vm.expectRevert(abi.encodeWithSelector(Errors.UnknownSubaccount.selector, 9));
        vault.deposit(9, address(weth), 1e18);
        vm.expectRevert(abi.encodeWithSelector(Errors.UnknownSubaccount.selector, 9));
        vault.depositCash(9, 1e6);
        vm.expectRevert(abi.encodeWithSelector(Errors.UnknownSubaccount.selector, 9));
        vault.withdraw(9, address(weth), 1e18, _emptyProof());
        vm.expectRevert(abi.encodeWithSelector(Errors.UnknownSubaccount.selector, 9));
        vault.withdrawCash(9, 1e6, _emptyProof());
        vm.expectRevert(abi.encodeWithSelector(Errors.UnknownSubaccount.selector, 9));
        vault.applyFunding(9);
        vm.expectRevert(abi.encodeWithSelector(Errors.UnknownSubaccount.selector, 9));
        vault.settle(9, btcCall);
        vm.stopPrank();
    }

    function test_applyFunding_staysOpenToAnyone() public {
        vm.prank(makeAddr("stranger"));
        vault.applyFunding(aliceAcct);
    }

    /* TRADING BETWEEN SUBACCOUNTS */

    function test_executeQuote_betweenTwoSubaccountsOfOneOwner() public {
        vm.prank(alice);
        uint256 second = vault.createSubaccount();
        vm.prank(alice);
        vault.depositCash(second, 10_000e6);
        // alice moves half her long into her second subaccount: she signs as maker for the
        // first and takes with the second; each side is margin-checked on its own.
        Quote memory q = _quote(alice, address(0), btcPerp, -0.5e18, 60_000e18, 2);
        _fillAs(q, aliceKey, alice, second);
        assertEq(_size(alice, btcPerp), 0.5e18);
        assertEq(_sizeOf(second, btcPerp), 0.5e18);
    }

    function test_executeQuote_revertsWhenSameSubaccountOnBothSides() public {
        Quote memory q = _quote(alice, address(0), btcPerp, 0.1e18, 60_000e18, 2);
        bytes memory sig = _signQuote(q, aliceKey);
        InstrumentProof[] memory ips = _legProofs(q);
        MarginProof memory mp = _mp(alice);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Errors.SelfTrade.selector, aliceAcct));
        vault.executeQuote(q, sig, ips, mp, aliceAcct, mp);
    }

    function test_executeQuote_revertsWhenTakerNotOwnerNorOperatorOfTakerAccount() public {
        Quote memory q = _quote(bob, address(0), btcPerp, 0.1e18, 60_000e18, 2);
        bytes memory sig = _signQuote(q, bobKey);
        InstrumentProof[] memory ips = _legProofs(q);
        MarginProof memory a = _mp(alice);
        MarginProof memory b = _mp(bob);
        // carol tries to fill bob's quote against alice's subaccount
        vm.prank(carol);
        vm.expectRevert(abi.encodeWithSelector(Errors.NotAuthorized.selector, aliceAcct, carol));
        vault.executeQuote(q, sig, ips, b, aliceAcct, a);
    }

    function test_executeQuote_revertsWhenMakerNoLongerActsForMakerAccount() public {
        // alice signs for her subaccount, then gives it to carol: the quote is dead.
        Quote memory q = _quote(alice, bob, btcPerp, 0.1e18, 60_000e18, 2);
        bytes memory sig = _signQuote(q, aliceKey);
        vm.prank(alice);
        vault.transferSubaccount(aliceAcct, carol);
        InstrumentProof[] memory ips = _legProofs(q);
        MarginProof memory a = _mp(alice);
        MarginProof memory b = _mp(bob);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(Errors.NotAuthorized.selector, aliceAcct, alice));
        vault.executeQuote(q, sig, ips, a, bobAcct, b);
    }

    function test_executeQuote_operatorSignsForTheOwnersSubaccount() public {
        (address mm, uint256 mmKey) = makeAddrAndKey("market maker");
        vm.prank(alice);
        vault.setOperator(mm, true);
        Quote memory q = _quote(alice, bob, btcPerp, -0.5e18, 60_000e18, 2);
        q.maker = mm; // the operator signs; nonces are the signer's
        _fill(q, mmKey, bob);
        assertEq(_size(alice, btcPerp), 0.5e18);
        assertTrue(vault.nonceUsed(mm, 2));
        assertFalse(vault.nonceUsed(alice, 2));
    }

    /* HELPERS */

    function _stateOf(uint256 account) internal view returns (AccountState memory) {
        uint256[] memory one = new uint256[](1);
        one[0] = account;
        return vault.accountStates(one)[0];
    }

    /// @dev Everything recorded for `account` except its owner: state, bound record, balances.
    function _full(uint256 account) internal view returns (bytes memory) {
        (uint64 b, uint64 e, uint64 t) = vault.boundChange(account);
        return abi.encode(_stateOf(account), b, e, t);
    }
}
