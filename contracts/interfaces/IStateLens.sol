// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {CommittedState, StateDelta} from "./IMarginVault.sol";

/// @title IStateLens
/// @notice Proves a subaccount's state at an older state sequence number against the vault's
/// live storage (docs/protocol.md §9), for a disputer or the keeper. A separate contract that
/// reads the vault through its views: the vault's own code stays under the EIP-170 limit.
interface IStateLens {
    /// @notice The vault whose accounts this lens proves.
    function vault() external view returns (address);

    /// @notice Checks that `state` was `account`'s state when its sequence number was `seq`,
    /// and returns its canonical hash H(state) (the value an ACCOUNT leaf commits).
    /// @param chainAtSeq The high 24 bytes of the account's `stateChain` word at `seq` (0 at 0).
    /// @param state The state at `seq`, canonical: positions by ascending instrument id with
    /// non-zero sizes, collateral by ascending token address with non-zero amounts.
    /// @param deltas Every delta `seq + 1 .. n` as the vault committed it, oldest first (n: the
    /// account's sequence number now); the keeper rebuilds them from the vault's events.
    /// @dev Reverts `NonCanonicalState` (state not canonical), `StateChainMismatch` (the chain
    /// from `chainAtSeq` through `deltas` is not the vault's word now: a delta missing, extra
    /// or altered, or a wrong `chainAtSeq`), `StateDeltaMismatch(i)` (delta i's old value is not
    /// the value `state` and the deltas before it give), `StateMismatch` (`state` with the
    /// deltas applied is not the live state). Gas grows with the deltas (docs/gas.md).
    function proveStateAt(
        uint256 account,
        uint64 seq,
        bytes24 chainAtSeq,
        CommittedState calldata state,
        StateDelta[] calldata deltas
    ) external view returns (bytes32 stateHash);
}
