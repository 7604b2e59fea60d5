// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AggregatorV3Interface} from "../interfaces/AggregatorV3Interface.sol";

/// @title MockAggregatorV3
/// @notice A settable Chainlink-style price feed for forge tests and Anvil (the reference
/// price of docs/protocol.md §4): anyone sets the answer, its time, the round and the
/// decimals, and can make it revert. Never deploy it to a network that holds value.
contract MockAggregatorV3 is AggregatorV3Interface {
    uint8 public decimals;
    int256 public answer;
    uint256 public updatedAt;
    uint80 public roundId;
    bool public reverts;

    error MockAggregatorReverted();

    constructor(uint8 decimals_, int256 answer_) {
        decimals = decimals_;
        setAnswer(answer_);
    }

    /// @notice A new round: `answer_` (with `decimals` decimals) updated now.
    function setAnswer(int256 answer_) public {
        setRound(roundId + 1, answer_, block.timestamp);
    }

    /// @notice Any round, any answer (zero, negative) and any time (e.g. hours ago: stale).
    function setRound(uint80 roundId_, int256 answer_, uint256 updatedAt_) public {
        roundId = roundId_;
        answer = answer_;
        updatedAt = updatedAt_;
    }

    function setDecimals(uint8 decimals_) external {
        decimals = decimals_;
    }

    /// @notice Makes `latestRoundData` and `getRoundData` revert (a paused or removed feed).
    function setReverts(bool reverts_) external {
        reverts = reverts_;
    }

    function description() external pure returns (string memory) {
        return "mock / USD";
    }

    function version() external pure returns (uint256) {
        return 4;
    }

    function getRoundData(uint80 roundId_) external view returns (uint80, int256, uint256, uint256, uint80) {
        if (reverts) revert MockAggregatorReverted();
        return (roundId_, answer, updatedAt, updatedAt, roundId_);
    }

    function latestRoundData() external view returns (uint80, int256, uint256, uint256, uint80) {
        if (reverts) revert MockAggregatorReverted();
        return (roundId, answer, updatedAt, updatedAt, roundId);
    }
}
