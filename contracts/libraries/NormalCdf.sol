// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {FixedPointMathLib} from "solady/utils/FixedPointMathLib.sol";

import {WAD} from "./FixedPoint.sol";

/// @title NormalCdf
/// @notice The standard normal CDF `N(x)` in WAD (1e18) fixed point, for the on-chain Black-76
/// (docs/margin-method.md §10).
/// @dev Hart (1968) algorithm 5666 as published by G. West, "Better approximations to cumulative
/// normal functions" (Wilmott, 2005), the double-precision algorithm: for `a = |x| < 7.0710678`,
/// `N(-a) = exp(-a^2/2) P(a) / Q(a)` with a degree-6 numerator and a degree-7 denominator; beyond,
/// `N(-a) = exp(-a^2/2) / (sqrt(2 pi) (a + 1/(a + 2/(a + 3/(a + 4/(a + 0.65))))))`; `N(x) = 1 - N(-x)`.
/// Error bound: `|N_hart(x) - N(x)| < 1e-15` absolute on the whole real line (the published
/// coefficients carry 15 digits; measured at <= 2.3e-16 against `scipy.special.ndtr` on a 1.2M-point
/// grid of [0, 12]). In WAD each Horner step and the `exp` add at most a few 1e-18, so the result is
/// within `1e-15 + 1e-17` of `N(x)`. Not directed: callers compare with a tolerance, never with
/// equality. `N(-a)` underflows to 0 in WAD from `a ~ 8.8` (`N(-8.8) ~ 7e-19`).
library NormalCdf {
    // Numerator P(a) = sum P_k a^k (WAD).
    uint256 internal constant P0 = 220_206867912376000000;
    uint256 internal constant P1 = 221_213596169931000000;
    uint256 internal constant P2 = 112_079291497871000000;
    uint256 internal constant P3 = 33_912866078383000000;
    uint256 internal constant P4 = 6_373962203531650000;
    uint256 internal constant P5 = 700383064443688000;
    uint256 internal constant P6 = 35262496599891100;
    // Denominator Q(a) = sum Q_k a^k (WAD).
    uint256 internal constant Q0 = 440_413735824752000000;
    uint256 internal constant Q1 = 793_826512519948000000;
    uint256 internal constant Q2 = 637_333633378831000000;
    uint256 internal constant Q3 = 296_564248779674000000;
    uint256 internal constant Q4 = 86_780732202946100000;
    uint256 internal constant Q5 = 16_064177579207000000;
    uint256 internal constant Q6 = 1_755667163182640000;
    uint256 internal constant Q7 = 88388347648318400;
    /// @dev Where the rational form hands over to the continued fraction: 10 / sqrt(2).
    uint256 internal constant SPLIT = 7_071067811865470000;
    /// @dev Beyond this `N(-a) = 0` (Hart's own cut; far below WAD resolution already).
    uint256 internal constant CUTOFF = 37e18;
    /// @dev sqrt(2 pi), as in West's listing.
    uint256 internal constant SQRT_2PI = 2_506628274631000000;

    /// @notice `N(x)` (WAD in, WAD out, in [0, 1e18]), within 1e-15 + 1e-17 of the exact value.
    function cdfApprox(int256 x) internal pure returns (uint256) {
        uint256 tail = tailApprox(FixedPointMathLib.abs(x));
        return x > 0 ? WAD - tail : tail;
    }

    /// @notice `N(-a)` for `a >= 0` (WAD): the lower tail, computed without the cancellation of
    /// `1 - N(a)`, so its absolute error stays at WAD resolution deep in the tail.
    function tailApprox(uint256 a) internal pure returns (uint256) {
        if (a >= CUTOFF) return 0;
        // a < 37e18, so a * a < 1.4e39 does not overflow; exp of a non-positive argument is in [0, WAD].
        // forge-lint: disable-next-line(unsafe-typecast)
        uint256 e = uint256(FixedPointMathLib.expWad(-int256(a * a / (2 * WAD))));
        if (a < SPLIT) {
            uint256 num = P6;
            num = num * a / WAD + P5;
            num = num * a / WAD + P4;
            num = num * a / WAD + P3;
            num = num * a / WAD + P2;
            num = num * a / WAD + P1;
            num = num * a / WAD + P0;
            uint256 den = Q7;
            den = den * a / WAD + Q6;
            den = den * a / WAD + Q5;
            den = den * a / WAD + Q4;
            den = den * a / WAD + Q3;
            den = den * a / WAD + Q2;
            den = den * a / WAD + Q1;
            den = den * a / WAD + Q0;
            return FixedPointMathLib.fullMulDiv(e, num, den);
        }
        uint256 b = a + 650000000000000000;
        b = a + 4 * WAD * WAD / b;
        b = a + 3 * WAD * WAD / b;
        b = a + 2 * WAD * WAD / b;
        b = a + WAD * WAD / b;
        return FixedPointMathLib.fullMulDiv(e, WAD * WAD, b * SQRT_2PI);
    }
}
