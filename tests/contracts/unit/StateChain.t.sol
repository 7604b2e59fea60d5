// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Vm} from "forge-std/Vm.sol";

import {BaseTest} from "./BaseTest.sol";
import {StateChainGhost} from "../mocks/StateChainGhost.sol";
import {StateLens} from "../../../contracts/StateLens.sol";
import {StateChain} from "../../../contracts/libraries/StateChain.sol";
import {Errors} from "../../../contracts/interfaces/Errors.sol";
import {
    AccountLeaf,
    CommittedState,
    Epoch,
    FundingUpdate,
    Leg,
    MarginProof,
    Quote,
    Settlement,
    StateCollateral,
    StateDelta,
    StatePosition
} from "../../../contracts/interfaces/IMarginVault.sol";

/// @notice The state chain (docs/protocol.md §9): every kind of state change folds the
/// expected delta, the keeper's event rule (the ghost) rebuilds the same chain, and
/// `StateLens.proveStateAt` accepts the true older state and refuses every tampering.
contract StateChainTest is BaseTest {
    uint8 internal constant CASH = 1;
    uint8 internal constant POSITION = 2;
    uint8 internal constant COLLATERAL = 3;
    uint8 internal constant BOUNDS = 4;

    StateLens internal lens;
    StateChainGhost internal ghost;

    function setUp() public override {
        super.setUp();
        lens = new StateLens(address(vault));
        ghost = new StateChainGhost(vault);
        vm.recordLogs();
    }

    /// @dev Feeds the ghost every log since the last sync (only successful calls here).
    function _sync() internal {
        ghost.ingest(vm.getRecordedLogs());
    }

    function _step(bytes32 w, uint8 kind, uint256 key, int256 oA, int256 oB, int256 nA, int256 nB)
        internal
        pure
        returns (bytes32)
    {
        return StateChain.step(w, kind, key, oA, oB, nA, nB);
    }

    function _cum(uint256 account) internal view returns (int256[2] memory b) {
        (,, b[0], b[1],,,,) = vault.accountState(account);
    }

    /// @dev The BOUNDS delta from `before` to the account's bounds now (docs/protocol.md §9).
    function _stepBounds(bytes32 w, int256[2] memory before, uint256 account) internal view returns (bytes32) {
        int256[2] memory b = _cum(account);
        assertTrue(b[0] != before[0] || b[1] != before[1], "the action moved the bounds");
        return _step(w, BOUNDS, 0, before[0], before[1], b[0], b[1]);
    }

    function _seq(uint256 account) internal view returns (uint64) {
        return uint64(uint256(vault.stateChain(account)));
    }

    function _assertGhost(uint256 account) internal {
        _sync();
        assertEq(vault.stateChain(account), ghost.word(account), "ghost chain differs from the vault's");
    }

    /// @dev An epoch with ample leaves for alice and bob (trades need a root and, for a side
    /// that holds positions, its leaf).
    function _postTwo() internal {
        _post2(_leaf(alice, 1e24, 0, 0), _leaf(bob, 1e24, 0, 0));
    }

    /* SHARED VECTORS (tests/vectors/state_chain.json, scripts/gen_vectors.py) */

    function test_vectors_stepAndHashStateMatchPython() public view {
        string memory json = vm.readFile("tests/vectors/state_chain.json");
        bytes32 w;
        uint256 i;
        for (; vm.keyExistsJson(json, string.concat("$.steps[", vm.toString(i), "]")); ++i) {
            string memory p = string.concat("$.steps[", vm.toString(i), "]");
            w = StateChain.step(
                w,
                uint8(vm.parseJsonUint(json, string.concat(p, ".kind"))),
                vm.parseJsonUint(json, string.concat(p, ".key")),
                vm.parseJsonInt(json, string.concat(p, ".oldA")),
                vm.parseJsonInt(json, string.concat(p, ".oldB")),
                vm.parseJsonInt(json, string.concat(p, ".newA")),
                vm.parseJsonInt(json, string.concat(p, ".newB"))
            );
            assertEq(w, vm.parseJsonBytes32(json, string.concat(p, ".word")), p);
        }
        assertEq(i, 9, "steps read");
        for (uint256 k; k < 3; ++k) {
            string memory p = string.concat("$.states[", vm.toString(k), "]");
            CommittedState memory st;
            st.cash = vm.parseJsonInt(json, string.concat(p, ".cash"));
            st.cumLo = vm.parseJsonInt(json, string.concat(p, ".cumLo"));
            st.cumHi = vm.parseJsonInt(json, string.concat(p, ".cumHi"));
            uint256 np = k == 1 ? 2 : 0;
            st.positions = new StatePosition[](np);
            st.collateral = new StateCollateral[](np);
            for (i = 0; i < np; ++i) {
                string memory q = string.concat(p, ".positions[", vm.toString(i), "]");
                st.positions[i] = StatePosition(
                    uint32(vm.parseJsonUint(json, string.concat(q, ".instrument"))),
                    vm.parseJsonInt(json, string.concat(q, ".size")),
                    vm.parseJsonInt(json, string.concat(q, ".fundingIndex"))
                );
                string memory c = string.concat(p, ".collateral[", vm.toString(i), "]");
                st.collateral[i] = StateCollateral(
                    vm.parseJsonAddress(json, string.concat(c, ".token")),
                    vm.parseJsonUint(json, string.concat(c, ".amount"))
                );
            }
            assertEq(StateChain.hashState(st), vm.parseJsonBytes32(json, string.concat(p, ".hash")), p);
        }
    }

    /* ONE KIND OF DELTA EACH */

    function test_step_matchesTheDocumentedEncoding() public pure {
        bytes32 w = bytes32(uint256(6)); // chain 0, seq 6
        bytes32 h = keccak256(abi.encode(w, uint8(2), uint256(7), int256(-1), int256(2), int256(3), int256(-4)));
        bytes32 expected = (h & ~bytes32(uint256(type(uint64).max))) | bytes32(uint256(7));
        assertEq(StateChain.step(w, 2, 7, -1, 2, 3, -4), expected);
    }

    function test_deposit_foldsCollateralThenBounds() public {
        int256[2] memory b0 = _cum(aliceAcct);
        _deposit(alice, weth, 2e18);
        bytes32 w = _step(0, COLLATERAL, uint160(address(weth)), 0, 0, 2e18, 0);
        w = _stepBounds(w, b0, aliceAcct);
        int256[2] memory b1 = _cum(aliceAcct);
        _deposit(alice, weth, 1e18);
        w = _step(w, COLLATERAL, uint160(address(weth)), 2e18, 0, 3e18, 0);
        w = _stepBounds(w, b1, aliceAcct);
        assertEq(vault.stateChain(aliceAcct), w);
        assertEq(_seq(aliceAcct), 4);
        _assertGhost(aliceAcct);
    }

    function test_withdraw_foldsCollateralThenBounds() public {
        _deposit(alice, weth, 2e18);
        bytes32 w = vault.stateChain(aliceAcct);
        int256[2] memory b0 = _cum(aliceAcct);
        vm.prank(alice);
        vault.withdraw(aliceAcct, address(weth), 2e18, _emptyProof());
        w = _step(w, COLLATERAL, uint160(address(weth)), 2e18, 0, 0, 0);
        assertEq(vault.stateChain(aliceAcct), _stepBounds(w, b0, aliceAcct));
        _assertGhost(aliceAcct);
    }

    function test_depositCashAndWithdrawCash_foldCashThenBounds() public {
        _depositCash(alice, 100e6);
        bytes32 w = _step(0, CASH, 0, 0, 0, 100e18, 0);
        w = _step(w, BOUNDS, 0, 0, 0, 100e18, 100e18);
        vm.prank(alice);
        vault.withdrawCash(aliceAcct, 40e6, _emptyProof());
        w = _step(w, CASH, 0, 100e18, 0, 60e18, 0);
        w = _step(w, BOUNDS, 0, 100e18, 100e18, 60e18, 60e18);
        assertEq(vault.stateChain(aliceAcct), w);
        _assertGhost(aliceAcct);
    }

    function test_executeQuote_foldsPositionThenCashOnBothSides() public {
        _depositCash(alice, 100_000e6);
        _depositCash(bob, 100_000e6);
        _postTwo();
        bytes32 wa = vault.stateChain(aliceAcct);
        bytes32 wb = vault.stateChain(bobAcct);
        (int256[2] memory ba, int256[2] memory bb) = (_cum(aliceAcct), _cum(bobAcct));
        _fill(_quote(alice, bob, btcPerp, 1e18, 60_000e18, 1), aliceKey, bob);
        wa = _step(wa, POSITION, btcPerp, 0, 0, 1e18, 0);
        wa = _step(wa, CASH, 0, 100_000e18, 0, 40_000e18, 0);
        wa = _stepBounds(wa, ba, aliceAcct);
        wb = _step(wb, POSITION, btcPerp, 0, 0, -1e18, 0);
        wb = _step(wb, CASH, 0, 100_000e18, 0, 160_000e18, 0);
        wb = _stepBounds(wb, bb, bobAcct);
        assertEq(vault.stateChain(aliceAcct), wa);
        assertEq(vault.stateChain(bobAcct), wb);
        _assertGhost(aliceAcct);
        _assertGhost(bobAcct);
    }

    function test_applyFunding_foldsCashThenPosition() public {
        _depositCash(alice, 100_000e6);
        _depositCash(bob, 100_000e6);
        _postTwo();
        _fill(_quote(alice, bob, btcPerp, 2e18, 60_000e18, 1), aliceKey, bob);
        _postFunding(btcPerp, 10e18);
        bytes32 w = vault.stateChain(aliceAcct);
        int256 c = _cash(alice);
        int256[2] memory b = _cum(aliceAcct);
        vault.applyFunding(aliceAcct);
        w = _step(w, CASH, 0, c, 0, c - 20e18, 0);
        w = _step(w, BOUNDS, 0, b[0], b[1], b[0] - 1, b[1]); // the 1-wei rounding of cumLo
        w = _step(w, POSITION, btcPerp, 2e18, 0, 2e18, 10e18);
        assertEq(vault.stateChain(aliceAcct), w);
        vault.applyFunding(aliceAcct); // nothing due: no delta
        assertEq(vault.stateChain(aliceAcct), w);
        _assertGhost(aliceAcct);
    }

    /// @dev A fresh position's index moves without a delta (not part of the state); it opens
    /// from (0, 0) at the current index.
    function test_executeQuote_opensAtCurrentIndexFromZero() public {
        _depositCash(alice, 100_000e6);
        _depositCash(bob, 100_000e6);
        _postTwo();
        _postFunding(btcPerp, 7e18);
        bytes32 w = vault.stateChain(aliceAcct);
        int256[2] memory b = _cum(aliceAcct);
        _fill(_quote(alice, bob, btcPerp, 1e18, 60_000e18, 1), aliceKey, bob);
        w = _step(w, POSITION, btcPerp, 0, 0, 1e18, 7e18);
        w = _step(w, CASH, 0, 100_000e18, 0, 40_000e18, 0);
        w = _stepBounds(w, b, aliceAcct);
        assertEq(vault.stateChain(aliceAcct), w);
        _assertGhost(aliceAcct);
    }

    function test_settle_foldsPositionThenCash() public {
        _depositCash(alice, 100_000e6);
        _depositCash(bob, 100_000e6);
        _postTwo();
        _fill(_quote(alice, bob, btcCall, 1e18, 2000e18, 1), aliceKey, bob);
        vm.warp(EXPIRY);
        vm.roll(block.number + 1);
        Epoch memory e = _buildEpoch(new AccountLeaf[](0));
        e.settlements = new Settlement[](1);
        e.settlements[0] = Settlement(btcCall, 65_000e18);
        _postHeader(e);
        bytes32 w = vault.stateChain(aliceAcct);
        int256 c = _cash(alice);
        int256[2] memory b = _cum(aliceAcct);
        vault.settle(aliceAcct, btcCall);
        w = _step(w, POSITION, btcCall, 1e18, 0, 0, 0);
        w = _step(w, CASH, 0, c, 0, c + 5000e18, 0);
        w = _step(w, BOUNDS, 0, b[0], b[1], b[0] - 1, b[1]);
        assertEq(vault.stateChain(aliceAcct), w);
        _assertGhost(aliceAcct);
    }

    function test_liquidate_foldsTheCashChangeThenTheBounds() public {
        _depositCash(alice, 10_000e6);
        _depositCash(bob, 100_000e6);
        _depositCash(carol, 100_000e6);
        _post2(_leaf(alice, 10_000e18, 0, 0), _leaf(bob, 100_000e18, 0, 0));
        _fill(_quote(alice, bob, btcPerp, 1e18, 60_000e18, 1), aliceKey, bob);
        _post3(
            _leaf(alice, 4000e18, 6000e18, 4800e18), _leaf(bob, 106_000e18, 6000e18, 4800e18), _leaf(carol, 1e23, 0, 0)
        );
        (bool ok,,,,,, uint256 minDeposit6) = vault.checkLiquidation(aliceAcct, _mp(alice));
        assertTrue(ok);
        bytes32 w = vault.stateChain(aliceAcct);
        int256 c = _cash(alice);
        int256[2] memory b = _cum(aliceAcct);
        MarginProof memory t = _mp(alice);
        vm.prank(carol);
        vault.liquidate(aliceAcct, t, minDeposit6, type(int256).max);
        int256 moved = _cash(alice) - c; // the bounds move by the cash change, both
        w = _step(w, CASH, 0, c, 0, _cash(alice), 0);
        w = _step(w, BOUNDS, 0, b[0], b[1], b[0] + moved, b[1] + moved);
        assertEq(vault.stateChain(aliceAcct), w);
        _assertGhost(aliceAcct);
    }

    function test_transferSubaccount_leavesTheChain() public {
        _depositCash(alice, 100e6);
        bytes32 w = vault.stateChain(aliceAcct);
        vm.prank(alice);
        vault.transferSubaccount(aliceAcct, bob);
        assertEq(vault.stateChain(aliceAcct), w);
    }

    /* PROVING AN OLDER STATE */

    /// @dev alice: weth and cash at the checkpoint, then a trade, funding, a deposit of wbtc.
    function _history() internal {
        _depositCash(alice, 100_000e6);
        _depositCash(bob, 100_000e6);
        _postTwo();
        _deposit(alice, weth, 3e18);
        _fill(_quote(alice, bob, ethPerp, -2e18, 3000e18, 1), aliceKey, bob);
        _sync();
        ghost.checkpoint(aliceAcct);
        _fill(_quote(alice, bob, btcPerp, 1e18, 60_000e18, 2), aliceKey, bob);
        _postFunding(btcPerp, 10e18);
        vault.applyFunding(aliceAcct);
        _deposit(alice, wbtc, 1e8);
        _sync();
    }

    function _prove(uint64 seq, bytes24 chain, CommittedState memory s, StateDelta[] memory d)
        internal
        view
        returns (bytes32)
    {
        return lens.proveStateAt(aliceAcct, seq, chain, s, d);
    }

    function test_proveStateAt_acceptsTheTrueOlderState() public {
        _history();
        (uint64 seq, bytes24 chain, CommittedState memory s, StateDelta[] memory d) = ghost.proofInput(aliceAcct);
        assertEq(seq, 7); // cash, bounds, weth, bounds, ETH position, cash, bounds
        // BTC trade: position, cash, bounds; BTC funding: cash, bounds, position; wbtc, bounds
        assertEq(d.length, 8);
        assertEq(s.positions.length, 1);
        assertEq(s.collateral.length, 1);
        assertEq(_prove(seq, chain, s, d), StateChain.hashState(s));
        // the state now, with no deltas, proves too
        CommittedState memory now_ = ghost.stateNow(aliceAcct);
        bytes32 w = vault.stateChain(aliceAcct);
        assertEq(
            lens.proveStateAt(aliceAcct, uint64(uint256(w)), bytes24(w), now_, new StateDelta[](0)),
            StateChain.hashState(now_)
        );
    }

    function test_proveStateAt_revertsWhenADeltaIsAltered() public {
        _history();
        (uint64 seq, bytes24 chain, CommittedState memory s, StateDelta[] memory d) = ghost.proofInput(aliceAcct);
        d[1].oldA += 1; // a wrong old value: the chain no longer reaches the vault's word
        vm.expectPartialRevert(Errors.StateChainMismatch.selector);
        _prove(seq, chain, s, d);
    }

    function test_proveStateAt_revertsWhenADeltaIsMissing() public {
        _history();
        (uint64 seq, bytes24 chain, CommittedState memory s, StateDelta[] memory d) = ghost.proofInput(aliceAcct);
        StateDelta[] memory fewer = new StateDelta[](d.length - 1);
        for (uint256 i; i < fewer.length; ++i) {
            fewer[i] = d[i];
        }
        vm.expectPartialRevert(Errors.StateChainMismatch.selector);
        _prove(seq, chain, s, fewer);
    }

    function test_proveStateAt_revertsWhenSeqIsWrong() public {
        _history();
        (uint64 seq, bytes24 chain, CommittedState memory s, StateDelta[] memory d) = ghost.proofInput(aliceAcct);
        vm.expectPartialRevert(Errors.StateChainMismatch.selector);
        _prove(seq + 1, chain, s, d);
    }

    function test_proveStateAt_revertsWhenCashIsWrong() public {
        _history();
        (uint64 seq, bytes24 chain, CommittedState memory s, StateDelta[] memory d) = ghost.proofInput(aliceAcct);
        s.cash += 1; // the trade's cash delta starts from the real cash
        vm.expectRevert(abi.encodeWithSelector(Errors.StateDeltaMismatch.selector, 1));
        _prove(seq, chain, s, d);
    }

    /// @dev The bounds are part of the state: a leaf's cumLo/cumHi can be checked against it.
    function test_proveStateAt_revertsWhenBoundsAreWrong() public {
        _history();
        (uint64 seq, bytes24 chain, CommittedState memory s, StateDelta[] memory d) = ghost.proofInput(aliceAcct);
        s.cumLo -= 1; // the trade's bounds delta starts from the real cumLo
        vm.expectRevert(abi.encodeWithSelector(Errors.StateDeltaMismatch.selector, 2));
        _prove(seq, chain, s, d);
    }

    function test_proveStateAt_revertsWhenUntouchedBoundsAreWrong() public {
        _depositCash(alice, 100e6);
        _deposit(alice, weth, 1e18); // in safe mode: cumHi moves, cumLo does not
        _sync();
        ghost.checkpoint(aliceAcct);
        (uint64 seq, bytes24 chain, CommittedState memory s, StateDelta[] memory d) = ghost.proofInput(aliceAcct);
        assertEq(d.length, 0);
        assertEq(_prove(seq, chain, s, d), StateChain.hashState(s));
        s.cumHi -= 1; // no delta touches it: the live bounds tell
        vm.expectRevert(Errors.StateMismatch.selector);
        _prove(seq, chain, s, d);
    }

    function test_proveStateAt_revertsWhenAnUntouchedEntryIsWrong() public {
        _history();
        (uint64 seq, bytes24 chain, CommittedState memory s, StateDelta[] memory d) = ghost.proofInput(aliceAcct);
        s.collateral[0].amount += 1; // weth: no delta touches it, the live balance tells
        vm.expectRevert(Errors.StateMismatch.selector);
        _prove(seq, chain, s, d);
    }

    function test_proveStateAt_revertsWhenAPositionIsExtra() public {
        _history();
        (uint64 seq, bytes24 chain, CommittedState memory s, StateDelta[] memory d) = ghost.proofInput(aliceAcct);
        StatePosition[] memory more = new StatePosition[](2);
        more[0] = s.positions[0];
        more[1] = StatePosition(btcPut, 1e18, 0);
        s.positions = more;
        vm.expectRevert(Errors.StateMismatch.selector);
        _prove(seq, chain, s, d);
    }

    function test_proveStateAt_revertsWhenATouchedPositionIsExtra() public {
        _history();
        (uint64 seq, bytes24 chain, CommittedState memory s, StateDelta[] memory d) = ghost.proofInput(aliceAcct);
        StatePosition[] memory more = new StatePosition[](2);
        more[0] = StatePosition(btcPerp, 1e18, 0); // opened only after the checkpoint
        more[1] = s.positions[0];
        s.positions = more;
        vm.expectRevert(abi.encodeWithSelector(Errors.StateDeltaMismatch.selector, 0));
        _prove(seq, chain, s, d);
    }

    function test_proveStateAt_revertsWhenAPositionIsMissing() public {
        _history();
        (uint64 seq, bytes24 chain, CommittedState memory s, StateDelta[] memory d) = ghost.proofInput(aliceAcct);
        s.positions = new StatePosition[](0); // the ETH short is untouched later: live tells
        vm.expectRevert(Errors.StateMismatch.selector);
        _prove(seq, chain, s, d);
    }

    function test_proveStateAt_revertsWhenNotCanonical() public {
        _history();
        (uint64 seq, bytes24 chain, CommittedState memory s, StateDelta[] memory d) = ghost.proofInput(aliceAcct);
        StateCollateral[] memory two = new StateCollateral[](2);
        two[0] = s.collateral[0];
        two[1] = s.collateral[0]; // a duplicate token
        s.collateral = two;
        vm.expectRevert(abi.encodeWithSelector(Errors.NonCanonicalState.selector, 2));
        _prove(seq, chain, s, d);
        s.collateral = new StateCollateral[](1);
        s.collateral[0] = StateCollateral(address(weth), 0); // a zero entry
        vm.expectRevert(abi.encodeWithSelector(Errors.NonCanonicalState.selector, 1));
        _prove(seq, chain, s, d);
    }

    /* FUZZ: random histories, then prove an older sequence number */

    /// @dev alice and bob hold leaves with ample equity, so every action below passes its gate.
    function _fuzzSetUp() internal {
        _depositCash(alice, 1_000_000e6);
        _depositCash(bob, 1_000_000e6);
        _post2(_leaf(alice, 1e24, 0, 0), _leaf(bob, 1e24, 0, 0));
    }

    function _act(uint256 seed, uint256 nonce) internal {
        uint256 kind = seed % 7;
        uint256 amount = (seed >> 8) % 1000 + 1;
        if (kind == 0) {
            _deposit(alice, (seed >> 20) % 2 == 0 ? weth : wbtc, amount * 1e6);
        } else if (kind == 1) {
            uint256 bal = vault.collateralBalance(aliceAcct, address(weth));
            if (bal == 0) return;
            vm.prank(alice);
            vault.withdraw(aliceAcct, address(weth), bal / 2 + 1, _mp(alice));
        } else if (kind == 2) {
            _depositCash(alice, amount * 1e6);
        } else if (kind == 3) {
            vm.prank(alice);
            vault.withdrawCash(aliceAcct, amount * 1e6, _mp(alice));
        } else if (kind == 4) {
            uint32[3] memory ids = [btcPerp, ethPerp, btcCall];
            uint32 id = ids[(seed >> 20) % 3];
            int256 size = int256(amount) * 1e15 * ((seed >> 30) % 2 == 0 ? int256(1) : -1);
            // sometimes close exactly what is open
            if ((seed >> 40) % 4 == 0 && _size(alice, id) != 0) size = -_size(alice, id);
            _fill(_quote(alice, bob, id, size, instLeaf[id].mark, nonce), aliceKey, bob);
        } else if (kind == 5) {
            vm.roll(block.number + 1);
            Epoch memory e = _buildEpoch(_twoLeaves());
            e.funding = new FundingUpdate[](2);
            e.funding[0] = FundingUpdate(btcPerp, int256(seed % 1e20));
            e.funding[1] = FundingUpdate(ethPerp, -int256((seed >> 64) % 1e19));
            _postHeader(e);
            vm.roll(block.number + 1);
        } else {
            vault.applyFunding(aliceAcct);
        }
    }

    function _twoLeaves() internal view returns (AccountLeaf[] memory l) {
        l = new AccountLeaf[](2);
        l[0] = _leaf(alice, 1e24, 0, 0);
        l[1] = _leaf(bob, 1e24, 0, 0);
    }

    /// forge-config: default.fuzz.runs = 64
    function testFuzz_proveStateAt_acceptsAnyTrueOlderState(uint256[12] memory seeds, uint8 at) public {
        _fuzzSetUp();
        _sync();
        uint256 cut = at % (seeds.length + 1);
        for (uint256 i; i < seeds.length; ++i) {
            if (i == cut) ghost.checkpoint(aliceAcct);
            _act(seeds[i], 100 + i);
            _sync();
            assertEq(vault.stateChain(aliceAcct), ghost.word(aliceAcct), "ghost chain differs");
            assertEq(vault.stateChain(bobAcct), ghost.word(bobAcct), "ghost chain differs (bob)");
        }
        if (cut == seeds.length) ghost.checkpoint(aliceAcct);
        (uint64 seq, bytes24 chain, CommittedState memory s, StateDelta[] memory d) = ghost.proofInput(aliceAcct);
        assertEq(_prove(seq, chain, s, d), StateChain.hashState(s));
        if (d.length > 0) {
            s.cash -= 1;
            vm.expectRevert(); // StateDeltaMismatch, or StateMismatch when no delta touches cash
            this.proveExternal(seq, chain, s, d);
        }
    }

    function proveExternal(uint64 seq, bytes24 chain, CommittedState memory s, StateDelta[] memory d)
        external
        view
        returns (bytes32)
    {
        return _prove(seq, chain, s, d);
    }
}
