// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {BaseTest} from "./BaseTest.sol";
import {RiskFixtures} from "./RiskFixtures.sol";
import {AccountDisputeHarness} from "../mocks/AccountDisputeHarness.sol";
import {Errors} from "../../../contracts/interfaces/Errors.sol";
import {Events} from "../../../contracts/interfaces/Events.sol";
import {IFinality} from "../../../contracts/interfaces/IFinality.sol";
import {AccountClaim, IDispute} from "../../../contracts/interfaces/IDispute.sol";
import {
    AccountLeaf,
    CommittedState,
    Epoch,
    InstrumentLeaf,
    StateCollateral,
    StateDelta,
    StatePosition
} from "../../../contracts/interfaces/IMarginVault.sol";
import {AggregationParams, RiskVector} from "../../../contracts/libraries/AccountMargin.sol";
import {Verdict} from "../../../contracts/libraries/AccountDispute.sol";

/// @notice `disputeAccount` and `disputeAccountState` (docs/protocol.md §11) on a vault with the
/// challenge window on: alice holds a BTC perp, a BTC call and 1 WETH; the epoch commits the
/// instruments' risk vectors, the aggregation parameters and the token vectors. An honest leaf
/// cannot be disputed; an inflated equity, bounds that are not the state's, or a state word
/// that is not the account's are proven, with the bond paid and the vault in safe mode.
contract DisputeAccountTest is BaseTest, RiskFixtures {
    uint64 internal constant WINDOW = 1 hours;
    uint256 internal constant BOND6 = 100_000e6;
    bytes32 internal constant MARKET = keccak256("the published market snapshot");

    IFinality internal fin;
    IDispute internal dis;
    AccountDisputeHarness internal judge;

    RiskVector internal vPerp;
    RiskVector internal vCall;
    RiskVector internal vWeth;
    RiskVector internal vWbtc;
    RiskVector internal vGov;

    address internal dave = makeAddr("dave");
    address internal eve = makeAddr("eve");

    function setUp() public override {
        super.setUp();
        fin = IFinality(address(vault));
        dis = IDispute(address(vault));
        judge = new AccountDisputeHarness();
        fin.setDisputeConfig(WINDOW, BOND6);
        vm.prank(carol);
        fin.postBond(BOND6);
        _copy(vPerp, _perp(0, 60_000e18, 0.1e18));
        _copy(vCall, _option(0, 2000e18));
        _copy(vWeth, _perp(1, 3000e18, 0.15e18));
        _copy(vWbtc, _perp(0, 60_000e18, 0.1e18));
        _copy(vGov, _perp(1, 1e18, 0.5e18));
        instLeaf[btcPerp].vectorHash = judge.hashVector(vPerp);
        instLeaf[btcCall].vectorHash = judge.hashVector(vCall);
        // alice: long 1 BTC perp and 1 BTC call from bob, and 1 WETH
        _depositCash(alice, 100_000e6);
        _depositCash(bob, 100_000e6);
        _post2(_leaf(alice, 1e24, 0, 0), _leaf(bob, 1e24, 0, 0));
        _deposit(alice, weth, 1e18);
        _fill(_quote(alice, bob, btcPerp, 1e18, 60_000e18, 1), aliceKey, bob);
        _fill(_quote(alice, bob, btcCall, 1e18, 2000e18, 2), aliceKey, bob);
    }

    /* THE WORLD */

    function _copy(RiskVector storage to, RiskVector memory v) internal {
        to.underlying = v.underlying;
        to.mark = v.mark;
        to.loss = v.loss;
        to.pad = v.pad;
        to.basisUp = v.basisUp;
        to.basisDown = v.basisDown;
        to.delta = v.delta;
        to.minimumCharge = v.minimumCharge;
        to.shortOptionCharge = v.shortOptionCharge;
        to.notional = v.notional;
    }

    /// @dev A call-like vector: losses capped at the premium on the way down, pads on every
    /// scan column (7 scenarios + 1 IM copy).
    function _option(uint256 u, uint256 premium) internal pure returns (RiskVector memory v) {
        int256[7] memory l = [int256(0), 1500e18, -4000e18, 1800e18, -5000e18, 700e18, -2000e18];
        v.underlying = u;
        v.mark = premium;
        v.loss = new int256[](7);
        v.pad = new uint256[](8);
        for (uint256 s; s < 7; ++s) {
            v.loss[s] = l[s];
            v.pad[s] = 10e18 * (s + 1);
        }
        v.pad[7] = 25e18;
        v.basisUp = -300e18;
        v.basisDown = 280e18;
        v.delta = 33_000e18;
        v.minimumCharge = 60e18;
        v.shortOptionCharge = 600e18;
        v.notional = 60_000e18;
    }

    /// @dev One per registered token, in registration order (weth, wbtc, gov).
    function _tokenVectorHashes() internal view returns (bytes32[] memory h) {
        h = new bytes32[](3);
        h[0] = judge.hashVector(vWeth);
        h[1] = judge.hashVector(vWbtc);
        h[2] = judge.hashVector(vGov);
    }

    function _inputsHash() internal view returns (bytes32) {
        return keccak256(
            abi.encode(judge.hashParams(_params()), keccak256(abi.encodePacked(_tokenVectorHashes())), MARKET)
        );
    }

    /// @dev alice's engine inputs now: cash, sizes (perp, call, then 1 WETH), vectors.
    function _engine() internal view returns (int256 cash, int256[] memory sizes, RiskVector[] memory vs) {
        cash = _cash(alice);
        sizes = new int256[](3);
        (sizes[0], sizes[1], sizes[2]) = (1e18, 1e18, 1e18);
        vs = new RiskVector[](3);
        (vs[0], vs[1], vs[2]) = (vPerp, vCall, vWeth);
    }

    function _honest() internal view returns (Verdict memory v) {
        (int256 cash, int256[] memory sizes, RiskVector[] memory vs) = _engine();
        v = judge.recompute(cash, sizes, vs, _params());
    }

    /// @dev Posts an epoch (committing the inputs) whose tree holds `leaf` for alice and an
    /// ample leaf for bob.
    function _postWith(AccountLeaf memory leaf) internal returns (Epoch memory e) {
        AccountLeaf[] memory l = new AccountLeaf[](2);
        l[0] = leaf;
        l[1] = _leaf(bob, 1e24, 0, 0);
        vm.roll(block.number + 1);
        e = _buildEpoch(l);
        e.inputsHash = _inputsHash();
        _postHeader(e);
    }

    function _state() internal view returns (CommittedState memory s) {
        (,, s.cumLo, s.cumHi,,,,) = vault.accountState(aliceAcct);
        s.cash = _cash(alice);
        s.positions = new StatePosition[](2);
        s.positions[0] = StatePosition(btcPerp, 1e18, 0);
        s.positions[1] = StatePosition(btcCall, 1e18, 0);
        s.collateral = new StateCollateral[](1);
        s.collateral[0] = StateCollateral(address(weth), 1e18);
    }

    function _claim(uint64 epoch, AccountLeaf memory leaf) internal view returns (AccountClaim memory c) {
        c.epoch = epoch;
        c.leaf = leaf;
        c.proof = _merkleProof(treeLeaves, _hashAccountLeaf(leaf));
        c.state = _state();
        c.instruments = new InstrumentLeaf[](2);
        c.instruments[0] = instLeaf[btcPerp];
        c.instruments[1] = instLeaf[btcCall];
        c.instrumentProofs = new bytes32[][](2);
        c.instrumentProofs[0] = _merkleProof(treeLeaves, _hashInstrumentLeaf(instLeaf[btcPerp]));
        c.instrumentProofs[1] = _merkleProof(treeLeaves, _hashInstrumentLeaf(instLeaf[btcCall]));
        (c.cash, c.sizes, c.vectors) = _engine();
        c.params = _params();
        c.tokenVectorHashes = _tokenVectorHashes();
        c.marketHash = MARKET;
    }

    function _honestLeaf() internal view returns (AccountLeaf memory) {
        Verdict memory v = _honest();
        return _leaf(alice, v.equity, v.im, v.mm);
    }

    function _assertFraud(uint64 epoch, address disputer) internal view {
        (uint64 fraudEpoch,) = fin.fraudState();
        assertEq(fraudEpoch, epoch);
        assertTrue(vault.isSafeMode());
        assertEq(vault.payoutOf(disputer), BOND6 * 1e12 / 2);
        (,, uint256 bond) = fin.disputeConfig();
        assertEq(bond, 0);
    }

    /* disputeAccount */

    function test_honestLeaf_cannotBeDisputed() public {
        AccountLeaf memory leaf = _honestLeaf();
        Epoch memory e = _postWith(leaf);
        Verdict memory v = _honest();
        AccountClaim memory c = _claim(e.epoch, leaf);
        vm.prank(dave);
        vm.expectRevert(abi.encodeWithSelector(Errors.LeafIsHonest.selector, aliceAcct, v.equity, v.im, v.mm, v.tolerance));
        dis.disputeAccount(c);
        assertFalse(vault.isSafeMode());
    }

    function test_inflatedEquity_isProvenAndPaysTheBond() public {
        AccountLeaf memory leaf = _honestLeaf();
        leaf.equity += 50_000e18;
        Epoch memory e = _postWith(leaf);
        Verdict memory v = _honest();
        AccountClaim memory c = _claim(e.epoch, leaf);
        vm.expectEmit(address(vault));
        emit Events.AccountLeafRecomputed(e.epoch, aliceAcct, v.equity, v.im, v.mm, v.tolerance);
        vm.expectEmit(address(vault));
        emit Events.AccountLeafDisproven(e.epoch, aliceAcct, 2);
        vm.prank(dave);
        dis.disputeAccount(c);
        _assertFraud(e.epoch, dave);
    }

    function test_understatedMm_isProven() public {
        AccountLeaf memory leaf = _honestLeaf();
        leaf.mm = leaf.mm / 2; // a requirement too low lets a bad account escape liquidation
        Epoch memory e = _postWith(leaf);
        AccountClaim memory c = _claim(e.epoch, leaf);
        vm.prank(dave);
        dis.disputeAccount(c);
        _assertFraud(e.epoch, dave);
    }

    function test_leafBoundsThatAreNotTheStates_areProven() public {
        AccountLeaf memory leaf = _honestLeaf();
        leaf.cumLo -= 10_000e18; // the vault adds cumLo_now - leaf.cumLo to the surplus
        Epoch memory e = _postWith(leaf);
        AccountClaim memory c = _claim(e.epoch, leaf);
        vm.expectEmit(address(vault));
        emit Events.AccountLeafDisproven(e.epoch, aliceAcct, 1);
        vm.prank(dave);
        dis.disputeAccount(c);
        _assertFraud(e.epoch, dave);
    }

    function test_aLaterStateChange_isReplayedFromTheLeafsWord() public {
        AccountLeaf memory leaf = _honestLeaf();
        leaf.equity += 50_000e18;
        Epoch memory e = _postWith(leaf);
        CommittedState memory atLeaf = _state();
        bytes32 before = vault.stateChain(aliceAcct);
        _depositCash(alice, 5e6); // two deltas after the leaf's word: cash, bounds
        assertEq(uint64(uint256(vault.stateChain(aliceAcct))), uint64(uint256(before)) + 2);
        AccountClaim memory c = _claim(e.epoch, leaf);
        c.state = atLeaf;
        c.cash = atLeaf.cash;
        (,, int256 lo, int256 hi,,,,) = vault.accountState(aliceAcct);
        c.deltas = new StateDelta[](2);
        c.deltas[0] = StateDelta(1, 0, atLeaf.cash, 0, atLeaf.cash + 5e18, 0);
        c.deltas[1] = StateDelta(4, 0, atLeaf.cumLo, atLeaf.cumHi, lo, hi);
        vm.prank(dave);
        dis.disputeAccount(c);
        _assertFraud(e.epoch, dave);
    }

    function test_wrongProof_isRefused() public {
        AccountLeaf memory leaf = _honestLeaf();
        leaf.equity += 50_000e18;
        Epoch memory e = _postWith(leaf);
        AccountClaim memory c = _claim(e.epoch, leaf);
        c.proof[0] = bytes32(uint256(c.proof[0]) ^ 1);
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidAccountProof.selector, aliceAcct));
        dis.disputeAccount(c);
        c = _claim(e.epoch, leaf);
        c.leaf.equity -= 1; // a leaf that is not in the tree
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidAccountProof.selector, aliceAcct));
        dis.disputeAccount(c);
    }

    function test_afterTheWindow_isRefused() public {
        AccountLeaf memory leaf = _honestLeaf();
        leaf.equity += 50_000e18;
        Epoch memory e = _postWith(leaf);
        uint256 closes = block.timestamp + WINDOW;
        AccountClaim memory c = _claim(e.epoch, leaf);
        vm.warp(closes + 1);
        vm.expectRevert(abi.encodeWithSelector(Errors.ChallengeWindowOver.selector, e.epoch, closes));
        dis.disputeAccount(c);
    }

    function test_aSecondDispute_isRefused() public {
        AccountLeaf memory leaf = _honestLeaf();
        leaf.equity += 50_000e18;
        Epoch memory e = _postWith(leaf);
        AccountClaim memory c = _claim(e.epoch, leaf);
        vm.prank(dave);
        dis.disputeAccount(c);
        vm.expectRevert(abi.encodeWithSelector(Errors.EpochAlreadyJudged.selector, e.epoch, e.epoch));
        vm.prank(eve);
        dis.disputeAccount(c);
        assertEq(vault.payoutOf(eve), 0);
    }

    function test_inputsThatAreNotCommitted_areRefused() public {
        AccountLeaf memory leaf = _honestLeaf();
        leaf.equity += 50_000e18;
        Epoch memory e = _postWith(leaf);
        AccountClaim memory c = _claim(e.epoch, leaf);
        c.params.mmScale = 1e18; // other parameters than the epoch's
        vm.expectPartialRevert(Errors.InputsMismatch.selector);
        dis.disputeAccount(c);
        c = _claim(e.epoch, leaf);
        c.vectors[0].loss[1] += 1; // another perp vector than the INSTRUMENT leaf's
        vm.expectRevert(abi.encodeWithSelector(Errors.VectorMismatch.selector, 0));
        dis.disputeAccount(c);
        c = _claim(e.epoch, leaf);
        c.vectors[2] = vWbtc; // the wrong token's vector for the WETH balance
        vm.expectRevert(abi.encodeWithSelector(Errors.VectorMismatch.selector, 2));
        dis.disputeAccount(c);
        c = _claim(e.epoch, leaf);
        c.sizes[1] = 2e18; // not the state's call size
        vm.expectRevert(abi.encodeWithSelector(Errors.SizeMismatch.selector, 1, 1e18, 2e18));
        dis.disputeAccount(c);
        c = _claim(e.epoch, leaf);
        c.cash += 1;
        vm.expectRevert(abi.encodeWithSelector(Errors.EngineCashMismatch.selector, c.cash - 1, c.cash));
        dis.disputeAccount(c);
        c = _claim(e.epoch, leaf);
        c.state.cash += 1; // a state that is not alice's at the leaf's word
        vm.expectRevert(Errors.StateMismatch.selector);
        dis.disputeAccount(c);
        assertFalse(vault.isSafeMode());
    }

    function test_pendingFunding_countsInTheEngineCash() public {
        // the epoch posts a perp funding index of 10 USD per unit: alice (long 1) owes 10 USD
        instLeaf[btcPerp].fundingIndex = 10e18;
        (int256 cash, int256[] memory sizes, RiskVector[] memory vs) = _engine();
        Verdict memory v = judge.recompute(cash - 10e18, sizes, vs, _params());
        AccountLeaf memory leaf = _leaf(alice, v.equity, v.im, v.mm);
        Epoch memory e = _postWith(leaf);
        AccountClaim memory c = _claim(e.epoch, leaf);
        vm.expectRevert(abi.encodeWithSelector(Errors.EngineCashMismatch.selector, cash - 10e18, cash));
        dis.disputeAccount(c);
        c.cash = cash - 10e18;
        vm.expectRevert(abi.encodeWithSelector(Errors.LeafIsHonest.selector, aliceAcct, v.equity, v.im, v.mm, v.tolerance));
        dis.disputeAccount(c);
    }

    /* disputeAccountState */

    function test_aStateWordThatIsNotTheAccounts_isProven() public {
        AccountLeaf memory leaf = _honestLeaf();
        bytes32 real = leaf.stateWord;
        leaf.stateWord = bytes32(uint256(keccak256("a state alice never had")) << 64) | bytes32(uint256(uint64(uint256(real))));
        Epoch memory e = _postWith(leaf);
        CommittedState memory st = _state();
        vm.expectEmit(address(vault));
        emit Events.AccountLeafDisproven(e.epoch, aliceAcct, 0);
        vm.prank(dave);
        dis.disputeAccountState(
            e.epoch, leaf, _merkleProof(treeLeaves, _hashAccountLeaf(leaf)), bytes24(real), st, new StateDelta[](0)
        );
        _assertFraud(e.epoch, dave);
    }

    function test_aSequenceNumberNotReached_isProven() public {
        AccountLeaf memory leaf = _honestLeaf();
        leaf.stateWord = bytes32(uint256(leaf.stateWord) + 5); // five deltas ahead of the account
        Epoch memory e = _postWith(leaf);
        CommittedState memory st = _state();
        vm.prank(dave);
        dis.disputeAccountState(
            e.epoch, leaf, _merkleProof(treeLeaves, _hashAccountLeaf(leaf)), bytes24(0), st, new StateDelta[](0)
        );
        _assertFraud(e.epoch, dave);
    }

    function test_theRealStateWord_cannotBeDisputed() public {
        AccountLeaf memory leaf = _honestLeaf();
        Epoch memory e = _postWith(leaf);
        bytes32[] memory proof = _merkleProof(treeLeaves, _hashAccountLeaf(leaf));
        CommittedState memory st = _state();
        vm.expectRevert(abi.encodeWithSelector(Errors.StateWordIsReal.selector, aliceAcct, leaf.stateWord));
        dis.disputeAccountState(e.epoch, leaf, proof, bytes24(leaf.stateWord), st, new StateDelta[](0));
        // a made-up chain at the same sequence number does not prove anything either
        vm.expectPartialRevert(Errors.StateChainMismatch.selector);
        dis.disputeAccountState(e.epoch, leaf, proof, bytes24(keccak256("x")), st, new StateDelta[](0));
    }

    function test_theModulesAreOnlyReachedThroughTheVault() public {
        address finalityModule = vault.finalityModule();
        AccountLeaf memory leaf = _honestLeaf();
        AccountClaim memory c = _claim(_postWith(leaf).epoch, leaf);
        IDispute direct = IDispute(IFinalityModule(finalityModule).disputeModule());
        vm.expectRevert(Errors.NotDelegated.selector);
        direct.disputeAccount(c);
        (bool ok, bytes memory ret) = finalityModule.call(abi.encodeCall(IDispute.disputeAccount, (c)));
        assertFalse(ok);
        assertEq(bytes4(ret), Errors.NotDelegated.selector);
    }
}

interface IFinalityModule {
    function disputeModule() external view returns (address);
}
