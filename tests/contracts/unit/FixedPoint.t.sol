// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Test} from "forge-std/Test.sol";
import {FixedPoint, WAD} from "../../../contracts/libraries/FixedPoint.sol";

/// @dev External wrappers so that reverts of the internal library can be expected.
contract FixedPointHarness {
    function abs(int256 x) external pure returns (uint256) {
        return FixedPoint.abs(x);
    }

    function toInt(uint256 x) external pure returns (int256) {
        return FixedPoint.toInt(x);
    }

    function mulWadFloor(int256 x, int256 y) external pure returns (int256) {
        return FixedPoint.mulWadFloor(x, y);
    }
}

/// @notice FixedPoint: every function rounds the way its name says.
contract FixedPointTest is Test {
    uint256 internal constant LIM = 2 ** 100; // x*y fits easily in 256 bits
    FixedPointHarness internal h = new FixedPointHarness();

    function testFuzz_mulWadDown_roundsDown(uint256 x, uint256 y) public pure {
        x = bound(x, 0, LIM);
        y = bound(y, 0, LIM);
        uint256 r = FixedPoint.mulWadDown(x, y);
        assertLe(r * WAD, x * y);
        assertGt((r + 1) * WAD, x * y);
    }

    function testFuzz_mulWadUp_roundsUp(uint256 x, uint256 y) public pure {
        x = bound(x, 0, LIM);
        y = bound(y, 0, LIM);
        uint256 r = FixedPoint.mulWadUp(x, y);
        assertGe(r * WAD, x * y);
        if (r > 0) assertLt((r - 1) * WAD, x * y);
        uint256 d = FixedPoint.mulWadDown(x, y);
        assertEq(r - d, (x * y) % WAD == 0 ? 0 : 1);
    }

    function testFuzz_mulDiv_roundsByName(uint256 x, uint256 y, uint256 d) public pure {
        x = bound(x, 0, LIM);
        y = bound(y, 0, LIM);
        d = bound(d, 1, LIM);
        uint256 down = FixedPoint.mulDivDown(x, y, d);
        uint256 up = FixedPoint.mulDivUp(x, y, d);
        assertLe(down * d, x * y);
        assertGe(up * d, x * y);
        assertLe(up - down, 1);
    }

    function testFuzz_mulWadFloor_roundsTowardMinusInfinity(int256 x, int256 y) public pure {
        x = bound(x, -int256(LIM), int256(LIM));
        y = bound(y, -int256(LIM), int256(LIM));
        int256 r = FixedPoint.mulWadFloor(x, y);
        assertLe(r * int256(WAD), x * y);
        assertGt((r + 1) * int256(WAD), x * y);
    }

    function testFuzz_mulWadCeil_roundsTowardPlusInfinity(int256 x, int256 y) public pure {
        x = bound(x, -int256(LIM), int256(LIM));
        y = bound(y, -int256(LIM), int256(LIM));
        int256 r = FixedPoint.mulWadCeil(x, y);
        assertGe(r * int256(WAD), x * y);
        assertLt((r - 1) * int256(WAD), x * y);
        int256 f = FixedPoint.mulWadFloor(x, y);
        assertEq(r - f, (x * y) % int256(WAD) == 0 ? int256(0) : int256(1));
    }

    function test_mulWadFloor_negativeHalves() public pure {
        assertEq(FixedPoint.mulWadFloor(-3, 0.5e18), -2);
        assertEq(FixedPoint.mulWadCeil(-3, 0.5e18), -1);
        assertEq(FixedPoint.mulWadFloor(3, 0.5e18), 1);
        assertEq(FixedPoint.mulWadCeil(3, 0.5e18), 2);
        assertEq(FixedPoint.mulWadFloor(-3, -0.5e18), 1);
        assertEq(FixedPoint.mulWadCeil(3, -0.5e18), -1);
    }

    function test_abs_revertsWhenMinInt() public {
        assertEq(h.abs(-5), 5);
        vm.expectRevert();
        h.abs(type(int256).min);
    }

    function test_toInt_revertsAboveMaxInt() public {
        assertEq(h.toInt(uint256(type(int256).max)), type(int256).max);
        vm.expectRevert();
        h.toInt(uint256(type(int256).max) + 1);
    }

    function test_mulWadFloor_revertsWhenResultOverflows() public {
        vm.expectRevert();
        h.mulWadFloor(type(int256).max, 2e18);
    }

    function testFuzz_positivePart_andMinMax(int256 x, uint256 a, uint256 b) public pure {
        uint256 p = FixedPoint.positivePart(x);
        if (x > 0) assertEq(p, uint256(x));
        else assertEq(p, 0);
        assertEq(FixedPoint.min(a, b), a < b ? a : b);
        assertEq(FixedPoint.max(x, 0), x > 0 ? x : int256(0));
    }
}
