// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {FixedPointMathLib} from "solady/utils/FixedPointMathLib.sol";

import {WAD} from "./FixedPoint.sol";
import {NormalCdf} from "./NormalCdf.sol";

/// @title Black76
/// @notice Black-76 premium per unit on a forward, in WAD fixed point: the formula of
/// risk_engine/pricing.py:black76 (docs/margin-method.md §2), for on-chain recomputation
/// (docs/margin-method.md §10).
/// @dev `C = df (F N(d1) - K N(d2))`, `P = df (K N(-d2) - F N(-d1))`, `df = exp(-r T)`,
/// `d1 = (ln(F/K) + s^2/2) / s`, `d2 = d1 - s`, `s = sigma sqrt(T)`; at `T = 0` (or `sigma = 0`)
/// the undiscounted intrinsic value; a negative rounding residue is clamped to 0 as the engine
/// does. `exp`/`ln`/`sqrt` are Solady's `FixedPointMathLib` (`expWad`, `lnWad`, `sqrtWad`), `N` is
/// NormalCdf (Hart/West, |error| < 1e-15). Not directed: the result is within the tolerance of
/// docs/margin-method.md §10 of the engine's value; callers compare with that tolerance.
/// Units: prices in USD WAD, `sigma` annualised WAD, `T` in years WAD, `r` continuously
/// compounded WAD (the engine validates |r| < 1).
library Black76 {
    /// @notice Premium per unit (USD WAD) of a call (`isCall`) or put.
    /// @param forward Forward price, > 0.
    /// @param strike Strike, > 0.
    /// @param tenor Years to expiry (0 = expired: intrinsic value).
    /// @param sigma Annualised vol.
    /// @param rate Continuously compounded discount rate.
    function premiumApprox(uint256 forward, uint256 strike, uint256 tenor, uint256 sigma, int256 rate, bool isCall)
        internal
        pure
        returns (uint256)
    {
        if (tenor == 0 || sigma == 0) return intrinsic(forward, strike, isCall);
        uint256 sd = FixedPointMathLib.mulWad(sigma, FixedPointMathLib.sqrtWad(tenor));
        return FixedPointMathLib.mulWad(discountApprox(rate, tenor), undiscountedApprox(forward, strike, sd, isCall));
    }

    /// @notice `exp(-r T)` (WAD).
    function discountApprox(int256 rate, uint256 tenor) internal pure returns (uint256) {
        // tenor is at most a few years in WAD (< 2^255), |rate| < 1: the product cannot overflow.
        // forge-lint: disable-next-line(unsafe-typecast)
        int256 e = FixedPointMathLib.expWad(-FixedPointMathLib.sMulWad(rate, int256(tenor)));
        // forge-lint: disable-next-line(unsafe-typecast)
        return uint256(e); // expWad is >= 0
    }

    /// @notice `F N(d1) - K N(d2)` (call) or `K N(-d2) - F N(-d1)` (put), clamped at 0, for a total
    /// standard deviation `sd = sigma sqrt(T) > 0` (WAD). What a scenario with a fixed tenor and
    /// discount factor recomputes per price.
    function undiscountedApprox(uint256 forward, uint256 strike, uint256 sd, bool isCall)
        internal
        pure
        returns (uint256)
    {
        if (sd == 0) return intrinsic(forward, strike, isCall);
        // forge-lint: disable-next-line(unsafe-typecast)
        int256 logMoneyness = FixedPointMathLib.lnWad(int256(FixedPointMathLib.divWad(forward, strike)));
        // forge-lint: disable-next-line(unsafe-typecast)
        int256 s = int256(sd);
        int256 d1 = FixedPointMathLib.sDivWad(logMoneyness + FixedPointMathLib.sMulWad(s, s) / 2, s);
        int256 d2 = d1 - s;
        uint256 a;
        uint256 b;
        if (isCall) {
            a = FixedPointMathLib.mulWad(forward, NormalCdf.cdfApprox(d1));
            b = FixedPointMathLib.mulWad(strike, NormalCdf.cdfApprox(d2));
        } else {
            a = FixedPointMathLib.mulWad(strike, NormalCdf.cdfApprox(-d2));
            b = FixedPointMathLib.mulWad(forward, NormalCdf.cdfApprox(-d1));
        }
        return a > b ? a - b : 0;
    }

    /// @notice `max(F - K, 0)` (call) or `max(K - F, 0)` (put): exact.
    function intrinsic(uint256 forward, uint256 strike, bool isCall) internal pure returns (uint256) {
        if (isCall) return forward > strike ? forward - strike : 0;
        return strike > forward ? strike - forward : 0;
    }
}
