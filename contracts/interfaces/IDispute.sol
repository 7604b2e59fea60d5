// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccountLeaf, InstrumentLeaf, CommittedState, StateDelta} from "./IMarginVault.sol";
import {AggregationParams, RiskVector} from "../libraries/AccountMargin.sol";

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
