// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {HandlerBase} from "./HandlerBase.sol";
import {VaultModel} from "../VaultModel.sol";
import {AccountLeaf, MarginProof} from "../../../../contracts/interfaces/IMarginVault.sol";

/// @notice Concern: liquidation. Tries to liquidate an actor whatever its health, so that the
/// vault's own gate decides; the ghost checks compare the decision with the model's truth at
/// that moment (INV-6, INV-7) and the outcome with the view's quote (INV-5, INV-9).
contract LiquidationHandler is HandlerBase {
    constructor(VaultModel model_) HandlerBase(model_) {}

    struct Pre {
        bool liquidatable;
        uint256 pay;
        uint256 fee;
        uint256 covered;
        uint256 uncovered;
        int256 trueMm; // conservative (leaf rounding): <= the exact MM surplus
    }

    function liquidate(uint256 targetSeed, uint256 liquidatorSeed) external {
        if (vault.isSafeMode()) return;
        (address target, address liquidator) = _pair(targetSeed, liquidatorSeed);
        if (!model.leafLive(target)) return; // its old leaves are dead until the next epoch
        MarginProof memory mpT = model.mp(target);
        MarginProof memory mpL = model.mp(liquidator);
        Pre memory p;
        (p.liquidatable,, p.pay, p.fee, p.covered, p.uncovered) = vault.checkLiquidation(target, mpT);
        p.trueMm = model.mmSurplus(target, false);
        _checkLiveness(target, p);

        vm.prank(liquidator);
        try vault.liquidate(target, mpT, mpL, type(int256).max) {
            _afterLiquidation(target, liquidator, p);
        } catch {
            model.count("liquidateRefused");
        }
    }

    /// @dev INV-7: right after an epoch (no action that moved cumHi since the leaf) an account
    /// truly below maintenance must be liquidatable.
    function _checkLiveness(address target, Pre memory p) internal {
        AccountLeaf memory leaf = model.postedLeaf(target);
        (,,, int256 cumHi,,,,) = vault.accountState(target);
        if (cumHi == leaf.cumHi && p.trueMm < -model.DUST() && !p.liquidatable) {
            model.flag("INV-7: an account truly below MM at its leaf is not liquidatable");
        }
    }

    function _afterLiquidation(address target, address liquidator, Pre memory p) internal {
        // INV-6: the vault never liquidates an account whose true MM surplus is >= 0 (up to the
        // leaf's rounding against the account, DUST wei).
        if (p.trueMm >= model.DUST()) model.flag("INV-6: an account with true MM surplus >= 0 was liquidated");
        if (!p.liquidatable) model.flag("INV-6: liquidate succeeded where checkLiquidation said no");
        // INV-9: the liquidator keeps a true IM surplus >= 0 after taking the account over.
        if (model.imSurplus(liquidator, true) < 0) model.flag("INV-9: liquidation left the liquidator below IM");
        // The account is emptied and paid exactly what the view quoted.
        (int256 cash,,,, uint32[] memory ids,,, uint256[] memory bals) = vault.accountState(target);
        if (cash != int256(p.pay) || ids.length != 0) model.flag("INV-5: liquidated account not emptied / paid");
        for (uint256 i; i < bals.length; ++i) {
            if (bals[i] != 0) model.flag("INV-5: liquidated account kept collateral");
        }
        model.recordInsurance(p.fee, p.covered);
        model.recordBadDebt(p.uncovered);
        model.recordRounding(20);
        model.count(p.uncovered > 0 ? bytes32("liquidateBadDebt") : bytes32("liquidate"));
    }
}
