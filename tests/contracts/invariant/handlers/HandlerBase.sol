// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Test} from "forge-std/Test.sol";

import {VaultModel} from "../VaultModel.sol";
import {MarginVault} from "../../../../contracts/MarginVault.sol";

/// @notice Shared plumbing of the handlers: the model (truth and ghosts) and the vault.
/// Each handler owns one concern; the suite targets only the handlers, never the model.
/// Actions name a subaccount (`model.accountAt(seed)`) and are sent by its current owner.
abstract contract HandlerBase is Test {
    VaultModel internal immutable model;
    MarginVault internal immutable vault;

    /// @dev INV-16: the logs of the vault calls this handler call made go to the model's state
    /// chain ghost. A `catch` of a refused vault call must `_dropLogs()` (a reverted call's
    /// logs are recorded too); no handler makes a successful vault call before such a `try`.
    modifier observed() {
        vm.recordLogs();
        _;
        model.observeLogs(vm.getRecordedLogs());
    }

    function _dropLogs() internal {
        vm.getRecordedLogs();
    }

    constructor(VaultModel model_) {
        model = model_;
        vault = model_.getVault();
    }

    /// @dev Two distinct subaccounts from two seeds (they may have one owner).
    function _pair(uint256 a, uint256 b) internal view returns (uint256 x, uint256 y) {
        uint256 n = model.N_ACCOUNTS();
        uint256 i = a % n;
        uint256 j = (i + 1 + b % (n - 1)) % n;
        x = model.accountAt(i);
        y = model.accountAt(j);
    }

    /// @dev An actor other than `who`, from a seed.
    function _otherActor(address who, uint256 seed) internal view returns (address) {
        uint256 n = model.N_ACTORS();
        uint256 i = model.actorIndex(who);
        return model.actor((i + 1 + seed % (n - 1)) % n);
    }

    function _abs(int256 x) internal pure returns (uint256) {
        return x >= 0 ? uint256(x) : uint256(-x);
    }
}
