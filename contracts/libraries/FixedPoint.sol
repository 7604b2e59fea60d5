// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

/// @dev The fixed-point scale of every USD amount, price, size and fraction (docs/protocol.md §1):
/// 1e18 = 1. Defined once, here; contracts and tests import it (`import {WAD} from ...`).
uint256 constant WAD = 1e18;

/// @title FixedPoint
/// @notice WAD (1e18) fixed-point arithmetic with the rounding direction in every name:
/// `Down`/`Up` for unsigned results (toward zero / away from zero), `Floor`/`Ceil` for signed
/// results (toward -inf / toward +inf). Intermediate products are 512-bit (OZ `Math.mulDiv`),
/// so only a result that does not fit its type reverts.
library FixedPoint {
    function mulWadDown(uint256 x, uint256 y) internal pure returns (uint256) {
        return Math.mulDiv(x, y, WAD);
    }

    function mulWadUp(uint256 x, uint256 y) internal pure returns (uint256) {
        return Math.mulDiv(x, y, WAD, Math.Rounding.Ceil);
    }

    function mulDivDown(uint256 x, uint256 y, uint256 d) internal pure returns (uint256) {
        return Math.mulDiv(x, y, d);
    }

    function mulDivUp(uint256 x, uint256 y, uint256 d) internal pure returns (uint256) {
        return Math.mulDiv(x, y, d, Math.Rounding.Ceil);
    }

    /// @notice `x * y / 1e18` rounded toward -inf.
    function mulWadFloor(int256 x, int256 y) internal pure returns (int256) {
        uint256 m = abs(x);
        uint256 n = abs(y);
        // A negative product rounds away from zero to go down; a positive one toward zero.
        if ((x < 0) != (y < 0)) return -toInt(mulWadUp(m, n));
        return toInt(mulWadDown(m, n));
    }

    /// @notice `x * y / 1e18` rounded toward +inf.
    function mulWadCeil(int256 x, int256 y) internal pure returns (int256) {
        uint256 m = abs(x);
        uint256 n = abs(y);
        if ((x < 0) != (y < 0)) return -toInt(mulWadDown(m, n));
        return toInt(mulWadUp(m, n));
    }

    /// @notice |x|; reverts for type(int256).min, which has no positive counterpart in int256
    /// and would break every later `toInt`.
    function abs(int256 x) internal pure returns (uint256) {
        // Both casts follow a sign check; -x reverts (checked) for type(int256).min.
        // forge-lint: disable-next-line(unsafe-typecast)
        return x >= 0 ? uint256(x) : uint256(-x);
    }

    /// @notice uint256 -> int256, reverting above type(int256).max.
    function toInt(uint256 x) internal pure returns (int256) {
        return SafeCast.toInt256(x);
    }

    function max(int256 a, int256 b) internal pure returns (int256) {
        return a > b ? a : b;
    }

    function min(uint256 a, uint256 b) internal pure returns (uint256) {
        return a < b ? a : b;
    }

    /// @notice max(x, 0) as uint256.
    function positivePart(int256 x) internal pure returns (uint256) {
        // forge-lint: disable-next-line(unsafe-typecast)
        return x > 0 ? uint256(x) : 0; // x > 0 fits
    }
}
