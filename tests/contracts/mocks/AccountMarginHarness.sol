// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {
    AccountMargin,
    AggregationParams,
    Requirements,
    RiskVector
} from "../../../contracts/libraries/AccountMargin.sol";

/// @notice External entry point over AccountMargin: the vectors arrive in calldata, as in a
/// dispute, and each call runs in its own memory (the accuracy test makes a thousand; docs/gas.md).
contract AccountMarginHarness {
    function account(int256 cash, int256[] calldata sizes, RiskVector[] calldata vectors, AggregationParams calldata p)
        external
        pure
        returns (int256 equity, Requirements memory r)
    {
        equity = AccountMargin.equityDown(cash, sizes, vectors);
        r = AccountMargin.requirementsUp(sizes, vectors, p);
    }
}
