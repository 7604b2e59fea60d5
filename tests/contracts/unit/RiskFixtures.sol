// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AggregationParams, RiskVector} from "../../../contracts/libraries/AccountMargin.sol";

/// @notice Hand-made risk vectors and aggregation parameters shared by the account tests
/// (AccountMargin.t.sol, DisputeAccount.t.sol): a 7-scenario template, perp-like vectors and
/// two correlated underlyings.
abstract contract RiskFixtures {
    // A small template: scenario 0 no move, then +-0.8 (the MM grid: nMm = 3), +-1, and the
    // extremes +-2 at 35 % cover. Column 7 is the IM copy of scenario 2 (+0.8).
    function _fractions() internal pure returns (int256[7] memory) {
        return [int256(0), -8e17, 8e17, -1e18, 1e18, -2e18, 2e18];
    }

    function _covers() internal pure returns (uint256[7] memory) {
        return [uint256(1e18), 1e18, 1e18, 1e18, 1e18, 35e16, 35e16];
    }

    /// @dev A perp's vector: `loss[s] = -mark move(s) cover(s)`, basis +-1 % of the mark, delta = mark,
    /// minimum charge 0.1 % of the spot (= mark here), no pad.
    function _perp(uint256 underlying, uint256 mark, uint256 range) internal pure returns (RiskVector memory v) {
        int256[7] memory f = _fractions();
        uint256[7] memory c = _covers();
        v.underlying = underlying;
        v.mark = mark;
        v.loss = new int256[](7);
        for (uint256 s; s < 7; ++s) {
            int256 move = f[s] * int256(range) / 1e18;
            v.loss[s] = -int256(mark) * move / 1e18 * int256(c[s]) / 1e18;
        }
        v.basisUp = -int256(mark / 100);
        v.basisDown = int256(mark / 100);
        v.delta = int256(mark);
        v.minimumCharge = mark / 1000;
        v.notional = mark;
    }

    /// @dev BTC (0) and ETH (1) at correlation 0.64 after the credit factor: weights 0.36, 0.36, 0.64.
    function _params() internal pure returns (AggregationParams memory p) {
        p.nMm = 3;
        p.imCopies = new uint256[](1);
        p.imCopies[0] = 2;
        p.mmScale = 98e16;
        p.concentrationRate = new uint256[](2);
        p.concentrationRate[0] = 2e16;
        p.concentrationRate[1] = 2e16;
        p.concentrationThreshold = new uint256[](2);
        p.concentrationThreshold[0] = 5_000_000e18;
        p.concentrationThreshold[1] = 3_000_000e18;
        p.nodeWeight = new uint256[](3);
        p.nodeWeight[0] = 36e16;
        p.nodeWeight[1] = 36e16;
        p.nodeWeight[2] = 64e16;
        p.left = new uint256[](1);
        p.right = new uint256[](1);
        p.right[0] = 1;
    }
}
