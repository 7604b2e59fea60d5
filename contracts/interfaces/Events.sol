// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {InstrumentKind} from "./IMarginVault.sol";

/// @title Events
/// @notice One event per state change. Actions say what happened; the `*Updated` events carry
/// the absolute values after the change, so an indexer can rebuild every account (cash,
/// cumLo, cumHi, stateNonce, positions, collateral) from the log alone, without replaying math.
/// Declared in an interface (not a library) so that the vault's ABI lists every event,
/// including those its delegatecalled modules emit; code still writes `emit Events.X(...)`.
interface Events {
    /* GOVERNANCE */
    event TokenRegistered(address indexed token, uint8 index, uint8 decimals);
    event InstrumentRegistered(
        uint32 indexed instrument, InstrumentKind kind, bytes32 underlying, uint256 strike, uint64 expiry
    );
    event SignersSet(address[] signers, uint8 quorum, uint64 configVersion);
    event RiskConfigSet(uint64 maxAge, uint64 futureTolerance, uint256 liquidationPenalty, uint256 insuranceShare);
    event InsuranceDeposited(address indexed from, uint256 amount6, uint256 insuranceFund);
    event InsuranceWithdrawn(address indexed to, uint256 amount6, uint256 insuranceFund);

    /* SUBACCOUNTS */
    /// @dev `from` = 0 on creation: an indexer learns every subaccount and its owner from this
    /// one event (a liquidation emits it too, previous owner -> liquidator).
    event SubaccountTransferred(uint256 indexed account, address indexed from, address indexed to);
    event OperatorSet(address indexed owner, address indexed operator, bool approved);

    /* ACCOUNT STATE (absolute values after the change) */
    event AccountUpdated(uint256 indexed account, int256 cash, int256 cumLo, int256 cumHi, uint64 stateNonce);
    event PositionUpdated(uint256 indexed account, uint32 indexed instrument, int256 size, int256 fundingIndex);
    event CollateralUpdated(uint256 indexed account, address indexed token, uint256 balance);

    /* ACTIONS */
    event Deposited(uint256 indexed account, address indexed token, uint256 amount);
    event Withdrawn(uint256 indexed account, address indexed token, uint256 amount);
    event CashDeposited(uint256 indexed account, uint256 amount6);
    event CashWithdrawn(uint256 indexed account, uint256 amount6);
    event Trade(
        bytes32 indexed quoteHash,
        uint256 indexed makerAccount,
        uint256 indexed takerAccount,
        uint32 instrument,
        int256 size,
        uint256 price,
        uint256 cashAmount
    );
    event QuoteExecuted(
        bytes32 indexed quoteHash, uint256 indexed makerAccount, uint256 indexed takerAccount, uint256 nonce
    );
    event QuoteCancelled(address indexed maker, uint256 nonce);
    event FundingApplied(uint256 indexed account, uint32 indexed instrument, int256 payment, int256 fundingIndex);
    event OptionSettled(
        uint256 indexed account, uint32 indexed instrument, int256 size, uint256 price, int256 cashDelta
    );

    /* ATTESTATION */
    event EpochPosted(uint64 indexed epoch, uint64 snapshotBlock, uint64 timestamp, bytes32 root, uint64 configVersion);
    event TokenPriceSet(uint64 indexed epoch, address indexed token, uint256 price, uint256 downShock, uint256 upShock);
    event FundingIndexSet(uint64 indexed epoch, uint32 indexed instrument, int256 cumFunding);
    event SettlementPriceSet(uint64 indexed epoch, uint32 indexed instrument, uint256 price);
    /// the vault's `PriceReferences` contract (0: none, no price is checked)
    event PriceReferencesSet(address references);
    /// aggregator 0: the reference is removed (docs/protocol.md §4, "Reference prices")
    event PriceReferenceSet(
        address indexed token, address aggregator, uint64 maxDeviation, uint32 maxStaleness, uint8 decimals
    );
    /// The token's reference could not be read (reason 1: it reverted, 2: answer <= 0 or
    /// >= 2^128, 3: older than maxStaleness), so this epoch's price went unchecked against it.
    event PriceReferenceSkipped(
        uint64 indexed epoch, address indexed token, uint8 reason, int256 answer, uint256 updatedAt
    );

    /* LIQUIDATION */
    /// @dev The insurance fund after it is `insuranceFund()` (a view, not a field: one word
    /// less per liquidation); `pay` is credited to `previousOwner`'s claimable payout.
    event Liquidated(
        uint256 indexed account,
        address indexed previousOwner,
        address indexed liquidator,
        int256 mmSurplusHi,
        uint256 pay,
        uint256 fee,
        uint256 covered,
        uint256 uncovered,
        uint256 deposit6
    );
    event BadDebt(uint256 indexed account, uint256 uncovered, uint256 totalBadDebt);
    event PayoutClaimed(address indexed owner, uint256 amount6);

    /* FINALITY AND DISPUTES (docs/protocol.md §10) */
    event DisputeConfigSet(uint64 challengeWindow, uint256 minBond6);
    event BondPosted(address indexed from, uint256 amount6, uint256 bond);
    event BondWithdrawn(address indexed to, uint256 amount6, uint256 bond);
    /// @dev `reward` (WAD USD) is credited to the disputer's claimable payout, `toInsurance`
    /// to the insurance fund; the vault is in safe mode until `SafeModeLifted`.
    event FraudProven(uint64 indexed epoch, address indexed disputer, uint256 reward, uint256 toInsurance);
    event SafeModeLifted(uint64 indexed epoch, uint64 configVersion);
    event WithdrawalQueued(
        uint256 indexed id, uint256 indexed account, address to, address token, uint256 amount, uint64 readyAt
    );
    event WithdrawalClaimed(uint256 indexed id, address indexed to, address token, uint256 amount);
    event WithdrawalReturned(uint256 indexed id, uint256 indexed account);

    /// @notice An ACCOUNT leaf of `epoch` proven wrong (docs/protocol.md §11). `reason`: 0 its
    /// state word is not the account's, 1 its bounds are not its state's, 2 its numbers.
    event AccountLeafDisproven(uint64 indexed epoch, uint256 indexed account, uint8 reason);
    /// @notice What `disputeAccount` recomputed (USD WAD), with the tolerance it applied.
    event AccountLeafRecomputed(
        uint64 indexed epoch, uint256 indexed account, int256 equity, uint256 im, uint256 mm, uint256 tolerance
    );
    /// @notice An INSTRUMENT leaf of `epoch` proven wrong (docs/protocol.md §11): `field` is the
    /// first that does not follow from the committed market (InstrumentVector.FIELD_*).
    event InstrumentLeafDisproven(uint64 indexed epoch, uint32 indexed instrument, uint8 field);
    /// @notice An underlying's committed scan range of `epoch` proven wrong: what it committed and
    /// what its committed returns give (WAD).
    event ScanRangeDisproven(uint64 indexed epoch, uint256 indexed underlying, uint256 committed, uint256 recomputed);
}
