// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

import {Epoch, FundingUpdate, Settlement, TokenPrice, Instrument, InstrumentKind} from "../interfaces/IMarginVault.sol";
import {WAD} from "../libraries/FixedPoint.sol";
import {TypedDataHashing} from "../libraries/TypedDataHashing.sol";
import {Errors} from "../interfaces/Errors.sol";
import {IPriceReferences} from "../interfaces/IPriceReferences.sol";
import {Events} from "../interfaces/Events.sol";
import {VaultModule} from "./VaultBase.sol";

/// @title EpochModule
/// @notice `postEpoch`: verifies an attested epoch (docs/protocol.md §4) and stores its root,
/// token table, funding indices and settlement prices, and has the token prices checked
/// against their reference feeds where the owner set them. Delegatecalled by `MarginVault`.
contract EpochModule is VaultModule {
    /// @dev The body of `IMarginVault.postEpoch` (natspec there), run by the vault's delegatecall.
    function postEpoch(Epoch calldata header, bytes[] calldata signatures) external onlyDelegated {
        _checkHeader(header);
        _checkSignatures(_hashTypedDataV4(TypedDataHashing.hashEpoch(header)), signatures);
        _checkFinality(header);
        _epoch = header.epoch;
        _snapshotBlock = header.snapshotBlock;
        _timestamp = header.timestamp;
        _root = header.root;
        _storePrices(header);
        _checkReferencePrices();
        _storeFunding(header);
        _storeSettlements(header);
        emit Events.EpochPosted(header.epoch, header.snapshotBlock, header.timestamp, header.root, _configVersion);
    }

    function _checkHeader(Epoch calldata h) internal view {
        // Signatures of a rotated-out signer set carry an older config version.
        if (h.configVersion != _configVersion) revert Errors.WrongConfigVersion(_configVersion, h.configVersion);
        if (h.epoch <= _epoch) revert Errors.EpochNotIncreasing(_epoch, h.epoch);
        // The snapshot must be history (not the current block) and not older than the last one.
        if (h.snapshotBlock >= block.number || h.snapshotBlock < _snapshotBlock) {
            revert Errors.InvalidSnapshotBlock(h.snapshotBlock, _snapshotBlock, block.number);
        }
        if (h.timestamp < _timestamp) revert Errors.TimestampBeforeLast(_timestamp, h.timestamp);
        if (h.timestamp > block.timestamp + _futureTolerance) {
            revert Errors.TimestampInFuture(h.timestamp, block.timestamp);
        }
        if (uint256(h.timestamp) + _maxAge < block.timestamp) {
            revert Errors.StaleTimestamp(h.timestamp, block.timestamp);
        }
        if (h.root == bytes32(0)) revert Errors.EmptyRoot();
    }

    /// @dev docs/protocol.md §10. After a proven fraud, the first epoch must come from a rotated
    /// signer set (the old set's members fewer than the quorum): it lifts the safe mode. While
    /// the challenge window is not 0, a bond of at least the minimum must be posted and the root
    /// is recorded for disputes in its ring slot, which must not hold a root still disputable.
    /// One SLOAD (the window and the fraud epoch share a slot) when disputes are off.
    function _checkFinality(Epoch calldata h) internal {
        if (_fraudEpoch != 0) {
            uint256 old;
            for (uint256 i; i < _fraudSigners.length; ++i) {
                if (_isSigner[_fraudSigners[i]]) ++old;
            }
            if (old >= _quorum) revert Errors.SignersNotRotated(old, _quorum);
            _fraudEpoch = 0;
            emit Events.SafeModeLifted(h.epoch, _configVersion);
        }
        uint64 window = _challengeWindow;
        if (window == 0) return;
        if (_bond < _minBond) revert Errors.BondTooLow(_bond, _minBond);
        EpochRecord storage r = _epochHistory[h.epoch % EPOCH_HISTORY];
        if (r.epoch != 0 && block.timestamp <= uint256(r.postedAt) + window) revert Errors.EpochHistoryFull(r.epoch);
        r.root = h.root;
        r.epoch = h.epoch;
        r.postedAt = uint64(block.timestamp);
        r.timestamp = h.timestamp;
        r.inputsHash = h.inputsHash;
        r.fundingHash = keccak256(abi.encode(h.funding));
    }

    /// @dev Signatures sorted by signer, strictly ascending: a duplicate fails the order check
    /// without a set in memory.
    function _checkSignatures(bytes32 digest, bytes[] calldata signatures) internal view {
        // quorum == 0 means no signer set yet: nothing can be attested.
        if (_quorum == 0 || signatures.length < _quorum) revert Errors.BelowQuorum(signatures.length, _quorum);
        address previous;
        for (uint256 i; i < signatures.length; ++i) {
            (address s, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, signatures[i]);
            if (err != ECDSA.RecoverError.NoError) revert Errors.InvalidSignature(i);
            if (!_isSigner[s]) revert Errors.UnknownSigner(s);
            if (s == previous) revert Errors.DuplicateSigner(s);
            if (s < previous) revert Errors.SignersNotSorted(previous, s);
            previous = s;
        }
    }

    function _storePrices(Epoch calldata h) internal {
        uint256 n = _tokens.length;
        if (h.tokens.length != n) revert Errors.TokenCountMismatch(n, h.tokens.length);
        for (uint256 i; i < n; ++i) {
            TokenPrice calldata t = h.tokens[i];
            if (t.token != _tokens[i]) revert Errors.TokenTableMismatch(i, _tokens[i], t.token);
            // A zero price would value collateral at nothing and a shock above 100% below zero;
            // the upper limits are the packed slot's widths (2^128 WAD USD, 18.4x up shock).
            if (t.price == 0 || t.price > type(uint128).max || t.downShock > WAD || t.upShock > type(uint64).max) {
                revert Errors.InvalidTokenPrice(t.token, t.price, t.downShock, t.upShock);
            }
            PackedPrice memory packed = PackedPrice(uint128(t.price), uint64(t.downShock), uint64(t.upShock));
            if (i < _prices.length) _prices[i] = packed;
            else _prices.push(packed);
            emit Events.TokenPriceSet(h.epoch, t.token, t.price, t.downShock, t.upShock);
        }
    }

    /// @dev The prices just stored, checked against their reference feeds by the owner-set
    /// `PriceReferences` contract (docs/protocol.md §4, "Reference prices"); its revert
    /// (`PriceDeviatesFromReference`) refuses the epoch. One storage read when none is set.
    function _checkReferencePrices() internal {
        address references = _priceReferences;
        if (references != address(0)) IPriceReferences(references).checkPrices();
    }

    function _storeFunding(Epoch calldata h) internal {
        for (uint256 i; i < h.funding.length; ++i) {
            FundingUpdate calldata f = h.funding[i];
            if (_requireInstrument(f.instrument).kind != InstrumentKind.PERP) revert Errors.NotAPerp(f.instrument);
            _instrumentState[f.instrument].cumFunding = f.cumFunding;
            emit Events.FundingIndexSet(h.epoch, f.instrument, f.cumFunding);
        }
    }

    function _storeSettlements(Epoch calldata h) internal {
        for (uint256 i; i < h.settlements.length; ++i) {
            Settlement calldata s = h.settlements[i];
            Instrument storage ins = _requireInstrument(s.instrument);
            if (ins.kind == InstrumentKind.PERP) revert Errors.NotAnOption(s.instrument);
            // Both clocks: a header timestamp may run up to futureTolerance ahead of the chain.
            uint64 t = h.timestamp < block.timestamp ? h.timestamp : uint64(block.timestamp);
            if (ins.expiry > t) revert Errors.NotExpired(s.instrument, ins.expiry, t);
            InstrumentState storage st = _instrumentState[s.instrument];
            if (st.settled) revert Errors.SettlementAlreadySet(s.instrument); // a settlement price is final
            st.settlementPrice = s.price;
            st.settled = true;
            emit Events.SettlementPriceSet(h.epoch, s.instrument, s.price);
        }
    }
}
