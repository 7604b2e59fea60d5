// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;


import {Instrument, InstrumentKind} from "../interfaces/IMarginVault.sol";
import {
    IInstrumentDispute,
    InstrumentClaim,
    MarketInputs,
    MarketSlice,
    MarketUnderlying,
    RangeClaim
} from "../interfaces/IDispute.sol";
import {ScanRange} from "../libraries/ScanRange.sol";
import {AccountDispute} from "../libraries/AccountDispute.sol";
import {RiskVector} from "../libraries/AccountMargin.sol";
import {InstrumentVector, UnderlyingMarket, VectorParams} from "../libraries/InstrumentVector.sol";
import {InstrumentMarket} from "../libraries/ScenarioLoss.sol";
import {Errors} from "../interfaces/Errors.sol";
import {Events} from "../interfaces/Events.sol";
import {VaultModule} from "./VaultBase.sol";

/// @title InstrumentDisputeModule
/// @notice The fraud proofs against one INSTRUMENT leaf (docs/protocol.md §11): its risk vector,
/// mark or per-unit losses do not follow from the epoch's committed market inputs; and against one
/// committed scan range: it does not follow from the underlying's committed returns. Delegatecalled
/// by the dispute module's fallback (itself reached through the finality module's and the vault's):
/// the vault's storage, msg.sender the disputer.
contract InstrumentDisputeModule is IInstrumentDispute, VaultModule {
    /// @inheritdoc IInstrumentDispute
    function disputeInstrument(InstrumentClaim calldata c) external onlyDelegated nonReentrant {
        EpochRecord storage r = _disputableRecord(c.epoch);
        uint32 id = c.leaf.instrument;
        _requireInstrumentIn(r.root, c.leaf, c.proof);
        if (AccountDispute.hashVector(c.vector) != c.leaf.vectorHash) revert Errors.VectorMismatch(0);
        bytes32 inputs = _inputsHash(c);
        if (inputs != r.inputsHash) revert Errors.InputsMismatch(c.epoch, r.inputsHash, inputs);
        if (keccak256(abi.encode(c.funding)) != r.fundingHash) revert Errors.FundingListMismatch(c.epoch);
        if (!_fundingIndexIsPosted(c, id)) {
            emit Events.InstrumentLeafDisproven(c.epoch, id, InstrumentVector.FIELD_FUNDING_INDEX);
            _declareFraud(c.epoch);
            return;
        }
        (bool found, InstrumentMarket memory m, UnderlyingMarket memory u, uint256 range) =
            _marketOf(id, c.market, r.timestamp);
        if (!found) {
            // a leaf for a live instrument whose inputs the committed market lacks follows from nothing
            emit Events.InstrumentLeafDisproven(c.epoch, id, InstrumentVector.FIELD_NOT_IN_MARKET);
            _declareFraud(c.epoch);
            return;
        }
        if (u.index >= c.params.concentrationRate.length) {
            revert Errors.ClaimShapeMismatch(c.params.concentrationRate.length, u.index + 1);
        }
        VectorParams memory p = c.vectorParams;
        p.grid.range = range;
        RiskVector memory want = InstrumentVector.riskVectorApprox(m, u, p);
        uint256 tol = InstrumentVector.toleranceOf(m);
        uint8 field = _firstWrong(c, want, p.layout.imCopies, tol);
        if (field == InstrumentVector.FIELD_NONE) revert Errors.InstrumentLeafIsHonest(id, tol);
        emit Events.InstrumentLeafDisproven(c.epoch, id, field);
        _declareFraud(c.epoch);
    }

    /// @dev A perp's leaf carries the funding index its header posts for it (the keeper posts every
    /// perp's, every epoch: a perp leaf without one in its header is wrong); any other leaf 0.
    function _fundingIndexIsPosted(InstrumentClaim calldata c, uint32 id) internal view returns (bool) {
        Instrument storage ins = _instruments[id];
        if (ins.underlying == bytes32(0)) revert Errors.UnknownInstrument(id);
        if (ins.kind != InstrumentKind.PERP) return c.leaf.fundingIndex == 0;
        for (uint256 i; i < c.funding.length; ++i) {
            if (c.funding[i].instrument == id) return c.funding[i].cumFunding == c.leaf.fundingIndex;
        }
        return false;
    }

    /// @dev The first field of the claimed vector, then of the leaf, that is not what `want` gives.
    function _firstWrong(InstrumentClaim calldata c, RiskVector memory want, uint256[] memory imCopies, uint256 tol)
        internal
        pure
        returns (uint8 field)
    {
        field = InstrumentVector.differs(want, c.vector, tol);
        if (field != InstrumentVector.FIELD_NONE) return field;
        return InstrumentVector.leafDiffers(c.leaf, want, imCopies, c.params.concentrationRate[want.underlying], tol);
    }

    /// @dev The header's `inputsHash` from the claim (keeper/epoch_build.py:inputs_hash and
    /// market_hash): the aggregation parameters' hash, the token vectors' hash and the market hash
    /// over the snapshot's hash, the market inputs and the vector parameters.
    function _inputsHash(InstrumentClaim calldata c) internal pure returns (bytes32) {
        return _inputsHashOf(
            AccountDispute.hashParams(c.params),
            c.tokenVectorsHash,
            c.snapshotHash,
            keccak256(abi.encode(c.market)),
            keccak256(abi.encode(c.vectorParams)),
            c.rangeParamsHash
        );
    }

    /// @dev `keccak256(abi.encode(paramsHash, tokenVectorsHash, marketHash))`, the market hash over
    /// the snapshot's, the market inputs', the vector parameters' and the range parameters' hashes.
    function _inputsHashOf(
        bytes32 paramsHash,
        bytes32 tokenVectorsHash,
        bytes32 snapshotHash,
        bytes32 marketInputsHash,
        bytes32 vectorParamsHash,
        bytes32 rangeParamsHash
    ) internal pure returns (bytes32) {
        bytes32 marketHash =
            keccak256(abi.encode(snapshotHash, marketInputsHash, vectorParamsHash, rangeParamsHash));
        return keccak256(abi.encode(paramsHash, tokenVectorsHash, marketHash));
    }

    /// @inheritdoc IInstrumentDispute
    function disputeRange(RangeClaim calldata c) external onlyDelegated nonReentrant {
        EpochRecord storage r = _disputableRecord(c.epoch);
        bytes32 inputs = _inputsHashOf(
            c.paramsHash,
            c.tokenVectorsHash,
            c.snapshotHash,
            keccak256(abi.encode(c.market)),
            c.vectorParamsHash,
            keccak256(abi.encode(c.rangeParams))
        );
        if (inputs != r.inputsHash) revert Errors.InputsMismatch(c.epoch, r.inputsHash, inputs);
        if (c.underlying >= c.market.underlyings.length) {
            revert Errors.ClaimShapeMismatch(c.underlying, c.market.underlyings.length);
        }
        MarketUnderlying calldata mu = c.market.underlyings[c.underlying];
        if (keccak256(abi.encodePacked(c.returns_)) != mu.returnsHash) revert Errors.ReturnsMismatch(c.underlying);
        uint256 want = ScanRange.rangeApprox(c.returns_, mu.scanRangeFloor, c.rangeParams);
        uint256 tol = ScanRange.toleranceOf(want);
        uint256 gap = want > mu.range ? want - mu.range : mu.range - want;
        if (gap <= tol) revert Errors.ScanRangeIsHonest(c.underlying, want, tol);
        emit Events.ScanRangeDisproven(c.epoch, c.underlying, mu.range, want);
        _declareFraud(c.epoch);
    }

    /// @dev Instrument `id`'s pricing inputs: its terms from the vault, the first underlying of the
    /// committed market with its symbol and, for an option, the first slice of that underlying at its
    /// expiry (an entry duplicated with other numbers cannot help a quorum: every leaf must follow
    /// from the first), the epoch's timestamp and the market's rate. `found` false: the market has
    /// no such underlying or slice.
    function _marketOf(uint32 id, MarketInputs calldata mk, uint64 timestamp)
        internal
        view
        returns (bool found, InstrumentMarket memory m, UnderlyingMarket memory u, uint256 range)
    {
        Instrument storage ins = _instruments[id];
        if (ins.underlying == bytes32(0)) revert Errors.UnknownInstrument(id);
        bool perp = ins.kind == InstrumentKind.PERP;
        if (!perp && ins.expiry <= timestamp) revert Errors.InstrumentExpired(id, ins.expiry);
        uint256 ui;
        (found, ui) = _underlyingIndex(mk, ins.underlying);
        if (!found) return (found, m, u, range);
        MarketUnderlying calldata mu = mk.underlyings[ui];
        u = UnderlyingMarket(ui, mu.spot, mu.confidence);
        range = mu.range;
        m.kind = uint8(ins.kind);
        m.timestamp = timestamp;
        m.rate = mk.rate;
        if (perp) {
            m.price = mu.perpMark;
        } else {
            uint256 j;
            (found, j) = _slice(mk, ui, ins.expiry);
            if (!found) return (found, m, u, range);
            MarketSlice calldata s = mk.slices[j];
            (m.strike, m.expiry) = (ins.strike, ins.expiry);
            (m.forward, m.atmVol, m.skew, m.curvature) = (s.forward, s.atmVol, s.skew, s.curvature);
        }
    }

    function _underlyingIndex(MarketInputs calldata mk, bytes32 symbol) internal pure returns (bool, uint256) {
        for (uint256 i; i < mk.underlyings.length; ++i) {
            if (mk.underlyings[i].symbol == symbol) return (true, i);
        }
        return (false, 0);
    }

    function _slice(MarketInputs calldata mk, uint256 underlying, uint64 expiry) internal pure returns (bool, uint256) {
        for (uint256 i; i < mk.slices.length; ++i) {
            if (mk.slices[i].underlying == underlying && mk.slices[i].expiry == expiry) return (true, i);
        }
        return (false, 0);
    }
}
