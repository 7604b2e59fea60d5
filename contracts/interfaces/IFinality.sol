// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccountLeaf} from "./IMarginVault.sol";

/// @notice A withdrawal checked against a root that is not final yet: paid by `claimWithdrawal`
/// once no fraud was declared during its window, credited back by `returnWithdrawal` otherwise
/// (docs/protocol.md §10).
/// Four storage slots: the fields are ordered to pack.
struct PendingWithdrawal {
    uint256 account;
    address to; // the owner at the withdrawal
    uint64 queuedAt;
    address token; // the settlement token for a withdrawCash
    uint64 readyAt; // queuedAt + the challenge window then
    bool isCash; // withdrawCash: credited back as cash, not collateral
    uint256 amount; // token units
}

/// @title IFinality
/// @notice The vault's functions that run in its `FinalityModule` through the vault's fallback:
/// call them on the vault's address (`IFinality(vault)`). The rules: docs/protocol.md §10.
interface IFinality {
    /// @notice Sets the challenge window (seconds, at most 7 days; 0 turns disputes off and
    /// pays withdrawals at once) and the bond postEpoch requires while the window is not 0
    /// (settlement token units). Owner only. A queued withdrawal keeps its window.
    function setDisputeConfig(uint64 window, uint256 minBond6) external;

    /// @notice Adds `amount6` settlement tokens from msg.sender to the signers' bond.
    function postBond(uint256 amount6) external;

    /// @notice Pays `amount6` of the bond to `to` (owner only): the part above the minimum
    /// while the newest root is disputable, all of it after; nothing in a fraud's safe mode
    /// (`BondLocked(amount, withdrawable)`).
    function withdrawBond(uint256 amount6, address to) external;

    /// @notice Proves that the root of `epoch` holds two different ACCOUNT leaves of one
    /// subaccount. On success: safe mode, bond slashed (half to msg.sender's payout, half to
    /// the insurance fund), open withdrawals void. Reverts `EpochNotDisputable`,
    /// `EpochAlreadyJudged`, `ChallengeWindowOver`, `LeafAccountMismatch`, `NotADuplicate`,
    /// `InvalidAccountProof`.
    function disputeDuplicateLeaf(
        uint64 epoch,
        AccountLeaf calldata a,
        bytes32[] calldata proofA,
        AccountLeaf calldata b,
        bytes32[] calldata proofB
    ) external;

    /// @notice Pays pending withdrawal `id` to its owner once its window passed with no fraud
    /// declared during it. Anyone may call.
    function claimWithdrawal(uint256 id) external;

    /// @notice Credits void pending withdrawal `id` back to its subaccount. Anyone may call.
    function returnWithdrawal(uint256 id) external;

    /// @notice The challenge window (seconds), the minimum bond and the bond (WAD USD).
    function disputeConfig() external view returns (uint64 window, uint256 minBond, uint256 bond);

    /// @notice The epoch a dispute proved wrong (0: none, or restored since) and the newest
    /// epoch a declaration judged (no dispute of it or older).
    function fraudState() external view returns (uint64 fraudEpoch, uint64 disputedThrough);

    /// @notice The recorded root of `epoch` and its posting time (zeros if not recorded).
    function epochRecord(uint64 epoch) external view returns (bytes32 root, uint64 postedAt);

    /// @notice Pending withdrawal `id` (zeros once claimed or returned) and whether it is void.
    function pendingWithdrawal(uint256 id) external view returns (PendingWithdrawal memory w, bool isVoid);

    /// @notice The number of withdrawals ever queued (ids 1 to it).
    function pendingWithdrawalCount() external view returns (uint256);
}
