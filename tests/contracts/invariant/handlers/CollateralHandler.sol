// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {HandlerBase} from "./HandlerBase.sol";
import {VaultModel} from "../VaultModel.sol";
import {MockERC20} from "../../../../contracts/mocks/MockERC20.sol";
import {MarginProof} from "../../../../contracts/interfaces/IMarginVault.sol";

/// @notice Concern: collateral and cash in and out (deposit, withdraw, depositCash,
/// withdrawCash, depositInsurance). Records the named cash / token flows in the model's ghosts
/// and checks INV-8 after every withdrawal that the vault let through.
contract CollateralHandler is HandlerBase {
    constructor(VaultModel model_) HandlerBase(model_) {}

    function deposit(uint256 actorSeed, uint256 tokenSeed, uint256 amount) external {
        address who = model.actor(actorSeed);
        MockERC20 token = _token(tokenSeed);
        amount = _bound(amount, 1, _maxDeposit(tokenSeed));
        vm.prank(who);
        vault.deposit(address(token), amount);
        model.recordCollateral(address(token), int256(amount));
        model.count("deposit");
    }

    function withdraw(uint256 actorSeed, uint256 tokenSeed, uint256 amount) external {
        address who = model.actor(actorSeed);
        MockERC20 token = _token(tokenSeed);
        uint256 bal = vault.collateralBalance(who, address(token));
        if (bal == 0) return;
        amount = _bound(amount, 1, bal);
        MarginProof memory mp = model.mp(who);
        vm.prank(who);
        vault.withdraw(address(token), amount, mp);
        model.recordCollateral(address(token), -int256(amount));
        _checkImAfterWithdrawal(who);
        model.count("withdraw");
    }

    function depositCash(uint256 actorSeed, uint256 amount6) external {
        address who = model.actor(actorSeed);
        amount6 = _bound(amount6, 1, 500_000e6);
        vm.prank(who);
        vault.depositCash(amount6);
        model.recordCash(int256(amount6 * 1e12));
        model.count("depositCash");
    }

    /// @dev Sizes the withdrawal up to 1.5x the larger of the account's cash and its IM
    /// lower bound, so that the IM gate and the token balance are both tried.
    function withdrawCash(uint256 actorSeed, uint256 amount6) external {
        address who = model.actor(actorSeed);
        (int256 cash,,,,,,,) = vault.accountState(who);
        int256 room = cash;
        if (!vault.isSafeMode()) {
            try vault.imSurplusLo(who, model.mp(who)) returns (int256 s) {
                if (s > room) room = s;
            } catch {}
        }
        uint256 cap = room > 1_000e18 ? uint256(room) / 1e12 * 3 / 2 : 1_000e6;
        amount6 = _bound(amount6, 1, cap);
        MarginProof memory mp = model.mp(who);
        vm.prank(who);
        vault.withdrawCash(amount6, mp);
        model.recordCash(-int256(amount6 * 1e12));
        _checkImAfterWithdrawal(who);
        model.count("withdrawCash");
    }

    function depositInsurance(uint256 actorSeed, uint256 amount6) external {
        address who = model.actor(actorSeed);
        amount6 = _bound(amount6, 1, 100_000e6);
        vm.prank(who);
        vault.depositInsurance(amount6);
        model.recordCash(int256(amount6 * 1e12));
        model.recordInsurance(amount6 * 1e12, 0);
        model.count("depositInsurance");
    }

    /// @dev INV-8: a withdrawal the vault accepted leaves the true IM surplus >= 0. The
    /// generous rounding of the truth is an upper bound of the exact surplus, so a negative
    /// value here is a real breach.
    function _checkImAfterWithdrawal(address who) internal {
        if (model.imSurplus(who, true) < 0) model.flag("INV-8: a withdrawal left the true IM surplus below zero");
    }

    function _token(uint256 seed) internal view returns (MockERC20) {
        MockERC20[] memory t = model.collateralTokens();
        return t[seed % t.length];
    }

    /// @dev About $300k per deposit at the starting prices (weth, wbtc, gov).
    function _maxDeposit(uint256 tokenSeed) internal view returns (uint256) {
        uint256[3] memory caps = [uint256(100e18), 5e8, 300_000e18];
        return caps[tokenSeed % model.collateralTokens().length];
    }
}
