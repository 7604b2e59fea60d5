// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {FixedPointMathLib} from "solady/utils/FixedPointMathLib.sol";

import {FixedPoint, WAD} from "./FixedPoint.sol";

/// @notice The parameters an underlying's scan range follows from (risk_engine/params.py), WAD.
struct RangeParams {
    uint256 ewmaLambda; // correlation.ewma_lambda: the EWMA decay of the daily returns
    uint256 rangeVolMultiple; // scan.range_vol_multiple
    uint256 horizonDays; // horizon_days
    uint256 apcBuffer; // apc.buffer
    uint256 apcStressRatio; // apc.stress_ratio (> 1)
    uint256 maxRange; // scan.max_range: the cap
}

/// @title ScanRange
/// @notice An underlying's scan range R_u from its daily log returns, as
/// risk_engine/scenarios.py:scan_ranges_capped computes it (docs/margin-method.md §3):
/// `min(maxRange, max(floor, multiple x vol x sqrt(h)) x (1 + buffer x (1 - released)))`, `vol` the
/// EWMA daily vol (weights `lambda^(n-1-k)`, oldest first, normalised), `released =
/// clip((vol / longVol - 1) / (stressRatio - 1), 0, 1)`, `longVol` the equally weighted one (ratio 1
/// when it is 0). What a dispute of a committed range recomputes (docs/protocol.md §11).
/// @dev Not directed: within `toleranceOf` of the engine's float64 value. Each product is rounded
/// down (an error of a few wei on sums of order 1e16 wei), the square roots too (1 wei).
library ScanRange {
    /// @dev `|chain - engine| <= 1e-12 x R + 1e-14`: the float64 engine's error is about 1e-15 of R.
    uint256 internal constant TOLERANCE_PER_RANGE = 1e6; // 1e-12, WAD
    uint256 internal constant TOLERANCE_WEI = 1e4;

    function rangeApprox(int256[] memory returns_, uint256 floor, RangeParams memory p)
        internal
        pure
        returns (uint256)
    {
        (uint256 vol, uint256 longVol) = vols(returns_, p.ewmaLambda);
        uint256 scaled = FixedPoint.mulWadDown(
            FixedPoint.mulWadDown(p.rangeVolMultiple, vol), FixedPointMathLib.sqrtWad(p.horizonDays)
        );
        uint256 base = scaled > floor ? scaled : floor;
        uint256 released;
        if (longVol > 0 && vol > longVol) {
            uint256 excess = FixedPointMathLib.divWad(vol, longVol) - WAD;
            released = FixedPointMathLib.divWad(excess, p.apcStressRatio - WAD);
            if (released > WAD) released = WAD;
        }
        uint256 r = FixedPoint.mulWadDown(base, WAD + FixedPoint.mulWadDown(p.apcBuffer, WAD - released));
        return r < p.maxRange ? r : p.maxRange;
    }

    /// @notice The EWMA daily vol and the equally weighted one of `returns_` (oldest first), WAD.
    function vols(int256[] memory returns_, uint256 lambda) internal pure returns (uint256 vol, uint256 longVol) {
        uint256 n = returns_.length;
        if (n == 0) return (0, 0);
        uint256 weighted; // sum lambda^(n-1-k) r_k^2, by Horner's rule
        uint256 weights; // sum lambda^(n-1-k)
        uint256 plain; // sum r_k^2
        for (uint256 k; k < n; ++k) {
            uint256 a = FixedPoint.abs(returns_[k]);
            uint256 sq = FixedPoint.mulWadDown(a, a);
            weighted = FixedPoint.mulWadDown(weighted, lambda) + sq;
            weights = FixedPoint.mulWadDown(weights, lambda) + WAD;
            plain += sq;
        }
        vol = FixedPointMathLib.sqrtWad(FixedPointMathLib.divWad(weighted, weights));
        longVol = FixedPointMathLib.sqrtWad(plain / n);
    }

    /// @notice How far an honest committed range may lie from `rangeApprox` (either side).
    function toleranceOf(uint256 range) internal pure returns (uint256) {
        return FixedPoint.mulWadDown(range, TOLERANCE_PER_RANGE) + TOLERANCE_WEI;
    }
}
