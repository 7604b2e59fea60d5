// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {HandlerBase} from "./HandlerBase.sol";
import {VaultModel} from "../VaultModel.sol";
import {AccountLeaf, AccountState, MarginProof} from "../../../../contracts/interfaces/IMarginVault.sol";

/// @notice Concern: liquidation by transfer. Tries to liquidate a subaccount whatever its
/// health, by an actor other than its owner, so that the vault's own gate decides; the ghost
/// checks compare the decision with the model's truth at that moment (INV-6, INV-7) and the
/// outcome with the view's quote (INV-5, INV-14, INV-15).
contract LiquidationHandler is HandlerBase {
    constructor(VaultModel model_) HandlerBase(model_) {}

    struct Pre {
        bool liquidatable;
        uint256 pay;
        uint256 fee;
        uint256 covered;
        uint256 uncovered;
        uint256 minDeposit6;
        int256 trueMm; // conservative (leaf rounding): <= the exact MM surplus
        address owner;
        uint256 ownerPayout;
        AccountState state;
    }

    /// @param liquidatorSeed picks the liquidator among the other actors (low byte) and the
    /// deposit above the minimum (the rest, up to $1,000).
    function liquidate(uint256 targetSeed, uint256 liquidatorSeed) external observed {
        if (vault.isSafeMode()) return;
        uint256 target = model.accountAt(targetSeed);
        if (!model.leafLive(target)) return;
        Pre memory p;
        p.owner = vault.ownerOf(target);
        address liquidator = _otherActor(p.owner, liquidatorSeed & 0xff);
        MarginProof memory mpT = model.mp(target);
        (p.liquidatable,, p.pay, p.fee, p.covered, p.uncovered, p.minDeposit6) = vault.checkLiquidation(target, mpT);
        p.trueMm = model.mmSurplus(target, false);
        p.ownerPayout = vault.payoutOf(p.owner);
        p.state = _stateOf(target);
        _checkLiveness(target, p);

        uint256 deposit6 = p.minDeposit6 + (liquidatorSeed >> 8) % 1000e6;
        if (p.liquidatable && p.minDeposit6 > 0) _checkDepositFloor(target, mpT, liquidator, p.minDeposit6 - 1);
        vm.prank(liquidator);
        try vault.liquidate(target, mpT, deposit6, type(int256).max) {
            _afterLiquidation(target, mpT, liquidator, deposit6, p);
        } catch {
            _dropLogs();
            model.count("liquidateRefused");
        }
    }

    /// @dev INV-14 (its floor): one token unit less than `minDeposit6` is always refused.
    function _checkDepositFloor(uint256 target, MarginProof memory mpT, address liquidator, uint256 deposit6) internal {
        vm.prank(liquidator);
        try vault.liquidate(target, mpT, deposit6, type(int256).max) {
            model.flag("INV-14: a deposit below minDeposit6 was accepted");
        } catch {
            _dropLogs();
        }
    }

    /// @dev INV-7: right after an epoch (no action that moved cumHi since the leaf) an account
    /// truly below maintenance must be liquidatable.
    function _checkLiveness(uint256 target, Pre memory p) internal {
        AccountLeaf memory leaf = model.postedLeaf(target);
        if (p.state.cumHi == leaf.cumHi && p.trueMm < -model.DUST() && !p.liquidatable) {
            model.flag("INV-7: an account truly below MM at its leaf is not liquidatable");
        }
    }

    function _afterLiquidation(
        uint256 target,
        MarginProof memory mpT,
        address liquidator,
        uint256 deposit6,
        Pre memory p
    ) internal {
        // INV-6: the vault never liquidates an account whose true MM surplus is >= 0 (up to the
        // leaf's rounding against the account, DUST wei).
        if (p.trueMm >= model.DUST()) model.flag("INV-6: an account with true MM surplus >= 0 was liquidated");
        if (!p.liquidatable) model.flag("INV-6: liquidate succeeded where checkLiquidation said no");
        // INV-14: the subaccount leaves at or above IM, on its leaf and in truth.
        if (vault.imSurplusLo(target, mpT) < 0) model.flag("INV-14: a liquidated subaccount is below IM on its leaf");
        if (model.imSurplus(target, true) < 0) model.flag("INV-14: a liquidated subaccount is truly below IM");
        _checkTransfer(target, liquidator, deposit6, p);
        model.recordCash(int256(deposit6 * 1e12));
        model.recordInsurance(p.fee, p.covered);
        model.recordBadDebt(p.uncovered);
        model.count(p.uncovered > 0 ? bytes32("liquidateBadDebt") : bytes32("liquidate"));
    }

    /// @dev INV-15: the subaccount changed hands whole: same positions, collateral and nonce;
    /// cash and both bounds moved by deposit - netCashPaid exactly; the owner is owed `pay`.
    function _checkTransfer(uint256 target, address liquidator, uint256 deposit6, Pre memory p) internal {
        if (vault.ownerOf(target) != liquidator) model.flag("INV-15: the liquidator does not own the subaccount");
        if (vault.payoutOf(p.owner) != p.ownerPayout + p.pay) model.flag("INV-15: the owner is not owed `pay`");
        AccountState memory a = _stateOf(target);
        int256 delta = int256(deposit6 * 1e12) - (int256(p.pay) + int256(p.fee) - int256(p.covered));
        AccountState memory b = p.state;
        if (a.cash != b.cash + delta || a.cumLo != b.cumLo + delta || a.cumHi != b.cumHi + delta) {
            model.flag("INV-15: cash or bounds moved by other than deposit - netCashPaid");
        }
        b.cash = a.cash;
        b.cumLo = a.cumLo;
        b.cumHi = a.cumHi;
        if (keccak256(abi.encode(a)) != keccak256(abi.encode(b))) {
            model.flag("INV-15: a liquidation moved a position, collateral or the nonce");
        }
    }

    function _stateOf(uint256 account) internal view returns (AccountState memory) {
        uint256[] memory one = new uint256[](1);
        one[0] = account;
        return vault.accountStates(one)[0];
    }
}
