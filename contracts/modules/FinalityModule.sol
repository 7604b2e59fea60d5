// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

import {AccountLeaf, MarginProof} from "../interfaces/IMarginVault.sol";
import {IFinality, PendingWithdrawal} from "../interfaces/IFinality.sol";
import {FixedPoint} from "../libraries/FixedPoint.sol";
import {MarginBounds} from "../libraries/MarginBounds.sol";
import {Leaves} from "../libraries/Leaves.sol";
import {Errors} from "../interfaces/Errors.sol";
import {Events} from "../interfaces/Events.sol";
import {VaultModule} from "./VaultBase.sol";

/// @title FinalityModule
/// @notice What waits for a root to be final, and what happens when one is proven wrong
/// (docs/protocol.md §10): the signers' bond, the challenge window, the withdrawals that a
/// root decided (paid once their window passed without a fraud, credited back otherwise),
/// the fraud proofs and the safe mode they cause. Delegatecalled by `MarginVault`:
/// `withdraw` and `withdrawCash` through the vault's own entry points (which hold the
/// reentrancy lock), every other function through the vault's fallback (`IFinality`).
contract FinalityModule is IFinality, VaultModule {
    using SafeERC20 for IERC20;

    /// @dev Longer would lock withdrawals for more than a week (docs/protocol.md §10).
    uint64 internal constant MAX_CHALLENGE_WINDOW = 7 days;

    address private immutable SETTLEMENT_TOKEN;
    uint256 private immutable CASH_SCALE;
    /// @notice The account disputes (`IDispute`), too large to live here: this module's fallback
    /// delegates to it, on the vault's storage (docs/protocol.md §11).
    address public immutable disputeModule;

    constructor(address settlementToken_, uint256 cashScale_, address disputeModule_) {
        if (disputeModule_.code.length == 0) revert Errors.InvalidModule(disputeModule_);
        SETTLEMENT_TOKEN = settlementToken_;
        CASH_SCALE = cashScale_;
        disputeModule = disputeModule_;
    }

    /// @dev Every selector this module does not declare runs in the dispute module (reached
    /// through the vault's fallback, so still on the vault's storage); one it does not declare
    /// either reverts there, with no data.
    fallback() external onlyDelegated {
        _forward(disputeModule);
    }

    /// @notice The settlement token and cash scale this module was built for: the vault's
    /// constructor checks them against its own.
    function cashConfig() external view returns (address settlementToken, uint256 cashScale) {
        return (SETTLEMENT_TOKEN, CASH_SCALE);
    }

    /* WITHDRAWALS (bodies of IMarginVault.withdraw and withdrawCash) */

    /// @dev The vault's `withdraw` holds the lock and delegates here.
    function withdraw(uint256 account, address token, uint256 amount, MarginProof calldata mp)
        external
        onlyDelegated
    {
        address owner_ = _requireAuthorized(account, msg.sender);
        TokenConfig memory c = _requireToken(token);
        if (amount == 0) revert Errors.ZeroAmount();
        Account storage a = _accounts[account];
        uint256 balance = a.collateral[token];
        if (amount > balance) revert Errors.InsufficientBalance(account, token, balance, amount);
        a.collateral[token] = balance - amount;
        _commitCollateral(a, token, balance, balance - amount);
        emit Events.CollateralUpdated(account, token, balance - amount); // before the bounds' delta
        (int256 lo, int256 hi) = _collateralBounds(c, amount, false);
        _addBounds(account, a, lo, hi);
        _requireImSurplus(account, a, mp);
        emit Events.Withdrawn(account, token, amount);
        // to the owner: an operator trades, it does not take
        _payOrQueue(account, a, owner_, token, amount, false);
    }

    /// @dev The vault's `withdrawCash` holds the lock and delegates here.
    function withdrawCash(uint256 account, uint256 amount6, MarginProof calldata mp) external onlyDelegated {
        address owner_ = _requireAuthorized(account, msg.sender);
        if (amount6 == 0) revert Errors.ZeroAmount();
        Account storage a = _accounts[account];
        int256 c = -FixedPoint.toInt(amount6 * CASH_SCALE);
        a.cash += c;
        _commitCash(a, a.cash - c);
        _addBounds(account, a, MarginBounds.cashBound(c), MarginBounds.cashBound(c));
        _requireImSurplus(account, a, mp);
        emit Events.CashWithdrawn(account, amount6);
        _payOrQueue(account, a, owner_, SETTLEMENT_TOKEN, amount6, true);
    }

    /// @dev Pays at once when no attested number decided the withdrawal (no position and no
    /// debt after it: the account is valued on chain) or when disputes are off (window 0);
    /// otherwise queues it until the window of the root it was checked against has passed.
    function _payOrQueue(uint256 account, Account storage a, address to, address token, uint256 amount, bool isCash)
        internal
    {
        uint64 window = _challengeWindow;
        if (window == 0 || (a.instruments.length == 0 && a.cash >= 0)) {
            IERC20(token).safeTransfer(to, amount);
            return;
        }
        uint256 id = ++_pendingCount;
        uint64 readyAt = uint64(block.timestamp) + window;
        _pending[id] = PendingWithdrawal(account, to, uint64(block.timestamp), token, readyAt, isCash, amount);
        emit Events.WithdrawalQueued(id, account, to, token, amount, readyAt);
    }

    /// @inheritdoc IFinality
    function claimWithdrawal(uint256 id) external onlyDelegated nonReentrant {
        PendingWithdrawal memory w = _requirePending(id);
        if (block.timestamp < w.readyAt) revert Errors.WithdrawalNotReady(id, w.readyAt);
        if (_isVoid(w)) revert Errors.WithdrawalVoid(id);
        delete _pending[id];
        emit Events.WithdrawalClaimed(id, w.to, w.token, w.amount);
        IERC20(w.token).safeTransfer(w.to, w.amount);
    }

    /// @inheritdoc IFinality
    function returnWithdrawal(uint256 id) external onlyDelegated nonReentrant {
        PendingWithdrawal memory w = _requirePending(id);
        if (!_isVoid(w)) revert Errors.WithdrawalNotVoid(id);
        delete _pending[id];
        Account storage a = _accounts[w.account];
        if (w.isCash) {
            int256 c = FixedPoint.toInt(w.amount * CASH_SCALE);
            a.cash += c;
            _commitCash(a, a.cash - c);
            _addBounds(w.account, a, MarginBounds.cashBound(c), MarginBounds.cashBound(c));
        } else {
            uint256 balance = a.collateral[w.token];
            a.collateral[w.token] = balance + w.amount;
            _commitCollateral(a, w.token, balance, balance + w.amount);
            emit Events.CollateralUpdated(w.account, w.token, balance + w.amount);
            (int256 lo, int256 hi) = _collateralBounds(_tokenConfig[w.token], w.amount, true);
            _addBounds(w.account, a, lo, hi);
        }
        emit Events.WithdrawalReturned(id, w.account);
    }

    function _requirePending(uint256 id) internal view returns (PendingWithdrawal memory w) {
        w = _pending[id];
        if (w.to == address(0)) revert Errors.UnknownWithdrawal(id);
    }

    /// @dev A fraud declared in [queuedAt, readyAt): the newest declarations first, as they
    /// are the only ones that can fall inside a recent window.
    function _isVoid(PendingWithdrawal memory w) internal view returns (bool) {
        for (uint256 i = _fraudTimes.length; i > 0; --i) {
            uint64 t = _fraudTimes[i - 1];
            if (t < w.queuedAt) return false;
            if (t < w.readyAt) return true;
        }
        return false;
    }

    /* BOND AND CONFIGURATION */

    /// @inheritdoc IFinality
    function setDisputeConfig(uint64 window, uint256 minBond6) external onlyDelegated onlyOwner {
        if (window > MAX_CHALLENGE_WINDOW) revert Errors.InvalidChallengeWindow(window, MAX_CHALLENGE_WINDOW);
        _challengeWindow = window;
        _minBond = minBond6 * CASH_SCALE;
        emit Events.DisputeConfigSet(window, minBond6);
    }

    /// @inheritdoc IFinality
    function postBond(uint256 amount6) external onlyDelegated nonReentrant {
        if (amount6 == 0) revert Errors.ZeroAmount();
        _bond += amount6 * CASH_SCALE;
        emit Events.BondPosted(msg.sender, amount6, _bond);
        IERC20(SETTLEMENT_TOKEN).safeTransferFrom(msg.sender, address(this), amount6);
    }

    /// @inheritdoc IFinality
    function withdrawBond(uint256 amount6, address to) external onlyDelegated onlyOwner nonReentrant {
        if (to == address(0)) revert Errors.ZeroAddress();
        uint256 amount = amount6 * CASH_SCALE;
        uint256 free = _withdrawableBond();
        if (amount == 0 || amount > free) revert Errors.BondLocked(amount, free);
        _bond -= amount;
        emit Events.BondWithdrawn(to, amount6, _bond);
        IERC20(SETTLEMENT_TOKEN).safeTransfer(to, amount6);
    }

    function _withdrawableBond() internal view returns (uint256) {
        if (_fraudEpoch != 0) return 0;
        EpochRecord storage last = _epochHistory[_epoch % EPOCH_HISTORY];
        bool open = last.epoch == _epoch && _epoch != 0 && block.timestamp <= uint256(last.postedAt) + _challengeWindow;
        if (!open) return _bond;
        return _bond > _minBond ? _bond - _minBond : 0;
    }

    /* FRAUD PROOFS */

    /// @inheritdoc IFinality
    function disputeDuplicateLeaf(
        uint64 epoch,
        AccountLeaf calldata a,
        bytes32[] calldata proofA,
        AccountLeaf calldata b,
        bytes32[] calldata proofB
    ) external onlyDelegated nonReentrant {
        bytes32 root = _disputableRecord(epoch).root;
        if (a.account != b.account) revert Errors.LeafAccountMismatch(a.account, b.account);
        bytes32 ha = Leaves.hashAccount(a);
        bytes32 hb = Leaves.hashAccount(b);
        if (ha == hb) revert Errors.NotADuplicate(a.account);
        if (!MerkleProof.verifyCalldata(proofA, root, ha) || !MerkleProof.verifyCalldata(proofB, root, hb)) {
            revert Errors.InvalidAccountProof(a.account);
        }
        _declareFraud(epoch);
    }

    /* VIEWS */

    /// @inheritdoc IFinality
    function disputeConfig() external view onlyDelegated returns (uint64 window, uint256 minBond, uint256 bond) {
        return (_challengeWindow, _minBond, _bond);
    }

    /// @inheritdoc IFinality
    function fraudState() external view onlyDelegated returns (uint64 fraudEpoch, uint64 disputedThrough) {
        return (_fraudEpoch, _disputedThrough);
    }

    /// @inheritdoc IFinality
    function epochRecord(uint64 epoch) external view onlyDelegated returns (bytes32 root, uint64 postedAt) {
        EpochRecord storage r = _epochHistory[epoch % EPOCH_HISTORY];
        if (r.epoch != epoch) return (bytes32(0), 0);
        return (r.root, r.postedAt);
    }

    /// @inheritdoc IFinality
    function pendingWithdrawal(uint256 id) external view onlyDelegated returns (PendingWithdrawal memory w, bool isVoid) {
        w = _pending[id];
        isVoid = w.to != address(0) && _isVoid(w);
    }

    /// @inheritdoc IFinality
    function pendingWithdrawalCount() external view onlyDelegated returns (uint256) {
        return _pendingCount;
    }
}
