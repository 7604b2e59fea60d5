// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Test} from "forge-std/Test.sol";

import {VaultModel} from "../VaultModel.sol";
import {MarginVault} from "../../../../contracts/MarginVault.sol";

/// @notice Shared plumbing of the handlers: the model (truth and ghosts) and the vault.
/// Each handler owns one concern; the suite targets only the handlers, never the model.
abstract contract HandlerBase is Test {
    VaultModel internal immutable model;
    MarginVault internal immutable vault;

    constructor(VaultModel model_) {
        model = model_;
        vault = model_.getVault();
    }

    /// @dev Two distinct actors from two seeds.
    function _pair(uint256 a, uint256 b) internal view returns (address x, address y) {
        uint256 n = model.N_ACTORS();
        uint256 i = a % n;
        uint256 j = (i + 1 + b % (n - 1)) % n;
        x = model.actor(i);
        y = model.actor(j);
    }

    function _abs(int256 x) internal pure returns (uint256) {
        return x >= 0 ? uint256(x) : uint256(-x);
    }
}
