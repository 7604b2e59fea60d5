// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccountLeaf, CommittedState, FundingUpdate, InstrumentLeaf, StateDelta} from "./IMarginVault.sol";
import {AggregationParams, RiskVector} from "../libraries/AccountMargin.sol";
import {VectorParams} from "../libraries/InstrumentVector.sol";
import {RangeParams} from "../libraries/ScanRange.sol";

/// @notice Everything `disputeAccount` needs to recompute one ACCOUNT leaf (docs/protocol.md
/// §11): the leaf and its proof, the account's state at the leaf's `stateWord` with the deltas
/// from it to the live state, the engine's inputs built from that state, the INSTRUMENT leaves
/// that commit the vectors, and the epoch's committed parameters.
struct AccountClaim {
    uint64 epoch;
    AccountLeaf leaf;
    bytes32[] proof;
    CommittedState state; // the account's state at leaf.stateWord
    StateDelta[] deltas; // the vault's deltas after it, up to the live state
    InstrumentLeaf[] instruments; // one per position of an instrument live at the epoch, in state order
    bytes32[][] instrumentProofs;
    int256 cash; // the engine's cash: state cash after pending funding and expired options' payoffs
    int256[] sizes; // the engine's sizes: the live positions, then each collateral balance as a SPOT size
    RiskVector[] vectors; // one per size
    AggregationParams params;
    bytes32[] tokenVectorHashes; // one per registered token, in registration order
    bytes32 marketHash;
}

/// @notice One underlying of the engine's market (risk_engine/market.py:MarketSnapshot, after the
/// keeper's caps), in the snapshot's order: its position is the `underlying` index of the vectors.
struct MarketUnderlying {
    bytes32 symbol; // as Instrument.underlying: bytes32("BTC"), right-padded
    uint256 spot; // USD WAD
    uint256 perpMark; // USD WAD: a perp's price
    uint256 confidence; // WAD in [0, 1e18]; 1e18 when the feed gave none
    uint256 range; // the scan range R_u (fraction of price, WAD): from the returns (docs/margin-method.md §3)
    uint256 scanRangeFloor; // the underlying's scan_range parameter: R_u's floor
    bytes32 returnsHash; // keccak256(abi.encodePacked(int256[] returns)): its daily log returns, oldest first, WAD
}

/// @notice One smile slice: the options of `underlying` (index) expiring at `expiry` are priced on it.
struct MarketSlice {
    uint256 underlying;
    uint64 expiry;
    uint256 forward; // USD WAD
    uint256 atmVol; // WAD
    int256 skew; // WAD
    int256 curvature; // WAD
}

/// @notice The engine's market inputs of an epoch, as the keeper commits them in the market hash
/// (docs/protocol.md §11): `marketHash = keccak256(abi.encode(snapshotHash, keccak256(abi.encode(market)),
/// keccak256(abi.encode(vectorParams)), keccak256(abi.encode(rangeParams))))`, `snapshotHash` the hash
/// of the published snapshot's JSON.
struct MarketInputs {
    int256 rate; // the continuously compounded discount rate, WAD
    MarketUnderlying[] underlyings;
    MarketSlice[] slices;
}

/// @notice Everything `disputeInstrument` needs to recompute one INSTRUMENT leaf's vector.
struct InstrumentClaim {
    uint64 epoch;
    InstrumentLeaf leaf;
    bytes32[] proof;
    RiskVector vector; // the committed vector: keccak256(abi.encode(vector)) == leaf.vectorHash
    MarketInputs market;
    VectorParams vectorParams; // grid.range is set per underlying from the market (committed as given)
    bytes32 snapshotHash;
    AggregationParams params; // the header's params hash; concentrationRate[u] enters the leaf's losses
    bytes32 tokenVectorsHash; // keccak256(abi.encodePacked(tokenVectorHashes))
    bytes32 rangeParamsHash; // keccak256(abi.encode(RangeParams))
    FundingUpdate[] funding; // the epoch header's funding updates (the vault keeps their hash)
}

/// @notice Everything `disputeRange` needs to recompute one underlying's committed scan range.
struct RangeClaim {
    uint64 epoch;
    uint256 underlying; // its index in market.underlyings
    int256[] returns_; // its daily log returns, oldest first: hash to the entry's returnsHash
    MarketInputs market;
    bytes32 vectorParamsHash; // keccak256(abi.encode(VectorParams))
    RangeParams rangeParams;
    bytes32 snapshotHash;
    bytes32 paramsHash; // keccak256(abi.encode(AggregationParams))
    bytes32 tokenVectorsHash;
}

/// @title IDispute
/// @notice The fraud proofs against one ACCOUNT leaf, run in the vault's `DisputeModule`
/// (through the vault's fallback and the finality module's): call them on the vault's address.
/// A proven fraud has the effects of `IFinality.disputeDuplicateLeaf` (docs/protocol.md §10).
interface IDispute {
    /// @notice Proves that a leaf's numbers do not follow from the state it commits: recomputes
    /// the account's equity, IM and MM from `c` (docs/margin-method.md §10) after checking every
    /// input against the epoch's commitments; a number beyond the tolerance on either side, or
    /// bounds that are not the state's, is a fraud. Reverts `LeafIsHonest` when none is.
    function disputeAccount(AccountClaim calldata c) external;

    /// @notice Proves that a leaf's `stateWord` is not the account's state chain word at its
    /// sequence number: `chainAtSeq`, `state` and `deltas` prove the real one
    /// (`StateChain.prove`), and it differs; or the leaf names a sequence number the account
    /// has not reached. Reverts `StateWordIsReal` when the leaf's word is the real one.
    function disputeAccountState(
        uint64 epoch,
        AccountLeaf calldata leaf,
        bytes32[] calldata proof,
        bytes24 chainAtSeq,
        CommittedState calldata state,
        StateDelta[] calldata deltas
    ) external;
}

/// @title IInstrumentDispute
/// @notice The fraud proof against one INSTRUMENT leaf, run in the vault's `InstrumentDisputeModule`
/// (through the vault's, the finality module's and the dispute module's fallbacks): call it on the
/// vault's address. A proven fraud has the effects of `IFinality.disputeDuplicateLeaf`.
interface IInstrumentDispute {
    /// @notice Proves that an INSTRUMENT leaf's vector, mark or per-unit losses do not follow from
    /// the epoch's committed market inputs: recomputes the instrument's risk vector on chain
    /// (InstrumentVector, Black-76 in fixed point) from its on-chain terms (kind, strike, expiry),
    /// its underlying's entry and its slice in `c.market`, and `c.vectorParams`, after checking them
    /// against the header's `inputsHash`. A field beyond `InstrumentVector.toleranceOf` (either side),
    /// or a leaf mark or loss beyond the leaf tolerance, is a fraud. Reverts `InstrumentLeafIsHonest`
    /// when none is.
    function disputeInstrument(InstrumentClaim calldata c) external;

    /// @notice Proves that a committed underlying's scan range R_u does not follow from its committed
    /// returns and the committed range parameters: recomputes it (ScanRange.rangeApprox) after
    /// checking the returns against the entry's `returnsHash` and the market against the header's
    /// `inputsHash`. Beyond `ScanRange.toleranceOf`, either side, is a fraud; reverts
    /// `ScanRangeIsHonest` otherwise.
    function disputeRange(RangeClaim calldata c) external;
}
