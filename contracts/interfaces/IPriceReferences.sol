// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title IPriceReferences
/// @notice The reference price feeds of a vault's collateral tokens and the check its
/// `postEpoch` runs against them (docs/protocol.md §4, "Reference prices").
/// @dev Warning: a reference bounds only the attested token spot prices, and only within
/// maxDeviation of a Chainlink answer; a feed that cannot be read is skipped
/// (`PriceReferenceSkipped`), so the quorum alone is trusted for that token while it lasts
/// (docs/security.md §1).
interface IPriceReferences {
    /// @notice The vault whose token prices this contract checks (fixed at deployment).
    function vault() external view returns (address);

    /// @notice Sets `token`'s reference feed (owner only); `aggregator == 0` removes it. The
    /// feed's decimals are read once, here (a Chainlink feed's never change).
    /// @param token a token registered in `vault()` (`UnknownToken`).
    /// @param aggregator a Chainlink `AggregatorV3Interface` feed of USD per whole token, with
    /// code and at most 18 decimals (`InvalidPriceReference`).
    /// @param maxDeviation WAD fraction: a price p is refused when |p - ref| > maxDeviation * ref;
    /// 0 < maxDeviation <= 1e18.
    /// @param maxStaleness seconds: an answer older than this is skipped, not checked;
    /// 0 < maxStaleness <= 3 days. Set it above the feed's heartbeat.
    function setPriceReference(address token, address aggregator, uint64 maxDeviation, uint32 maxStaleness)
        external;

    /// @notice `token`'s reference (all zero: none).
    function priceReference(address token)
        external
        view
        returns (address aggregator, uint64 maxDeviation, uint32 maxStaleness, uint8 decimals);

    /// @notice The tokens that have a reference, in the order they were set.
    function referencedTokens() external view returns (address[] memory);

    /// @notice Checks the vault's current epoch prices of every referenced token: reverts
    /// `PriceDeviatesFromReference` when one deviates by more than its maxDeviation, emits
    /// `PriceReferenceSkipped` for a feed that reverts, answers <= 0 (or >= 2^128) or is older
    /// than maxStaleness. The vault's `postEpoch` calls it; anyone may, to re-check.
    function checkPrices() external;
}
