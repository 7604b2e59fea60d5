// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IMarginVault, CommittedState, StateDelta} from "./interfaces/IMarginVault.sol";
import {IStateLens} from "./interfaces/IStateLens.sol";
import {StateChain} from "./libraries/StateChain.sol";

/// @title StateLens
/// @notice `proveStateAt` over the vault's views (natspec on `IStateLens`); the check itself
/// is `StateChain.prove`, which an on-chain dispute runs on storage it reads directly.
contract StateLens is IStateLens {
    /// @inheritdoc IStateLens
    address public immutable vault;

    constructor(address vault_) {
        vault = vault_;
    }

    /// @inheritdoc IStateLens
    function proveStateAt(
        uint256 account,
        uint64 seq,
        bytes24 chainAtSeq,
        CommittedState calldata state,
        StateDelta[] calldata deltas
    ) external view returns (bytes32) {
        IMarginVault v = IMarginVault(vault);
        StateChain.Live memory live;
        live.word = v.stateChain(account);
        (live.cash,, live.cumLo, live.cumHi, live.instruments, live.sizes, live.fundingIndices, live.balances) = v.accountState(account);
        live.tokens = v.tokens();
        return StateChain.prove(live, seq, chainAtSeq, state, deltas);
    }
}
