// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Test} from "forge-std/Test.sol";

import {
    InstrumentMarket,
    ScenarioGrid,
    VolShock,
    ScenarioLoss,
    KIND_CALL,
    KIND_PERP
} from "../../../contracts/libraries/ScenarioLoss.sol";
import {ContinuousRangePad, PadLayout} from "../../../contracts/libraries/ContinuousRangePad.sol";
import {Black76Harness} from "../mocks/Black76Harness.sol";

/// @notice ContinuousRangePad on a segment whose pad is known exactly (a call expiring within the
/// horizon with its strike inside the segment: docs/margin-method.md §3, §7), a linear instrument,
/// and the guard.
contract ContinuousRangePadTest is Test {
    Black76Harness internal h;

    function setUp() public {
        h = new Black76Harness();
    }

    /// Two points, no move and +0.1 range (R = 17 %: +1.7 %), vol unchanged: one MM segment.
    function _grid() internal pure returns (ScenarioGrid memory g, VolShock memory v, PadLayout memory l) {
        g.fraction = new int256[](2);
        g.fraction[1] = 1e17;
        g.volState = new int8[](2);
        g.cover = new uint256[](2);
        g.cover[0] = 1e18;
        g.cover[1] = 1e18;
        g.range = 17e16;
        g.maxDownMove = 95e16;
        g.horizonSeconds = 86_400;
        v = VolShock(5e17, 3e17, 30e18, 3e17, 13e16, 1e18, 5e16);
        l.lo = new uint256[](1);
        l.hi = new uint256[](1);
        l.hi[0] = 1;
        l.nMm = 2;
        l.nMmIntervals = 1;
    }

    /// F = 95,000, K = 95,807.5 (+0.85 %), expiring in an hour: worth its payoff after the horizon,
    /// 0 at no move and 807.5 at +1.7 %. Slopes 0 and -95,000, chord -47,500: the tangents meet
    /// `0.017 x 47,500 / 2 = 403.75` above the chord, which is the loss at the strike exactly.
    function test_padsApprox_kinkInsideTheSegment() public view {
        (ScenarioGrid memory g, VolShock memory v, PadLayout memory l) = _grid();
        InstrumentMarket memory m =
            InstrumentMarket(KIND_CALL, 0, 95_807.5e18, 1_700_003_600, 1_700_000_000, 95_000e18, 5e17, 0, 0, 0);
        uint256[] memory pad = h.lossesAndPads(m, g, v, l);
        assertEq(pad.length, 2);
        assertEq(pad[0], 403.75e18);
        assertEq(pad[1], 403.75e18);
    }

    function test_padsApprox_linearInstrumentHasNone() public pure {
        (ScenarioGrid memory g, VolShock memory v, PadLayout memory l) = _grid();
        InstrumentMarket memory m = InstrumentMarket(KIND_PERP, 3_000e18, 0, 0, 1_700_000_000, 0, 0, 0, 0, 0);
        (uint256 mark, int256[] memory loss) = ScenarioLoss.lossesApprox(m, g, v);
        assertEq(ContinuousRangePad.padsApprox(m, g, v, l, mark, loss).length, 0);
    }

    function test_padsApprox_revertsWhenTheLayoutDoesNotFit() public {
        (ScenarioGrid memory g, VolShock memory v, PadLayout memory l) = _grid();
        l.nMmIntervals = 2;
        InstrumentMarket memory m =
            InstrumentMarket(KIND_CALL, 0, 95_807.5e18, 1_700_003_600, 1_700_000_000, 95_000e18, 5e17, 0, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(ContinuousRangePad.PadLayoutMismatch.selector, 1, 1, 2, 2, 2));
        h.lossesAndPads(m, g, v, l);
    }
}
