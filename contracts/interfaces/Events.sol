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
    event TakeoverBufferSet(uint256 takeoverBuffer);
    event InsuranceDeposited(address indexed from, uint256 amount6, uint256 insuranceFund);
    event InsuranceWithdrawn(address indexed to, uint256 amount6, uint256 insuranceFund);

    /* ACCOUNT STATE (absolute values after the change) */
    event AccountUpdated(address indexed account, int256 cash, int256 cumLo, int256 cumHi, uint64 stateNonce);
    event PositionUpdated(address indexed account, uint32 indexed instrument, int256 size, int256 fundingIndex);
    event CollateralUpdated(address indexed account, address indexed token, uint256 balance);

    /* ACTIONS */
    event Deposited(address indexed account, address indexed token, uint256 amount);
    event Withdrawn(address indexed account, address indexed token, uint256 amount);
    event CashDeposited(address indexed account, uint256 amount6);
    event CashWithdrawn(address indexed account, uint256 amount6);
    event Trade(
        bytes32 indexed quoteHash,
        address indexed maker,
        address indexed taker,
        uint32 instrument,
        int256 size,
        uint256 price,
        uint256 cashAmount
    );
    event QuoteExecuted(bytes32 indexed quoteHash, address indexed maker, address indexed taker, uint256 nonce);
    event QuoteCancelled(address indexed maker, uint256 nonce);
    event FundingApplied(address indexed account, uint32 indexed instrument, int256 payment, int256 fundingIndex);
    event OptionSettled(
        address indexed account, uint32 indexed instrument, int256 size, uint256 price, int256 cashDelta
    );

    /* ATTESTATION */
    event EpochPosted(uint64 indexed epoch, uint64 snapshotBlock, uint64 timestamp, bytes32 root, uint64 configVersion);
    event TokenPriceSet(uint64 indexed epoch, address indexed token, uint256 price, uint256 downShock, uint256 upShock);
    event FundingIndexSet(uint64 indexed epoch, uint32 indexed instrument, int256 cumFunding);
    event SettlementPriceSet(uint64 indexed epoch, uint32 indexed instrument, uint256 price);

    /* LIQUIDATION */
    event Liquidated(
        address indexed account,
        address indexed liquidator,
        int256 mmSurplusHi,
        uint256 pay,
        uint256 fee,
        uint256 covered,
        uint256 uncovered,
        uint256 insuranceFund
    );
    event BadDebt(address indexed account, uint256 uncovered, uint256 totalBadDebt);
}
