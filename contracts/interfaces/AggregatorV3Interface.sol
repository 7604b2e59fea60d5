// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title AggregatorV3Interface
/// @notice Chainlink's price feed interface (the functions of Chainlink's
/// `AggregatorV3Interface`, same signatures), as the vault reads a reference price through it
/// (docs/protocol.md §4, "Reference prices").
/// @dev Warning: `latestRoundData` is the latest answer Chainlink pushed, not the price now: a
/// feed updates when the price moves by its deviation threshold or its heartbeat passes, and
/// `updatedAt` says when. `answer` has `decimals()` decimals and may be zero or negative.
interface AggregatorV3Interface {
    function decimals() external view returns (uint8);

    function description() external view returns (string memory);

    function version() external view returns (uint256);

    function getRoundData(uint80 roundId_)
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound);

    function latestRoundData()
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound);
}
