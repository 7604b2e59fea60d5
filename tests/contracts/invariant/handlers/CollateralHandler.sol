// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {HandlerBase} from "./HandlerBase.sol";
import {VaultModel} from "../VaultModel.sol";
import {MockERC20} from "../../../../contracts/mocks/MockERC20.sol";
import {AccountState, MarginProof} from "../../../../contracts/interfaces/IMarginVault.sol";

/// @notice Concern: collateral and cash in and out (deposit, withdraw, depositCash,
/// withdrawCash, depositInsurance, claimPayout) and subaccount transfers. Records the named
/// cash / token flows in the model's ghosts and checks INV-8 after every withdrawal that the
/// vault let through, INV-13 after every transfer.
contract CollateralHandler is HandlerBase {
    constructor(VaultModel model_) HandlerBase(model_) {}

    function deposit(uint256 accountSeed, uint256 tokenSeed, uint256 amount) external observed {
        uint256 account = model.accountAt(accountSeed);
        MockERC20 token = _token(tokenSeed);
        amount = _bound(amount, 1, _maxDeposit(tokenSeed));
        vm.prank(vault.ownerOf(account));
        vault.deposit(account, address(token), amount);
        model.recordCollateral(address(token), int256(amount));
        model.count("deposit");
    }

    function withdraw(uint256 accountSeed, uint256 tokenSeed, uint256 amount) external observed {
        uint256 account = model.accountAt(accountSeed);
        MockERC20 token = _token(tokenSeed);
        uint256 bal = vault.collateralBalance(account, address(token));
        if (bal == 0) return;
        amount = _bound(amount, 1, bal);
        MarginProof memory mp = model.mp(account);
        vm.prank(vault.ownerOf(account));
        vault.withdraw(account, address(token), amount, mp);
        model.recordCollateral(address(token), -int256(amount));
        _checkImAfterWithdrawal(account);
        model.count("withdraw");
    }

    function depositCash(uint256 accountSeed, uint256 amount6) external observed {
        uint256 account = model.accountAt(accountSeed);
        amount6 = _bound(amount6, 1, 500_000e6);
        vm.prank(vault.ownerOf(account));
        vault.depositCash(account, amount6);
        model.recordCash(int256(amount6 * 1e12));
        model.count("depositCash");
    }

    /// @dev Sizes the withdrawal up to 1.5x the larger of the account's cash and its IM
    /// lower bound, so that the IM gate and the token balance are both tried.
    function withdrawCash(uint256 accountSeed, uint256 amount6) external observed {
        uint256 account = model.accountAt(accountSeed);
        (int256 cash,,,,,,,) = vault.accountState(account);
        int256 room = cash;
        if (!vault.isSafeMode()) {
            try vault.imSurplusLo(account, model.mp(account)) returns (int256 s) {
                if (s > room) room = s;
            } catch {}
        }
        uint256 cap = room > 1_000e18 ? uint256(room) / 1e12 * 3 / 2 : 1_000e6;
        amount6 = _bound(amount6, 1, cap);
        MarginProof memory mp = model.mp(account);
        vm.prank(vault.ownerOf(account));
        vault.withdrawCash(account, amount6, mp);
        model.recordCash(-int256(amount6 * 1e12));
        _checkImAfterWithdrawal(account);
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

    /// @notice A liquidated owner claims its payout (whole token units; the dust stays owed).
    function claimPayout(uint256 actorSeed) external {
        address who = model.actor(actorSeed);
        uint256 amount6 = vault.payoutOf(who) / 1e12;
        if (amount6 == 0) return;
        vm.prank(who);
        vault.claimPayout();
        model.recordPayoutClaimed(amount6);
        model.count("claimPayout");
    }

    /// @notice The owner gives a subaccount to another actor. INV-13: a transfer changes no
    /// balance, cash, position, bound or nonce.
    function transfer(uint256 accountSeed, uint256 toSeed) external observed {
        uint256 account = model.accountAt(accountSeed);
        address from = vault.ownerOf(account);
        address to = _otherActor(from, toSeed);
        bytes memory before = _state(account);
        vm.prank(from);
        vault.transferSubaccount(account, to);
        if (vault.ownerOf(account) != to) model.flag("INV-13: a transfer did not change the owner");
        if (keccak256(_state(account)) != keccak256(before)) {
            model.flag("INV-13: a transfer changed a balance, position, bound or nonce");
        }
        model.count("transfer");
    }

    function _state(uint256 account) internal view returns (bytes memory) {
        uint256[] memory one = new uint256[](1);
        one[0] = account;
        AccountState[] memory st = vault.accountStates(one);
        (uint64 lastBlock, uint64 lastEpoch, uint64 tainted) = vault.boundChange(account);
        return abi.encode(st[0], lastBlock, lastEpoch, tainted);
    }

    /// @dev INV-8: a withdrawal the vault accepted leaves the true IM surplus >= 0. The
    /// generous rounding of the truth is an upper bound of the exact surplus, so a negative
    /// value here is a real breach.
    function _checkImAfterWithdrawal(uint256 account) internal {
        if (model.imSurplus(account, true) < 0) {
            model.flag("INV-8: a withdrawal left the true IM surplus below zero");
        }
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
