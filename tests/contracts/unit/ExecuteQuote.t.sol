// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {BaseTest} from "./BaseTest.sol";
import {Errors} from "../../../contracts/interfaces/Errors.sol";
import {Events} from "../../../contracts/interfaces/Events.sol";
import {
    AccountLeaf,
    InstrumentLeaf,
    InstrumentProof,
    MarginProof,
    Quote,
    Leg
} from "../../../contracts/interfaces/IMarginVault.sol";

/// @notice executeQuote / cancelQuote: fills, replay, cancel, expiry, taker restriction,
/// signatures, the IM gate on both sides, cash conservation, sizes summing to zero.
contract ExecuteQuoteTest is BaseTest {
    function setUp() public override {
        super.setUp();
        _depositCash(alice, 100_000e6);
        _depositCash(bob, 100_000e6);
        _depositCash(carol, 100_000e6);
        _postAll(100_000e18, 0, 0);
    }

    function _postAll(int256 equity, uint256 im, uint256 mm) internal {
        _post3(_leaf(alice, equity, im, mm), _leaf(bob, equity, im, mm), _leaf(carol, equity, im, mm));
    }

    function _exec(Quote memory q, bytes memory sig, address taker) internal {
        InstrumentProof[] memory ips = _legProofs(q);
        MarginProof memory a = _mp(q.maker);
        MarginProof memory b = _mp(taker);
        vm.prank(taker);
        vault.executeQuote(q, sig, ips, a, acctOf[taker], b);
    }

    /* FILLS */

    function test_executeQuote_movesPositionAndCash() public {
        Quote memory q = _quote(alice, bob, btcPerp, 1e18, 61_000e18, 7);
        bytes32 digest = vault.hashQuote(q);
        vm.expectEmit(address(vault));
        emit Events.Trade(digest, aliceAcct, bobAcct, btcPerp, 1e18, 61_000e18, 61_000e18);
        vm.expectEmit(address(vault));
        emit Events.QuoteExecuted(digest, aliceAcct, bobAcct, 7);
        _fill(q, aliceKey, bob);
        assertEq(_size(alice, btcPerp), 1e18);
        assertEq(_size(bob, btcPerp), -1e18);
        assertEq(_cash(alice), 100_000e18 - 61_000e18);
        assertEq(_cash(bob), 100_000e18 + 61_000e18);
        assertTrue(vault.nonceUsed(alice, 7));
        // lo = q*mark - q*p - loss(side)*|q|, hi = q*mark - q*p + loss(opposite)*|q|.
        (int256 lo, int256 hi) = _cum(alice);
        assertEq(lo, 100_000e18 + 60_000e18 - 61_000e18 - 6000e18);
        assertEq(hi, 100_000e18 + 60_000e18 - 61_000e18 + 6000e18);
        (lo, hi) = _cum(bob);
        assertEq(lo, 100_000e18 - 60_000e18 + 61_000e18 - 6000e18);
        assertEq(hi, 100_000e18 - 60_000e18 + 61_000e18 + 6000e18);
        (,,,, uint32[] memory ids, int256[] memory sizes,,) = vault.accountState(aliceAcct);
        assertEq(ids.length, 1);
        assertEq(ids[0], btcPerp);
        assertEq(sizes[0], 1e18);
    }

    function test_executeQuote_multiLegStrangleIsAtomic() public {
        Quote memory q = _quote(alice, address(0), btcCall, -1e18, 2100e18, 1);
        Leg[] memory legs = new Leg[](2);
        legs[0] = q.legs[0];
        legs[1] = Leg(btcPut, -1e18, 1400e18);
        q.legs = legs;
        _fill(q, aliceKey, carol); // open quote: anyone may take it
        assertEq(_size(alice, btcCall), -1e18);
        assertEq(_size(alice, btcPut), -1e18);
        assertEq(_size(carol, btcCall), 1e18);
        assertEq(_size(carol, btcPut), 1e18);
        assertEq(_cash(alice), 100_000e18 + 3500e18);
        assertEq(_cash(carol), 100_000e18 - 3500e18);
        // alice short both: lo = (-2000 + 2100 - 8000) + (-1500 + 1400 - 8000)
        (int256 lo,) = _cum(alice);
        assertEq(lo, 100_000e18 - 7900e18 - 8100e18);
    }

    function test_executeQuote_cashRoundedOnceAgainstTheBuyer() public {
        // 1 wei of size at $1.5: the buyer pays 2 wei, the seller receives the same 2 wei.
        _fill(_quote(alice, bob, btcPerp, 1, 1.5e18, 1), aliceKey, bob);
        assertEq(_cash(alice), 100_000e18 - 2);
        assertEq(_cash(bob), 100_000e18 + 2);
        _fill(_quote(alice, bob, ethPerp, -1, 1.5e18, 2), aliceKey, bob); // alice sells: bob buys
        assertEq(_cash(alice), 100_000e18);
        assertEq(_cash(bob), 100_000e18);
    }

    function testFuzz_executeQuote_conservesCashAndSizes(int256 size, uint256 price, bool ethLeg) public {
        size = bound(size, -1e18, 1e18);
        vm.assume(size != 0);
        uint32 id = ethLeg ? ethPerp : btcPerp;
        uint256 mark = instLeaf[id].mark;
        price = bound(price, mark * 8 / 10, mark * 12 / 10); // within the accounts' margin
        int256 cashBefore = _cash(alice) + _cash(bob);
        _fill(_quote(alice, bob, id, size, price, 1), aliceKey, bob);
        assertEq(_cash(alice) + _cash(bob), cashBefore, "cash created or destroyed");
        assertEq(_size(alice, id) + _size(bob, id), 0, "sizes do not sum to zero");
        // Maker's bounds bracket the change in equity at mark.
        int256 dEq = (_cash(alice) - 100_000e18) + size * int256(instLeaf[id].mark) / 1e18;
        (int256 lo, int256 hi) = _cum(alice);
        assertLe(lo - 100_000e18, dEq + 1);
        assertGe(hi - 100_000e18, dEq - 1);
    }

    function test_executeQuote_closingAllPositionsUsesOnChainValuation() public {
        _fill(_quote(alice, bob, btcPerp, 1e18, 60_000e18, 1), aliceKey, bob);
        _fill(_quote(alice, bob, btcPerp, -1e18, 59_000e18, 2), aliceKey, bob);
        assertEq(_size(alice, btcPerp), 0);
        (,,,, uint32[] memory ids,,,) = vault.accountState(aliceAcct);
        assertEq(ids.length, 0);
        assertEq(_cash(alice), 99_000e18);
        assertEq(vault.imSurplusLo(aliceAcct, _emptyProof()), 99_000e18);
    }

    /* REPLAY, CANCEL, EXPIRY, TAKER */

    function test_executeQuote_revertsWhenReplayed() public {
        Quote memory q = _quote(alice, bob, btcPerp, 1e18, 60_000e18, 1);
        bytes memory sig = _signQuote(q, aliceKey);
        _exec(q, sig, bob);
        InstrumentProof[] memory ips = _legProofs(q);
        MarginProof memory a = _mp(alice);
        MarginProof memory b = _mp(bob);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(Errors.NonceUsed.selector, alice, 1));
        vault.executeQuote(q, sig, ips, a, bobAcct, b);
    }

    function test_cancelQuote_blocksTheNonce() public {
        Quote memory q = _quote(alice, bob, btcPerp, 1e18, 60_000e18, 42);
        bytes memory sig = _signQuote(q, aliceKey);
        vm.expectEmit(address(vault));
        emit Events.QuoteCancelled(alice, 42);
        vm.prank(alice);
        vault.cancelQuote(42);
        assertTrue(vault.nonceUsed(alice, 42));
        InstrumentProof[] memory ips = _legProofs(q);
        MarginProof memory a = _mp(alice);
        MarginProof memory b = _mp(bob);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(Errors.NonceUsed.selector, alice, 42));
        vault.executeQuote(q, sig, ips, a, bobAcct, b);
    }

    function test_cancelQuote_revertsWhenAlreadyUsed() public {
        vm.startPrank(alice);
        vault.cancelQuote(1);
        vm.expectRevert(abi.encodeWithSelector(Errors.NonceUsed.selector, alice, 1));
        vault.cancelQuote(1);
        vm.stopPrank();
        // Another maker's nonce space is separate.
        vm.prank(bob);
        vault.cancelQuote(1);
    }

    function test_executeQuote_revertsWhenExpired() public {
        Quote memory q = _quote(alice, bob, btcPerp, 1e18, 60_000e18, 1);
        bytes memory sig = _signQuote(q, aliceKey);
        vm.warp(q.deadline + 1);
        _post(); // keep the vault out of safe mode; alice and bob have no positions
        InstrumentProof[] memory ips = _legProofs(q);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(Errors.QuoteExpired.selector, q.deadline, q.deadline + 1));
        vault.executeQuote(q, sig, ips, _emptyProof(), bobAcct, _emptyProof());
    }

    function test_executeQuote_acceptsAtDeadline() public {
        Quote memory q = _quote(alice, bob, btcPerp, 1e18, 60_000e18, 1);
        vm.warp(q.deadline);
        _fill(q, aliceKey, bob);
        assertEq(_size(bob, btcPerp), -1e18);
    }

    function test_executeQuote_revertsWhenWrongTaker() public {
        Quote memory q = _quote(alice, bob, btcPerp, 1e18, 60_000e18, 1);
        bytes memory sig = _signQuote(q, aliceKey);
        InstrumentProof[] memory ips = _legProofs(q);
        MarginProof memory a = _mp(alice);
        MarginProof memory c = _mp(carol);
        vm.prank(carol);
        vm.expectRevert(abi.encodeWithSelector(Errors.WrongTaker.selector, bob, carol));
        vault.executeQuote(q, sig, ips, a, carolAcct, c);
    }

    function test_executeQuote_revertsWhenSelfTrade() public {
        Quote memory q = _quote(alice, address(0), btcPerp, 1e18, 60_000e18, 1);
        bytes memory sig = _signQuote(q, aliceKey);
        InstrumentProof[] memory ips = _legProofs(q);
        MarginProof memory a = _mp(alice);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Errors.SelfTrade.selector, aliceAcct));
        vault.executeQuote(q, sig, ips, a, aliceAcct, a);
    }

    /* SIGNATURES */

    function test_executeQuote_revertsWhenSignedByAnotherKey() public {
        Quote memory q = _quote(alice, bob, btcPerp, 1e18, 60_000e18, 1);
        bytes memory sig = _signQuote(q, carolKey);
        InstrumentProof[] memory ips = _legProofs(q);
        MarginProof memory a = _mp(alice);
        MarginProof memory b = _mp(bob);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidQuoteSignature.selector, alice, carol));
        vault.executeQuote(q, sig, ips, a, bobAcct, b);
    }

    function test_executeQuote_revertsWhenQuoteAlteredAfterSigning() public {
        Quote memory q = _quote(alice, bob, btcPerp, 1e18, 60_000e18, 1);
        bytes memory sig = _signQuote(q, aliceKey);
        q.legs[0].price = 50_000e18; // taker tries a better price
        InstrumentProof[] memory ips = _legProofs(q);
        MarginProof memory a = _mp(alice);
        MarginProof memory b = _mp(bob);
        vm.prank(bob);
        vm.expectPartialRevert(Errors.InvalidQuoteSignature.selector);
        vault.executeQuote(q, sig, ips, a, bobAcct, b);
    }

    function test_executeQuote_revertsWhenSignedForAnotherChain() public {
        Quote memory q = _quote(alice, bob, btcPerp, 1e18, 60_000e18, 1);
        vm.chainId(5);
        bytes memory sig = _signQuote(q, aliceKey);
        vm.chainId(31337);
        InstrumentProof[] memory ips = _legProofs(q);
        MarginProof memory a = _mp(alice);
        MarginProof memory b = _mp(bob);
        vm.prank(bob);
        vm.expectPartialRevert(Errors.InvalidQuoteSignature.selector);
        vault.executeQuote(q, sig, ips, a, bobAcct, b);
    }

    function test_executeQuote_revertsWhenSignatureMalformed() public {
        Quote memory q = _quote(alice, bob, btcPerp, 1e18, 60_000e18, 1);
        InstrumentProof[] memory ips = _legProofs(q);
        MarginProof memory a = _mp(alice);
        MarginProof memory b = _mp(bob);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidQuoteSignature.selector, alice, address(0)));
        vault.executeQuote(q, hex"00", ips, a, bobAcct, b);
    }

    /* LEGS AND INSTRUMENT LEAVES */

    function test_executeQuote_revertsWhenLegsAndProofsDiffer() public {
        Quote memory q = _quote(alice, bob, btcPerp, 1e18, 60_000e18, 1);
        bytes memory sig = _signQuote(q, aliceKey);
        InstrumentProof[] memory none = new InstrumentProof[](0);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidLegs.selector, 1, 0));
        vault.executeQuote(q, sig, none, _emptyProof(), bobAcct, _emptyProof());

        Quote memory empty = _quote(alice, bob, btcPerp, 1e18, 60_000e18, 2);
        empty.legs = new Leg[](0);
        sig = _signQuote(empty, aliceKey);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidLegs.selector, 0, 0));
        vault.executeQuote(empty, sig, none, _emptyProof(), bobAcct, _emptyProof());

        Quote memory many = _quote(alice, bob, btcPerp, 1e18, 60_000e18, 3);
        many.legs = new Leg[](9);
        for (uint256 i; i < 9; ++i) {
            many.legs[i] = Leg(btcPerp, 1e15, 60_000e18);
        }
        sig = _signQuote(many, aliceKey);
        InstrumentProof[] memory ips = _legProofs(many);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidLegs.selector, 9, 9));
        vault.executeQuote(many, sig, ips, _emptyProof(), bobAcct, _emptyProof());
    }

    function test_executeQuote_revertsWhenZeroSize() public {
        Quote memory q = _quote(alice, bob, btcPerp, 0, 60_000e18, 1);
        bytes memory sig = _signQuote(q, aliceKey);
        InstrumentProof[] memory ips = _legProofs(q);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(Errors.ZeroSize.selector, btcPerp));
        vault.executeQuote(q, sig, ips, _emptyProof(), bobAcct, _emptyProof());
    }

    function test_executeQuote_revertsWhenInstrumentLeafWrong() public {
        Quote memory q = _quote(alice, bob, btcPerp, 1e18, 60_000e18, 1);
        bytes memory sig = _signQuote(q, aliceKey);
        InstrumentProof[] memory ips = new InstrumentProof[](1);
        ips[0] = _ip(ethPerp); // another instrument's leaf
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(Errors.InstrumentLeafMismatch.selector, btcPerp, ethPerp));
        vault.executeQuote(q, sig, ips, _emptyProof(), bobAcct, _emptyProof());
        ips[0] = _ip(btcPerp);
        ips[0].leaf.lossPerUnitLong = 1; // a loss the signers did not attest
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidInstrumentProof.selector, btcPerp));
        vault.executeQuote(q, sig, ips, _emptyProof(), bobAcct, _emptyProof());
    }

    function test_executeQuote_revertsWhenInstrumentUnknownOrExpired() public {
        Quote memory q = _quote(alice, bob, 77, 1e18, 1e18, 1);
        bytes memory sig = _signQuote(q, aliceKey);
        InstrumentProof[] memory ips = new InstrumentProof[](1);
        ips[0].leaf = InstrumentLeaf(77, 1, 1, 1, 0, bytes32(0));
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(Errors.UnknownInstrument.selector, 77));
        vault.executeQuote(q, sig, ips, _emptyProof(), bobAcct, _emptyProof());

        vm.warp(EXPIRY);
        _post();
        q = _quote(alice, bob, btcCall, 1e18, 1e18, 2);
        sig = _signQuote(q, aliceKey);
        ips = _legProofs(q);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(Errors.InstrumentExpired.selector, btcCall, EXPIRY));
        vault.executeQuote(q, sig, ips, _emptyProof(), bobAcct, _emptyProof());
    }

    /* THE IM GATE */

    function test_executeQuote_revertsWhenMakerOverTheBound() public {
        // alice holds a position (so her leaf, not her cash, bounds her): the leaf says IM
        // surplus 5000; a 1 BTC long costs 6000 of bound at mark.
        _fill(_quote(carol, alice, ethPerp, -0.1e18, 3000e18, 50), carolKey, alice);
        _post3(_leaf(alice, 100_000e18, 95_000e18, 90_000e18), _leaf(bob, 100_000e18, 0, 0), _leaf(carol, 0, 0, 0));
        Quote memory q = _quote(alice, bob, btcPerp, 1e18, 60_000e18, 1);
        bytes memory sig = _signQuote(q, aliceKey);
        InstrumentProof[] memory ips = _legProofs(q);
        MarginProof memory a = _mp(alice);
        MarginProof memory b = _mp(bob);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(Errors.InsufficientMargin.selector, aliceAcct, -int256(1000e18)));
        vault.executeQuote(q, sig, ips, a, bobAcct, b);
        // Half the size fits (3000 of bound).
        _fill(_quote(alice, bob, btcPerp, 0.5e18, 60_000e18, 2), aliceKey, bob);
        assertEq(_size(alice, btcPerp), 0.5e18);
    }

    function test_executeQuote_revertsWhenTakerOverTheBound() public {
        _fill(_quote(carol, bob, ethPerp, -0.1e18, 3000e18, 50), carolKey, bob); // bob holds a position
        _post3(_leaf(alice, 100_000e18, 0, 0), _leaf(bob, 100_000e18, 99_000e18, 90_000e18), _leaf(carol, 0, 0, 0));
        Quote memory q = _quote(alice, bob, btcPerp, 1e18, 60_000e18, 1);
        bytes memory sig = _signQuote(q, aliceKey);
        InstrumentProof[] memory ips = _legProofs(q);
        MarginProof memory a = _mp(alice);
        MarginProof memory b = _mp(bob);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(Errors.InsufficientMargin.selector, bobAcct, -int256(5000e18)));
        vault.executeQuote(q, sig, ips, a, bobAcct, b);
    }

    /* FIRST TRADE WITHOUT A LEAF (docs/protocol.md §5) */

    /// @dev A fresh account (deposited after the current epoch's snapshot: no ACCOUNT leaf),
    /// with `cash6` cash and `wethAmount` WETH (haircut value 2400 per WETH).
    function _freshAccount(string memory name, uint256 cash6, uint256 wethAmount)
        internal
        returns (address who, uint256 key)
    {
        (who, key) = makeAddrAndKey(name);
        _fund(who);
        if (cash6 > 0) _depositCash(who, cash6);
        if (wethAmount > 0) _deposit(who, weth, wethAmount);
        assertFalse(inTree[acctOf[who]]);
    }

    function _execEmpty(Quote memory q, bytes memory sig, address taker) internal {
        InstrumentProof[] memory ips = _legProofs(q);
        vm.prank(taker);
        vault.executeQuote(q, sig, ips, _emptyProof(), acctOf[taker], _emptyProof());
    }

    /// @dev Maker gets +1 BTC perp at 61k and -1 BTC put at 1400.
    /// maker lo: (60k - 61k - 6000) + (-1500 + 1400 - 8000) = -15,100
    /// taker lo: (-60k + 61k - 6000) + (1500 - 1400 - 1500) = -6,400
    function _twoLegQuote(address maker, address taker, uint256 nonce) internal view returns (Quote memory q) {
        q = _quote(maker, taker, btcPerp, 1e18, 61_000e18, nonce);
        Leg[] memory legs = new Leg[](2);
        legs[0] = q.legs[0];
        legs[1] = Leg(btcPut, -1e18, 1400e18);
        q.legs = legs;
    }

    function test_executeQuote_freshTakerNeedsNoLeaf() public {
        (address dave,) = _freshAccount("dave", 10_000e6, 0);
        Quote memory q = _quote(alice, dave, btcPerp, 1e18, 60_000e18, 1);
        bytes memory sig = _signQuote(q, aliceKey);
        InstrumentProof[] memory ips = _legProofs(q);
        MarginProof memory a = _mp(alice);
        vm.prank(dave);
        vault.executeQuote(q, sig, ips, a, acctOf[dave], _emptyProof());
        assertEq(_size(dave, btcPerp), -1e18);
        // dave: on-chain 10,000 + leg lo (-60k + 60k - 6000) = 4000
        (int256 lo,) = _cum(dave);
        assertEq(lo, 10_000e18 - 6000e18);
    }

    function test_executeQuote_freshMakerAndTakerTwoLegsNeedNoLeaf() public {
        (address dave, uint256 daveKey) = _freshAccount("dave", 20_000e6, 1e18);
        (address erin,) = _freshAccount("erin", 10_000e6, 0);
        _execEmpty(_twoLegQuote(dave, erin, 1), _signQuote(_twoLegQuote(dave, erin, 1), daveKey), erin);
        assertEq(_size(dave, btcPerp), 1e18);
        assertEq(_size(dave, btcPut), -1e18);
        assertEq(_size(erin, btcPerp), -1e18);
        assertEq(_size(erin, btcPut), 1e18);
        assertEq(_cash(dave), 20_000e18 - 61_000e18 + 1400e18);
        assertEq(_cash(erin), 10_000e18 + 61_000e18 - 1400e18);
        (int256 lo,) = _cum(dave);
        assertEq(lo, 20_000e18 + 2400e18 - 15_100e18);
        (lo,) = _cum(erin);
        assertEq(lo, 10_000e18 - 6400e18);
    }

    function test_executeQuote_revertsWhenFreshMakerOverOnChainCapacity() public {
        // 15,000 cash + 1 WETH (2400 haircut) - 15,100 of leg bound = 2300: passes; without the
        // WETH it is -100.
        (address dave, uint256 daveKey) = _freshAccount("dave", 15_000e6, 0);
        (address erin,) = _freshAccount("erin", 10_000e6, 0);
        Quote memory q = _twoLegQuote(dave, erin, 1);
        bytes memory sig = _signQuote(q, daveKey);
        InstrumentProof[] memory ips = _legProofs(q);
        vm.prank(erin);
        vm.expectRevert(abi.encodeWithSelector(Errors.InsufficientMargin.selector, acctOf[dave], -int256(100e18)));
        vault.executeQuote(q, sig, ips, _emptyProof(), acctOf[erin], _emptyProof());
        _deposit(dave, weth, 1e18);
        _execEmpty(q, sig, erin);
        assertEq(_size(dave, btcPut), -1e18);
    }

    function test_executeQuote_revertsWhenFreshTakerOverOnChainCapacity() public {
        // erin: 1000 cash + 1 WETH (2400) - 6400 = -3000.
        (address dave, uint256 daveKey) = _freshAccount("dave", 20_000e6, 0);
        (address erin,) = _freshAccount("erin", 1000e6, 1e18);
        Quote memory q = _twoLegQuote(dave, erin, 1);
        bytes memory sig = _signQuote(q, daveKey);
        InstrumentProof[] memory ips = _legProofs(q);
        vm.prank(erin);
        vm.expectRevert(abi.encodeWithSelector(Errors.InsufficientMargin.selector, acctOf[erin], -int256(3000e18)));
        vault.executeQuote(q, sig, ips, _emptyProof(), acctOf[erin], _emptyProof());
        // One leg alone (-5000 on the perp short, at 61k) is still over: 3400 - 5000.
        q = _quote(dave, erin, btcPerp, 1e18, 61_000e18, 2);
        sig = _signQuote(q, daveKey);
        ips = _legProofs(q);
        vm.prank(erin);
        vm.expectRevert(abi.encodeWithSelector(Errors.InsufficientMargin.selector, acctOf[erin], -int256(1600e18)));
        vault.executeQuote(q, sig, ips, _emptyProof(), acctOf[erin], _emptyProof());
    }

    function test_executeQuote_secondTradeOfFreshAccountNeedsLeaf() public {
        (address dave,) = _freshAccount("dave", 100_000e6, 0);
        Quote memory q = _quote(alice, dave, btcPerp, 1e18, 60_000e18, 1);
        _exec(q, _signQuote(q, aliceKey), dave); // _mp(dave) is empty: dave is not in the tree
        // Now dave holds a position: the same epoch has no leaf for it.
        q = _quote(alice, dave, ethPerp, 1e18, 3000e18, 2);
        bytes memory sig = _signQuote(q, aliceKey);
        InstrumentProof[] memory ips = _legProofs(q);
        MarginProof memory a = _mp(alice);
        vm.prank(dave);
        vm.expectRevert(abi.encodeWithSelector(Errors.LeafAccountMismatch.selector, acctOf[dave], address(0)));
        vault.executeQuote(q, sig, ips, a, acctOf[dave], _emptyProof());
        // With its leaf in the next epoch it trades.
        _post2(_leaf(alice, 100_000e18, 0, 0), _leaf(dave, 100_000e18, 6000e18, 4800e18));
        _exec(q, sig, dave);
        assertEq(_size(dave, ethPerp), -1e18);
    }

    function test_executeQuote_freshAccountInSafeModeReverts() public {
        (address dave,) = _freshAccount("dave", 100_000e6, 0);
        Quote memory q = _quote(alice, dave, btcPerp, 1e18, 60_000e18, 1);
        q.deadline = uint64(block.timestamp + 2 hours);
        bytes memory sig = _signQuote(q, aliceKey);
        vm.warp(block.timestamp + MAX_AGE + 1);
        InstrumentProof[] memory ips = _legProofs(q);
        vm.prank(dave);
        vm.expectRevert(Errors.SafeMode.selector);
        vault.executeQuote(q, sig, ips, _emptyProof(), acctOf[dave], _emptyProof());
    }

    function test_executeQuote_revertsInSafeMode() public {
        Quote memory q = _quote(alice, bob, btcPerp, 1e18, 60_000e18, 1);
        q.deadline = uint64(block.timestamp + 2 hours);
        bytes memory sig = _signQuote(q, aliceKey);
        InstrumentProof[] memory ips = _legProofs(q);
        MarginProof memory a = _mp(alice);
        MarginProof memory b = _mp(bob);
        vm.warp(block.timestamp + MAX_AGE + 1);
        assertTrue(vault.isSafeMode());
        vm.prank(bob);
        vm.expectRevert(Errors.SafeMode.selector);
        vault.executeQuote(q, sig, ips, a, bobAcct, b);
    }

    /* POSITION LIMIT */

    function test_executeQuote_revertsWhenOverPositionLimit() public {
        for (uint256 i; i < 61; ++i) {
            uint32 id = vault.registerInstrument(0, bytes32(abi.encodePacked("X", vm.toString(i))), 0, 0);
            instLeaf[id] = InstrumentLeaf(id, 1e18, 0.1e18, 0.1e18, 0, bytes32(0));
        }
        _postAll(100_000e18, 0, 0);
        uint32 n = vault.instrumentCount(); // 65
        uint256 nonce;
        for (uint32 start = 1; start <= 64; start += 8) {
            Quote memory q = _quote(alice, bob, start, 1e15, 1e18, ++nonce);
            q.legs = new Leg[](8);
            for (uint32 k; k < 8; ++k) {
                q.legs[k] = Leg(start + k, 1e15, 1e18);
            }
            _fill(q, aliceKey, bob);
        }
        (,,,, uint32[] memory ids,,,) = vault.accountState(aliceAcct);
        assertEq(ids.length, 64);
        Quote memory last = _quote(alice, bob, n, 1e15, 1e18, ++nonce);
        bytes memory sig = _signQuote(last, aliceKey);
        InstrumentProof[] memory ips = _legProofs(last);
        MarginProof memory a = _mp(alice);
        MarginProof memory b = _mp(bob);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(Errors.TooManyPositions.selector, aliceAcct, 64));
        vault.executeQuote(last, sig, ips, a, bobAcct, b);
        // Closing one position frees a slot.
        _fill(_quote(alice, bob, 5, -1e15, 1e18, ++nonce), aliceKey, bob);
        _fill(last, aliceKey, bob);
        assertEq(_size(alice, n), 1e15);
    }
}
