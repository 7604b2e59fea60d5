// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {console2} from "forge-std/console2.sol";

import {BaseTest} from "./BaseTest.sol";
import {InstrumentVectorFile} from "./InstrumentVectorFile.sol";
import {CalldataGas} from "../mocks/CalldataGas.sol";
import {Errors} from "../../../contracts/interfaces/Errors.sol";
import {Events} from "../../../contracts/interfaces/Events.sol";
import {IFinality} from "../../../contracts/interfaces/IFinality.sol";
import {
    IInstrumentDispute,
    InstrumentClaim,
    MarketInputs,
    MarketSlice,
    MarketUnderlying,
    RangeClaim
} from "../../../contracts/interfaces/IDispute.sol";
import {AccountLeaf, Epoch, FundingUpdate, InstrumentLeaf} from "../../../contracts/interfaces/IMarginVault.sol";
import {AggregationParams, RiskVector} from "../../../contracts/libraries/AccountMargin.sol";
import {InstrumentVector} from "../../../contracts/libraries/InstrumentVector.sol";

/// @notice `disputeInstrument` (docs/protocol.md §11) over real engine rows: the call, put and perp
/// of tests/vectors/black76/instruments_01.json, registered on a vault with the challenge window on,
/// their INSTRUMENT leaves (the engine's mark and per-unit losses, the hash of the engine's row)
/// posted with an epoch whose `inputsHash` commits the market those rows follow from. An honest leaf
/// cannot be disputed; a wrong vector field, leaf mark or leaf loss, or a market that lacks the
/// instrument's inputs, is proven, with the bond paid and the vault in safe mode.
contract DisputeInstrumentTest is BaseTest, InstrumentVectorFile {
    uint64 internal constant WINDOW = 1 hours;
    uint256 internal constant BOND6 = 100_000e6;
    bytes32 internal constant SNAPSHOT = keccak256("the published market snapshot's JSON");
    bytes32 internal constant TOKEN_VECTORS = keccak256("the token vectors' hashes");
    string internal constant FILE = "tests/vectors/black76/instruments_01.json";

    IFinality internal fin;
    IInstrumentDispute internal dis;
    File internal f;
    address internal dave = makeAddr("dave");

    uint32 internal call_;
    uint32 internal put_;
    uint32 internal perp_;
    mapping(uint32 => uint256) internal rowOf; // instrument id -> the file's row

    function setUp() public override {
        super.setUp();
        fin = IFinality(address(vault));
        dis = IInstrumentDispute(address(vault));
        fin.setDisputeConfig(WINDOW, BOND6);
        vm.prank(carol);
        fin.postBond(BOND6);
        f = _file(vm.readFile(FILE));
        vm.warp(f.c.timestamp[0]);
        call_ = _register(_firstOf(1));
        put_ = _register(_firstOf(2));
        perp_ = _register(_firstOf(0));
    }

    /* THE WORLD */

    function _firstOf(uint256 kind) internal view returns (uint256 i) {
        while (f.c.kind[i] != kind) ++i;
    }

    function _symbol(uint256 u) internal pure returns (bytes32) {
        return bytes32(bytes(string.concat("U", vm.toString(u))));
    }

    /// @dev Registers row `i`'s instrument and sets its honest leaf (the engine's numbers).
    function _register(uint256 i) internal returns (uint32 id) {
        id = vault.registerInstrument(
            uint8(f.c.kind[i]), _symbol(f.c.underlying[i]), f.c.strike[i], uint64(f.c.expiry[i])
        );
        rowOf[id] = i;
        instLeaf[id] =
            InstrumentLeaf(id, f.leafMark[i], f.lossLong[i], f.lossShort[i], 0, keccak256(abi.encode(_vector(id))));
    }

    function _vector(uint32 id) internal view returns (RiskVector memory) {
        return _engineVector(f, rowOf[id]);
    }

    /// @dev The engine's market of the file: every underlying (its perp's mark, its scan range), one
    /// slice per option row.
    function _marketInputs() internal view returns (MarketInputs memory m) {
        uint256 nU = f.spot.length;
        uint256 n = f.c.kind.length;
        m.rate = f.c.rate[0];
        m.underlyings = new MarketUnderlying[](nU);
        for (uint256 u; u < nU; ++u) {
            m.underlyings[u] = MarketUnderlying(
                _symbol(u),
                f.spot[u],
                f.spot[u],
                f.confidence[u],
                f.range[u],
                f.scanRangeFloor[u],
                keccak256(abi.encodePacked(f.returns_[u]))
            );
        }
        uint256 nSlices;
        for (uint256 i; i < n; ++i) {
            MarketUnderlying memory mu = m.underlyings[f.c.underlying[i]];
            assertEq(mu.range, f.c.range[i]);
            if (f.c.kind[i] == 0) mu.perpMark = f.c.price[i];
            if (f.c.kind[i] == 1 || f.c.kind[i] == 2) ++nSlices;
        }
        m.slices = new MarketSlice[](nSlices);
        uint256 k;
        for (uint256 i; i < n; ++i) {
            if (f.c.kind[i] != 1 && f.c.kind[i] != 2) continue;
            m.slices[k++] = MarketSlice(
                f.c.underlying[i], uint64(f.c.expiry[i]), f.c.forward[i], f.c.atmVol[i], f.c.skew[i], f.c.curvature[i]
            );
        }
    }

    /// @dev The aggregation parameters as far as an instrument dispute reads them (the rates).
    function _params() internal view returns (AggregationParams memory p) {
        p.nMm = f.p.layout.nMm;
        p.imCopies = f.p.layout.imCopies;
        p.mmScale = 0.98e18;
        p.concentrationRate = f.concentrationRate;
        p.concentrationThreshold = new uint256[](f.spot.length);
        p.nodeWeight = new uint256[](f.spot.length);
    }

    function _inputsHash(MarketInputs memory m) internal view returns (bytes32) {
        bytes32 market = keccak256(
            abi.encode(
                SNAPSHOT, keccak256(abi.encode(m)), keccak256(abi.encode(f.p)), keccak256(abi.encode(f.rangeParams))
            )
        );
        return keccak256(abi.encode(keccak256(abi.encode(_params())), TOKEN_VECTORS, market));
    }

    /// @dev Posts an epoch of every instrument leaf (and bob's) committing `m`.
    function _postWith(MarketInputs memory m) internal returns (Epoch memory e) {
        AccountLeaf[] memory l = new AccountLeaf[](1);
        l[0] = _leaf(bob, 1e24, 0, 0);
        vm.roll(block.number + 1);
        e = _buildEpoch(l);
        e.inputsHash = _inputsHash(m);
        e.funding = _funding();
        _postHeader(e);
    }

    /// @dev The header's funding updates: the file's perp at index 0 (its leaf's).
    function _funding() internal view returns (FundingUpdate[] memory f_) {
        f_ = new FundingUpdate[](1);
        f_[0] = FundingUpdate(perp_, 0);
    }

    function _postMarket() internal returns (Epoch memory) {
        return _postWith(_marketInputs());
    }

    function _claim(uint64 epoch, uint32 id) internal view returns (InstrumentClaim memory c) {
        c.epoch = epoch;
        c.leaf = instLeaf[id];
        c.proof = _merkleProof(treeLeaves, _hashInstrumentLeaf(instLeaf[id]));
        c.vector = _vector(id);
        c.market = _marketInputs();
        c.vectorParams = f.p;
        c.snapshotHash = SNAPSHOT;
        c.params = _params();
        c.tokenVectorsHash = TOKEN_VECTORS;
        c.rangeParamsHash = keccak256(abi.encode(f.rangeParams));
        c.funding = _funding();
    }

    function _rangeClaim(uint64 epoch, uint256 u, MarketInputs memory m) internal view returns (RangeClaim memory c) {
        c.epoch = epoch;
        c.underlying = u;
        c.returns_ = f.returns_[u];
        c.market = m;
        c.vectorParamsHash = keccak256(abi.encode(f.p));
        c.rangeParams = f.rangeParams;
        c.snapshotHash = SNAPSHOT;
        c.paramsHash = keccak256(abi.encode(_params()));
        c.tokenVectorsHash = TOKEN_VECTORS;
    }

    function _assertFraud(uint64 epoch) internal view {
        (uint64 fraudEpoch,) = fin.fraudState();
        assertEq(fraudEpoch, epoch);
        assertTrue(vault.isSafeMode());
        assertEq(vault.payoutOf(dave), BOND6 * 1e12 / 2);
    }

    function _expectHonest(InstrumentClaim memory c) internal {
        vm.prank(dave);
        try dis.disputeInstrument(c) {
            fail();
        } catch (bytes memory err) {
            assertEq(bytes4(err), Errors.InstrumentLeafIsHonest.selector);
        }
    }

    /* honest leaves */

    function test_honestLeaves_cannotBeDisputed() public {
        uint64 epoch = _postMarket().epoch;
        uint32[3] memory ids = [call_, put_, perp_];
        for (uint256 k; k < 3; ++k) {
            InstrumentClaim memory c = _claim(epoch, ids[k]);
            uint256 g = gasleft();
            _expectHonest(c);
            console2.log("disputeInstrument gas (honest, reverted), instrument kind", f.c.kind[rowOf[ids[k]]], g - gasleft());
            bytes memory data = abi.encodeCall(IInstrumentDispute.disputeInstrument, (c));
            console2.log("  calldata bytes, calldata gas", data.length, CalldataGas.cost(data));
        }
        assertFalse(vault.isSafeMode());
    }

    /* frauds */

    function _disputeExpectingField(uint64 epoch, uint32 id, uint8 field) internal {
        _disputeExpectingField(_claim(epoch, id), field);
    }

    /// @dev `c` proves its leaf wrong at `field`: the event, the bond paid, safe mode.
    function _disputeExpectingField(InstrumentClaim memory c, uint8 field) internal {
        vm.expectEmit(address(vault));
        emit Events.InstrumentLeafDisproven(c.epoch, c.leaf.instrument, field);
        vm.prank(dave);
        dis.disputeInstrument(c);
        _assertFraud(c.epoch);
    }

    function test_wrongScenarioLoss_isProven() public {
        uint32 id = call_;
        RiskVector memory v = _vector(id);
        v.loss[3] -= 1e18; // one scenario's loss 1 USD lower
        instLeaf[id].vectorHash = keccak256(abi.encode(v));
        uint64 epoch = _postMarket().epoch;
        InstrumentClaim memory c = _claim(epoch, id);
        c.vector = v;
        _disputeExpectingField(c, InstrumentVector.FIELD_LOSS);
    }

    function test_understatedShortLoss_isProven() public {
        instLeaf[put_].lossPerUnitShort /= 2;
        uint64 epoch = _postMarket().epoch;
        _disputeExpectingField(epoch, put_, InstrumentVector.FIELD_LEAF_LOSS_SHORT);
    }

    function test_wrongLeafMark_isProven() public {
        instLeaf[perp_].mark += 100e18;
        uint64 epoch = _postMarket().epoch;
        _disputeExpectingField(epoch, perp_, InstrumentVector.FIELD_LEAF_MARK);
    }

    function test_aPerpLeafWithAnotherFundingIndexThanItsHeaders_isProven() public {
        instLeaf[perp_].fundingIndex = 5e18; // the header posts 0
        uint64 epoch = _postMarket().epoch;
        _disputeExpectingField(epoch, perp_, InstrumentVector.FIELD_FUNDING_INDEX);
    }

    function test_aFundingListThatIsNotTheHeaders_reverts() public {
        uint64 epoch = _postMarket().epoch;
        InstrumentClaim memory c = _claim(epoch, perp_);
        c.funding[0].cumFunding = 1;
        vm.prank(dave);
        vm.expectRevert(abi.encodeWithSelector(Errors.FundingListMismatch.selector, epoch));
        dis.disputeInstrument(c);
    }

    function test_aMarketWithoutTheOptionsSlice_isProven() public {
        MarketInputs memory m = _marketInputs();
        uint256 u = f.c.underlying[rowOf[call_]];
        uint64 expiry = uint64(f.c.expiry[rowOf[call_]]);
        for (uint256 k; k < m.slices.length; ++k) {
            if (m.slices[k].underlying == u && m.slices[k].expiry == expiry) m.slices[k].expiry += 1;
        }
        uint64 epoch = _postWith(m).epoch;
        InstrumentClaim memory c = _claim(epoch, call_);
        c.market = m;
        _disputeExpectingField(c, InstrumentVector.FIELD_NOT_IN_MARKET);
    }

    /* scan ranges */

    function test_honestRanges_cannotBeDisputed() public {
        uint64 epoch = _postMarket().epoch;
        MarketInputs memory m = _marketInputs();
        for (uint256 u; u < m.underlyings.length; ++u) {
            RangeClaim memory c = _rangeClaim(epoch, u, m);
            uint256 g = gasleft();
            vm.prank(dave);
            try dis.disputeRange(c) {
                fail();
            } catch (bytes memory err) {
                assertEq(bytes4(err), Errors.ScanRangeIsHonest.selector);
            }
            if (u == 0) console2.log("disputeRange gas (honest, reverted), 250 returns", g - gasleft());
        }
        assertFalse(vault.isSafeMode());
    }

    function test_aLoweredRange_isProven() public {
        MarketInputs memory m = _marketInputs();
        uint256 honest = m.underlyings[1].range;
        m.underlyings[1].range = honest * 95 / 100; // every vector of the underlying 5 % narrower
        uint64 epoch = _postWith(m).epoch;
        vm.expectEmit(true, true, false, false, address(vault)); // the recomputed range: below
        emit Events.ScanRangeDisproven(epoch, 1, honest * 95 / 100, 0);
        vm.recordLogs();
        vm.prank(dave);
        dis.disputeRange(_rangeClaim(epoch, 1, m));
        _assertFraud(epoch);
        (, uint256 recomputed) = abi.decode(vm.getRecordedLogs()[0].data, (uint256, uint256));
        assertApproxEqAbs(recomputed, honest, honest / 1e12 + 1e4);
    }

    function test_returnsNotCommitted_revert() public {
        uint64 epoch = _postMarket().epoch;
        RangeClaim memory c = _rangeClaim(epoch, 2, _marketInputs());
        c.returns_[0] += 1;
        vm.prank(dave);
        vm.expectRevert(abi.encodeWithSelector(Errors.ReturnsMismatch.selector, 2));
        dis.disputeRange(c);
    }

    /* disputes that fail */

    function test_inputsNotCommitted_revert() public {
        uint64 epoch = _postMarket().epoch;
        InstrumentClaim memory c = _claim(epoch, call_);
        c.market.rate += 1;
        vm.prank(dave);
        vm.expectPartialRevert(Errors.InputsMismatch.selector);
        dis.disputeInstrument(c);
    }

    function test_vectorNotTheLeafs_reverts() public {
        uint64 epoch = _postMarket().epoch;
        InstrumentClaim memory c = _claim(epoch, call_);
        c.vector.loss[0] += 1e18;
        vm.prank(dave);
        vm.expectRevert(abi.encodeWithSelector(Errors.VectorMismatch.selector, 0));
        dis.disputeInstrument(c);
    }

    function test_wrongProof_reverts() public {
        uint64 epoch = _postMarket().epoch;
        InstrumentClaim memory c = _claim(epoch, call_);
        c.leaf.lossPerUnitLong += 1;
        vm.prank(dave);
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidInstrumentProof.selector, call_));
        dis.disputeInstrument(c);
    }

    function test_afterTheWindow_reverts() public {
        instLeaf[put_].lossPerUnitShort /= 2;
        uint64 epoch = _postMarket().epoch;
        vm.warp(block.timestamp + WINDOW + 1);
        vm.prank(dave);
        vm.expectPartialRevert(Errors.ChallengeWindowOver.selector);
        dis.disputeInstrument(_claim(epoch, put_));
    }

    function test_secondDispute_reverts() public {
        instLeaf[put_].lossPerUnitShort /= 2;
        uint64 epoch = _postMarket().epoch;
        vm.prank(dave);
        dis.disputeInstrument(_claim(epoch, put_));
        vm.prank(dave);
        vm.expectRevert(abi.encodeWithSelector(Errors.EpochAlreadyJudged.selector, epoch, epoch));
        dis.disputeInstrument(_claim(epoch, put_));
    }
}
