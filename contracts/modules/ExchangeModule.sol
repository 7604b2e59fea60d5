// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

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
/// @notice The two actions that move positions between accounts: `executeQuote` (RFQ fill,
/// docs/protocol.md §7) and `liquidate` (whole-account takeover, §6). Delegatecalled by
/// `MarginVault`, which holds the reentrancy lock around the call.
contract ExchangeModule is VaultModule {
    using FixedPoint for uint256;

    /// @dev "this side held positions before the trade": below any real base (|base| <= ~1e36).
    int256 private constant NO_BASE = type(int256).min;

    /* TRADING */

    /// @dev The body of `IMarginVault.executeQuote` (natspec there), run by the vault's
    /// delegatecall.
    function executeQuote(
        Quote calldata q,
        bytes calldata signature,
        InstrumentProof[] calldata legProofs,
        MarginProof calldata makerProof,
        MarginProof calldata takerProof
    ) external onlyDelegated {
        _requireNotSafeMode(); // marks and losses per unit come from the current root
        bytes32 digest = _validateQuote(q, signature, legProofs.length);
        _nonceUsed[q.maker][q.nonce] = true;
        Account storage m = _accounts[q.maker];
        Account storage t = _accounts[msg.sender];
        int256 makerBase = _flatBase(m);
        int256 takerBase = _flatBase(t);
        for (uint256 i; i < q.legs.length; ++i) {
            _executeLeg(q.maker, q.legs[i], legProofs[i], digest);
        }
        _requireTradeMargin(q.maker, m, makerProof, makerBase);
        _requireTradeMargin(msg.sender, t, takerProof, takerBase);
        emit Events.QuoteExecuted(digest, q.maker, msg.sender, q.nonce);
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
    function _requireTradeMargin(address account, Account storage a, MarginProof calldata mp, int256 base)
        internal
        view
    {
        if (base == NO_BASE || a.instruments.length == 0) return _requireImSurplus(account, a, mp);
        int256 s = base + a.cumLo;
        if (s < 0) revert Errors.InsufficientMargin(account, s);
    }

    function _validateQuote(Quote calldata q, bytes calldata signature, uint256 proofCount)
        internal
        view
        returns (bytes32 digest)
    {
        if (block.timestamp > q.deadline) revert Errors.QuoteExpired(q.deadline, block.timestamp);
        if (q.taker != address(0) && q.taker != msg.sender) revert Errors.WrongTaker(q.taker, msg.sender);
        // A self-trade would move nothing but could launder the IM gate of one side.
        if (q.maker == msg.sender) revert Errors.SelfTrade(msg.sender);
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
    function _executeLeg(address maker, Leg calldata leg, InstrumentProof calldata ip, bytes32 digest) internal {
        Instrument storage ins = _requireInstrument(leg.instrument);
        if (ins.expiry != 0 && block.timestamp >= ins.expiry) {
            revert Errors.InstrumentExpired(leg.instrument, ins.expiry);
        }
        if (leg.size == 0) revert Errors.ZeroSize(leg.instrument);
        _requireInstrumentLeaf(ip, leg.instrument);
        uint256 amount = FixedPoint.abs(leg.size).mulWadUp(leg.price);
        int256 makerCash = leg.size > 0 ? -FixedPoint.toInt(amount) : FixedPoint.toInt(amount);
        _trade(maker, leg.instrument, leg.size, makerCash, ip.leaf);
        _trade(msg.sender, leg.instrument, -leg.size, -makerCash, ip.leaf);
        emit Events.Trade(digest, maker, msg.sender, leg.instrument, leg.size, leg.price, amount);
    }

    function _trade(address account, uint32 id, int256 q, int256 cashDelta, InstrumentLeaf calldata leaf) internal {
        Account storage a = _accounts[account];
        _applyFunding(account, a, id);
        _setSize(account, a, id, a.positions[id].size + q);
        a.cash += cashDelta;
        _addBounds(account, a, MarginBounds.legLo(q, cashDelta, leaf), MarginBounds.legHi(q, cashDelta, leaf));
    }

    /* LIQUIDATION */

    /// @dev The body of `IMarginVault.liquidate` (natspec there), run by the vault's delegatecall.
    function liquidate(
        address account,
        MarginProof calldata target,
        MarginProof calldata liquidatorProof,
        int256 maxCashOut
    ) external onlyDelegated {
        if (account == msg.sender) revert Errors.SelfLiquidation(account);
        _requireNotSafeMode();
        Account storage a = _accounts[account];
        // No position and no debt owes nothing: no leaf, honest or not, can make it liquidatable.
        if (a.instruments.length == 0 && a.cash >= 0) revert Errors.NothingToLiquidate(account);
        Account storage l = _accounts[msg.sender];
        _applyAllFunding(account, a);
        _applyAllFunding(msg.sender, l);
        _requireAccountLeaf(account, a, target);
        LiquidationQuote memory r = LiquidationLib.quote(target.leaf, a.cumLo, a.cumHi, _liquidationParams());
        // Only when even the upper bound of the MM surplus is negative: never a healthy account.
        if (!r.liquidatable) revert Errors.AccountHealthy(account, r.mmSurplusHi);
        if (r.netCashPaid > maxCashOut) revert Errors.LiquidationCostTooHigh(r.netCashPaid, maxCashOut);
        // req(L + A) <= req(L) + im_A + takeoverBuffer: the liquidator carries A's IM, and the
        // superadditive concentration gap, out of its own surplus.
        int256 after_ = _imSurplusLo(msg.sender, l, liquidatorProof) + _takeoverLo(r);
        if (after_ < 0) revert Errors.InsufficientMargin(msg.sender, after_);
        _moveAccount(account, a, msg.sender, l);
        _settleLiquidation(account, a, msg.sender, l, r);
    }

    function _takeoverLo(LiquidationQuote memory r) internal view returns (int256) {
        return MarginBounds.takeoverLo(r.imSurplusLo, r.netCashPaid, _takeoverBuffer);
    }

    /// @dev Moves every position (funding already applied on both sides) and every collateral
    /// balance of `account` into the liquidator's account.
    function _moveAccount(address account, Account storage a, address liquidator, Account storage l) internal {
        uint32[] memory ids = a.instruments;
        for (uint256 i; i < ids.length; ++i) {
            uint32 id = ids[i];
            int256 size = a.positions[id].size;
            delete a.positions[id];
            emit Events.PositionUpdated(account, id, 0, 0);
            _applyFunding(liquidator, l, id); // aligns a fresh position's index; charges nothing
            _setSize(liquidator, l, id, l.positions[id].size + size);
        }
        delete a.instruments;
        for (uint256 i; i < _tokens.length; ++i) {
            address t = _tokens[i];
            uint256 amount = a.collateral[t];
            if (amount == 0) continue;
            a.collateral[t] = 0;
            l.collateral[t] += amount;
            emit Events.CollateralUpdated(account, t, 0);
            emit Events.CollateralUpdated(liquidator, t, l.collateral[t]);
        }
    }

    /// @dev The cash flows of the quote `r`: the account's cash goes to the liquidator, who pays
    /// `pay` to the account and `fee` to the fund and receives `covered` from it.
    function _settleLiquidation(
        address account,
        Account storage a,
        address liquidator,
        Account storage l,
        LiquidationQuote memory r
    ) internal {
        l.cash += a.cash - r.netCashPaid;
        a.cash = FixedPoint.toInt(r.pay);
        _insuranceFund = _insuranceFund + r.fee - r.covered;
        if (r.uncovered > 0) {
            _badDebt += r.uncovered;
            emit Events.BadDebt(account, r.uncovered, _badDebt); // recorded, never silently lost
        }
        ++a.stateNonce; // the account's leaves in this root describe what it no longer holds
        _emitAccount(account, a);
        _addBounds(liquidator, l, _takeoverLo(r), MarginBounds.UNBOUNDED);
        emit Events.Liquidated(account, liquidator, r.mmSurplusHi, r.pay, r.fee, r.covered, r.uncovered, _insuranceFund);
    }
}
