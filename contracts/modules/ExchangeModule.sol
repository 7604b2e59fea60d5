// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

import {
    Quote,
    Leg,
    Instrument,
    InstrumentLeaf,
    InstrumentProof,
    MarginProof,
    LiquidationQuote
} from "../interfaces/IMarginVault.sol";
import {FixedPoint} from "../libraries/FixedPoint.sol";
import {MarginBounds} from "../libraries/MarginBounds.sol";
import {TypedDataHashing} from "../libraries/TypedDataHashing.sol";
import {LiquidationLib} from "../libraries/LiquidationLib.sol";
import {Errors} from "../interfaces/Errors.sol";
import {Events} from "../interfaces/Events.sol";
import {VaultModule} from "./VaultBase.sol";

/// @title ExchangeModule
/// @notice The two actions with the most code: `executeQuote` (RFQ fill between two
/// subaccounts, docs/protocol.md §7) and `liquidate` (liquidation by transfer, §6).
/// Delegatecalled by `MarginVault`, which holds the reentrancy lock around the call.
contract ExchangeModule is VaultModule {
    using FixedPoint for uint256;
    using SafeERC20 for IERC20;

    /// @dev "this side held positions before the trade": below any real base (|base| <= ~1e36).
    int256 private constant NO_BASE = type(int256).min;

    /// @dev The vault's settlement token and its 10**(18 - decimals), given by the vault that
    /// deploys this module (a delegatecall runs this code, so these are this code's constants).
    address private immutable SETTLEMENT_TOKEN;
    uint256 private immutable CASH_SCALE;

    constructor(address settlementToken_, uint256 cashScale_) {
        SETTLEMENT_TOKEN = settlementToken_;
        CASH_SCALE = cashScale_;
    }

    /// @notice The settlement token and cash scale this code was built for; the vault's
    /// constructor checks them against its own.
    function cashConfig() external view returns (address settlementToken, uint256 cashScale) {
        return (SETTLEMENT_TOKEN, CASH_SCALE);
    }

    /* TRADING */

    /// @dev The body of `IMarginVault.executeQuote` (natspec there), run by the vault's
    /// delegatecall.
    function executeQuote(
        Quote calldata q,
        bytes calldata signature,
        InstrumentProof[] calldata legProofs,
        MarginProof calldata makerProof,
        uint256 takerAccount,
        MarginProof calldata takerProof
    ) external onlyDelegated {
        _requireNotSafeMode(); // marks and losses per unit come from the current root
        bytes32 digest = _validateQuote(q, signature, legProofs.length, takerAccount);
        _nonceUsed[q.maker][q.nonce] = true;
        int256 makerBase = _flatBase(_accounts[q.makerAccount]);
        int256 takerBase = _flatBase(_accounts[takerAccount]);
        _executeLegs(q, legProofs, takerAccount, digest);
        _requireTradeMargin(q.makerAccount, makerProof, makerBase);
        _requireTradeMargin(takerAccount, takerProof, takerBase);
        emit Events.QuoteExecuted(digest, q.makerAccount, takerAccount, q.nonce);
    }

    function _executeLegs(Quote calldata q, InstrumentProof[] calldata legProofs, uint256 takerAccount, bytes32 digest)
        internal
    {
        for (uint256 i; i < q.legs.length; ++i) {
            _executeLeg(q.makerAccount, takerAccount, q.legs[i], legProofs[i], digest);
        }
    }

    /// @dev For an account with no open positions before the trade: its on-chain IM surplus
    /// lower bound (cash + haircut collateral) minus its cumLo, so that after the legs
    /// `base + cumLo = onChainSurplusLo(before) + (cumLo_after - cumLo_before)` (docs/protocol.md
    /// §5): no leaf needed. `NO_BASE` for an account with positions (its leaf is the base).
    function _flatBase(Account storage a) internal view returns (int256) {
        if (a.instruments.length != 0) return NO_BASE;
        return _onChainSurplusLo(a) - a.cumLo;
    }

    /// @dev The IM gate of one side of a trade. An account that was flat before and holds
    /// positions now is bounded from its pre-trade on-chain value plus the legs' lower bounds;
    /// any other account goes through the gate of every action (its leaf, or flat after).
    function _requireTradeMargin(uint256 account, MarginProof calldata mp, int256 base) internal view {
        Account storage a = _accounts[account];
        if (base == NO_BASE || a.instruments.length == 0) return _requireImSurplus(account, a, mp);
        int256 s = base + a.cumLo;
        if (s < 0) revert Errors.InsufficientMargin(account, s);
    }

    function _validateQuote(Quote calldata q, bytes calldata signature, uint256 proofCount, uint256 takerAccount)
        internal
        view
        returns (bytes32 digest)
    {
        if (block.timestamp > q.deadline) revert Errors.QuoteExpired(q.deadline, block.timestamp);
        if (q.taker != address(0) && q.taker != msg.sender) revert Errors.WrongTaker(q.taker, msg.sender);
        // A subaccount trading with itself would move nothing but could launder the IM gate.
        // Two subaccounts of one owner may trade: each side is margin-checked on its own.
        if (q.makerAccount == takerAccount) revert Errors.SelfTrade(takerAccount);
        _requireAuthorized(takerAccount, msg.sender);
        // The signer must act for the maker subaccount now, not only when it signed.
        _requireAuthorized(q.makerAccount, q.maker);
        if (_nonceUsed[q.maker][q.nonce]) revert Errors.NonceUsed(q.maker, q.nonce);
        if (q.legs.length == 0 || q.legs.length > MAX_LEGS || q.legs.length != proofCount) {
            revert Errors.InvalidLegs(q.legs.length, proofCount);
        }
        digest = _hashTypedDataV4(TypedDataHashing.hashQuote(q));
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, signature);
        if (err != ECDSA.RecoverError.NoError || recovered != q.maker) {
            revert Errors.InvalidQuoteSignature(q.maker, recovered);
        }
    }

    /// @dev The buyer pays `mulWadUp(|size|, price)` and the seller receives exactly that:
    /// cash is rounded once, so no cash is created; sizes move by +size / -size.
    function _executeLeg(
        uint256 makerAccount,
        uint256 takerAccount,
        Leg calldata leg,
        InstrumentProof calldata ip,
        bytes32 digest
    ) internal {
        Instrument storage ins = _requireInstrument(leg.instrument);
        if (ins.expiry != 0 && block.timestamp >= ins.expiry) {
            revert Errors.InstrumentExpired(leg.instrument, ins.expiry);
        }
        if (leg.size == 0) revert Errors.ZeroSize(leg.instrument);
        _requireInstrumentLeaf(ip, leg.instrument);
        uint256 amount = FixedPoint.abs(leg.size).mulWadUp(leg.price);
        int256 makerCash = leg.size > 0 ? -FixedPoint.toInt(amount) : FixedPoint.toInt(amount);
        _trade(makerAccount, leg.instrument, leg.size, makerCash, ip.leaf);
        _trade(takerAccount, leg.instrument, -leg.size, -makerCash, ip.leaf);
        emit Events.Trade(digest, makerAccount, takerAccount, leg.instrument, leg.size, leg.price, amount);
    }

    function _trade(uint256 account, uint32 id, int256 q, int256 cashDelta, InstrumentLeaf calldata leaf) internal {
        Account storage a = _accounts[account];
        _applyFunding(account, a, id);
        _setSize(account, a, id, a.positions[id].size + q);
        a.cash += cashDelta;
        if (cashDelta != 0) _commitCash(a, a.cash - cashDelta); // shown by the AccountUpdated below
        _addBounds(account, a, MarginBounds.legLo(q, cashDelta, leaf), MarginBounds.legHi(q, cashDelta, leaf));
    }

    /* LIQUIDATION */

    /// @dev The body of `IMarginVault.liquidate` (natspec there), run by the vault's delegatecall.
    /// Constant gas: no loop over positions or tokens (docs/protocol.md §6).
    function liquidate(uint256 account, MarginProof calldata target, uint256 deposit6, int256 maxCashOut)
        external
        onlyDelegated
    {
        address previousOwner = _requireOwner(account);
        // The owner's side (itself or its operator) cannot pay itself the payout and the
        // fund's coverage: it can repay, or close positions, instead.
        if (msg.sender == previousOwner || _isOperator[previousOwner][msg.sender]) {
            revert Errors.SelfLiquidation(account);
        }
        _requireNotSafeMode();
        Account storage a = _accounts[account];
        uint256 n = a.instruments.length;
        // No position and no debt owes nothing: no leaf, honest or not, can make it liquidatable.
        if (n == 0 && a.cash >= 0) revert Errors.NothingToLiquidate(account);
        _requireAccountLeaf(account, a, target);
        // The IM check after the transfer reads this leaf: its bounds must be current-price.
        if (_boundsFromPreviousPrices(a)) revert Errors.BoundsFromPreviousPrices(account, _epoch + 1);
        // Pending funding is not applied (a loop per position); the leaf counts it, and each
        // application could round cumLo down by 1 wei, so count that.
        int256 cumLoNow = a.cumLo - FixedPoint.toInt(n);
        uint256 cashScale = CASH_SCALE;
        LiquidationQuote memory r = LiquidationLib.quote(target.leaf, cumLoNow, a.cumHi, _liquidationParams(cashScale));
        // Only when even the upper bound of the MM surplus is negative: never a healthy account.
        if (!r.liquidatable) revert Errors.AccountHealthy(account, r.mmSurplusHi);
        if (r.netCashPaid > maxCashOut) revert Errors.LiquidationCostTooHigh(r.netCashPaid, maxCashOut);
        // The subaccount leaves at IM: imSurplusLo + deposit - netCashPaid >= 0.
        if (deposit6 < r.minDeposit6) revert Errors.LiquidationDepositTooSmall(deposit6, r.minDeposit6);
        _settleLiquidation(account, a, previousOwner, r, deposit6, cashScale);
        IERC20(SETTLEMENT_TOKEN).safeTransferFrom(msg.sender, address(this), deposit6);
    }

    /// @dev The cash flows of the quote `r` and the transfer. Price-free (exact cash), so
    /// cumLo and cumHi move by the same amount and the bounds are not tainted; the stateNonce
    /// stays, since the portfolio the leaf describes is unchanged.
    function _settleLiquidation(
        uint256 account,
        Account storage a,
        address previousOwner,
        LiquidationQuote memory r,
        uint256 deposit6,
        uint256 cashScale
    ) internal {
        int256 cashDelta = FixedPoint.toInt(deposit6 * cashScale) - r.netCashPaid;
        a.cash += cashDelta;
        if (cashDelta != 0) {
            _commitCash(a, a.cash - cashDelta);
            (int256 lo0, int256 hi0) = (a.cumLo, a.cumHi);
            (a.cumLo, a.cumHi) = (lo0 + cashDelta, hi0 + cashDelta);
            _commitBounds(a, lo0, hi0);
        }
        // A pull payment: a push to a reverting or blacklisted owner must never block this.
        _payouts[previousOwner] += r.pay;
        _insuranceFund = _insuranceFund + r.fee - r.covered;
        if (r.uncovered > 0) {
            _badDebt += r.uncovered;
            emit Events.BadDebt(account, r.uncovered, _badDebt); // recorded, never silently lost
        }
        _ownerOf[account] = msg.sender;
        _emitAccount(account, a);
        emit Events.SubaccountTransferred(account, previousOwner, msg.sender);
        emit Events.Liquidated(
            account, previousOwner, msg.sender, r.mmSurplusHi, r.pay, r.fee, r.covered, r.uncovered, deposit6
        );
    }
}
