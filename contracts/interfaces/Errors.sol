// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title Errors
/// @notice Every custom error of the vault, carrying the values that failed. Declared in an
/// interface (not a library) so that every contract inheriting it (the vault, its modules)
/// lists all of them in its ABI, even those only a delegatecalled module reverts with; code
/// still writes `revert Errors.X(...)`.
interface Errors {
    /* CONFIGURATION */
    error ZeroAddress();
    error InvalidQuorum(uint8 quorum, uint256 signerCount);
    error TooManySigners(uint256 count, uint256 max);
    error InvalidSignerSet(address signer); // zero or duplicate
    error InvalidRiskConfig(uint64 maxAge, uint256 liquidationPenalty, uint256 insuranceShare);
    error InvalidFutureTolerance(uint64 futureTolerance, uint64 max);
    error RenounceOwnershipDisabled();
    error TokenAlreadyRegistered(address token);
    error TooManyTokens(uint256 max);
    error InvalidToken(address token); // settlement token or unsupported decimals
    error InvalidModule(address module); // no code, or an exchange module built for another settlement token
    error InvalidInstrument(uint8 kind, uint256 strike, uint64 expiry);
    error DuplicateInstrument(uint32 existingId); // same kind, underlying, strike and expiry
    /// aggregator with code and <= 18 decimals, 0 < maxDeviation <= 1e18, 0 < maxStaleness <= 3 days
    error InvalidPriceReference(address token, address aggregator, uint256 maxDeviation, uint256 maxStaleness);
    error PriceReferencesForAnotherVault(address references, address vault); // its vault() is not this one

    /* LOOKUPS */
    error UnknownToken(address token);
    error UnknownSubaccount(uint256 account);
    error UnknownInstrument(uint32 instrument);

    /* SUBACCOUNTS */
    error NotAuthorized(uint256 account, address sender); // neither the owner nor its operator

    /* AMOUNTS */
    error ZeroAmount();
    error InsufficientBalance(uint256 account, address token, uint256 balance, uint256 amount);
    error InsufficientInsurance(uint256 fund, uint256 amount);
    error NothingToClaim();

    /* MARGIN */
    error SafeMode();
    error InsufficientMargin(uint256 account, int256 imSurplusLo);
    error LeafAccountMismatch(uint256 expected, uint256 leafAccount);
    error StaleStateNonce(uint256 account, uint64 expected, uint64 leafNonce);
    error InvalidAccountProof(uint256 account);
    error InvalidInstrumentProof(uint32 instrument);
    error InstrumentLeafMismatch(uint32 expected, uint32 leafInstrument);
    error TooManyPositions(uint256 account, uint256 max);
    error BoundsFromPreviousPrices(uint256 account, uint64 untilEpoch);

    /* ATTESTATION */
    error InvalidSignature(uint256 index);
    error UnknownSigner(address signer);
    error DuplicateSigner(address signer);
    error SignersNotSorted(address previous, address signer);
    error BelowQuorum(uint256 signatures, uint8 quorum);
    error WrongConfigVersion(uint64 expected, uint64 got);
    error EpochNotIncreasing(uint64 last, uint64 got);
    error InvalidSnapshotBlock(uint64 snapshotBlock, uint64 lastSnapshotBlock, uint256 blockNumber);
    error TimestampBeforeLast(uint64 lastTimestamp, uint64 timestamp);
    error TimestampInFuture(uint64 timestamp, uint256 blockTimestamp);
    error StaleTimestamp(uint64 timestamp, uint256 blockTimestamp);
    error TokenCountMismatch(uint256 expected, uint256 got);
    error TokenTableMismatch(uint256 index, address expected, address got);
    /// price in (0, 2^128), downShock <= 1e18, upShock < 2^64: one stored slot per token
    error InvalidTokenPrice(address token, uint256 price, uint256 downShock, uint256 upShock);
    error NotAPerp(uint32 instrument);
    error NotAnOption(uint32 instrument);
    error NotExpired(uint32 instrument, uint64 expiry, uint64 timestamp);
    error SettlementAlreadySet(uint32 instrument);
    error EmptyRoot();
    /// |price - referencePrice| / referencePrice > maxDeviation (all WAD; deviation rounded up)
    error PriceDeviatesFromReference(
        address token, uint256 price, uint256 referencePrice, uint256 deviation, uint256 maxDeviation
    );
    error NotDelegated();

    /* QUOTES */
    error QuoteExpired(uint64 deadline, uint256 blockTimestamp);
    error WrongTaker(address expected, address sender);
    error SelfTrade(uint256 account);
    error NonceUsed(address maker, uint256 nonce);
    error InvalidQuoteSignature(address maker, address recovered);
    error InvalidLegs(uint256 legs, uint256 proofs);
    error ZeroSize(uint32 instrument);
    error InstrumentExpired(uint32 instrument, uint64 expiry);

    /* SETTLEMENT */
    error SettlementPriceNotSet(uint32 instrument);
    error NoPosition(uint256 account, uint32 instrument);

    /* LIQUIDATION */
    error SelfLiquidation(uint256 account);
    error AccountHealthy(uint256 account, int256 mmSurplusHi);
    error NothingToLiquidate(uint256 account);
    error LiquidationCostTooHigh(int256 netCashPaid, int256 maxCashOut);
    error LiquidationDepositTooSmall(uint256 deposit6, uint256 minDeposit6);

    /* STATE COMMITMENT (docs/protocol.md §9) */
    error NonCanonicalState(uint256 index); // entry `index` (positions, then collateral) out of order or zero
    error StateChainMismatch(bytes32 stored, bytes32 computed); // the deltas do not lead to the stored chain word
    error StateDeltaMismatch(uint256 index); // delta `index`'s old value is not the running value
    error StateMismatch(); // the state after the deltas is not the account's live state

    /* FINALITY AND DISPUTES (docs/protocol.md §10) */
    error InvalidChallengeWindow(uint64 window, uint64 max);
    error BondTooLow(uint256 bond, uint256 minBond); // postEpoch while the window is not 0
    error BondLocked(uint256 amount, uint256 withdrawable);
    error EpochHistoryFull(uint64 epochInSlot); // the ring slot still holds a root inside its window
    error SignersNotRotated(uint256 oldSignersInSet, uint8 quorum); // restoring after a fraud
    error EpochNotDisputable(uint64 epoch); // not recorded (window 0 at its post, or overwritten)
    error EpochAlreadyJudged(uint64 epoch, uint64 judgedThrough);
    error ChallengeWindowOver(uint64 epoch, uint256 closedAt);
    error NotADuplicate(uint256 account); // the two leaves are the same leaf
    error UnknownWithdrawal(uint256 id); // never queued, or already claimed or returned
    error WithdrawalNotReady(uint256 id, uint64 readyAt);
    error WithdrawalVoid(uint256 id); // a fraud was declared during its window: returnWithdrawal
    error WithdrawalNotVoid(uint256 id);

    /* ACCOUNT DISPUTES (docs/protocol.md §11) */
    error InputsMismatch(uint64 epoch, bytes32 committed, bytes32 given); // params, token vectors, market hash
    error LeafIsHonest(uint256 account, int256 equity, uint256 im, uint256 mm, uint256 tolerance);
    error StateWordIsReal(uint256 account, bytes32 stateWord);
    error ClaimShapeMismatch(uint256 count, uint256 expected);
    error VectorMismatch(uint256 index); // a vector's hash is not the committed one
    error SizeMismatch(uint256 index, int256 expected, int256 given);
    error EngineCashMismatch(int256 expected, int256 given);

    /* INSTRUMENT DISPUTES (docs/protocol.md §11) */
    error InstrumentLeafIsHonest(uint32 instrument, uint256 tolerance);
    error FundingListMismatch(uint64 epoch); // the funding updates given are not the epoch header's
    error ScanRangeIsHonest(uint256 underlying, uint256 recomputed, uint256 tolerance);
    error ReturnsMismatch(uint256 underlying); // the returns given do not hash to the entry's returnsHash
}
