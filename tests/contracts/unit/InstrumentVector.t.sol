// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Test} from "forge-std/Test.sol";

import {RiskVector} from "../../../contracts/libraries/AccountMargin.sol";
import {PadLayout} from "../../../contracts/libraries/ContinuousRangePad.sol";
import {
    ChargeParams,
    InstrumentVector,
    UnderlyingMarket,
    VectorParams
} from "../../../contracts/libraries/InstrumentVector.sol";
import {
    BasisShock,
    InstrumentMarket,
    ScenarioGrid,
    VolShock,
    KIND_CALL,
    KIND_PERP,
    KIND_PUT,
    KIND_SPOT
} from "../../../contracts/libraries/ScenarioLoss.sol";
import {Black76Harness} from "../mocks/Black76Harness.sol";

/// @notice InstrumentVector's per-unit charges on values known exactly (the default parameters:
/// minimum 0.1 %, short option minimum 0.3 %, confidence add-on 2 % x (1 - c) below 0.55), the
/// assembly of a whole vector, and its guard. Accuracy against the engine: Black76Vectors.t.sol.
contract InstrumentVectorTest is Test {
    Black76Harness internal h;

    function setUp() public {
        h = new Black76Harness();
    }

    function _charges() internal pure returns (ChargeParams memory) {
        return
            ChargeParams({
                minimumRate: 1e15, shortOptionMinimum: 3e15, confidenceThreshold: 55e16, confidenceRate: 2e16
            });
    }

    /// Two points, no move and +0.1 range, vol unchanged: one MM segment (as ContinuousRangePad.t.sol).
    function _params() internal pure returns (VectorParams memory p) {
        ScenarioGrid memory g;
        g.fraction = new int256[](2);
        g.fraction[1] = 1e17;
        g.volState = new int8[](2);
        g.cover = new uint256[](2);
        g.cover[0] = 1e18;
        g.cover[1] = 1e18;
        g.range = 17e16;
        g.maxDownMove = 95e16;
        g.horizonSeconds = 86_400;
        PadLayout memory l;
        l.lo = new uint256[](1);
        l.hi = new uint256[](1);
        l.hi[0] = 1;
        l.nMm = 2;
        l.nMmIntervals = 1;
        p = VectorParams({
            grid: g,
            vol: VolShock(5e17, 3e17, 30e18, 3e17, 13e16, 1e18, 5e16),
            basis: BasisShock(1e16, 45e15),
            layout: l,
            charges: _charges()
        });
    }

    function test_minimumChargeApprox_fullConfidenceIsTheRate() public pure {
        assertEq(InstrumentVector.minimumChargeApprox(60_000e18, 1e18, _charges()), 60e18);
        assertEq(InstrumentVector.confidenceChargeApprox(60_000e18, 1e18, _charges()), 0);
    }

    /// 2 % x (1 - 0.3) x 60,000 = 840 USD on top of the 60 USD minimum.
    function test_minimumChargeApprox_addsTheConfidenceAddOnBelowTheThreshold() public pure {
        assertEq(InstrumentVector.confidenceChargeApprox(60_000e18, 3e17, _charges()), 840e18);
        assertEq(InstrumentVector.minimumChargeApprox(60_000e18, 3e17, _charges()), 900e18);
        assertEq(InstrumentVector.minimumChargeApprox(60_000e18, 0, _charges()), 1_260e18);
    }

    /// The engine's test is strict (`confidence < threshold`): at the threshold, no add-on; one wei
    /// below it, the add-on at 45 %.
    function test_confidenceChargeApprox_zeroAtTheThreshold() public pure {
        assertEq(InstrumentVector.confidenceChargeApprox(60_000e18, 55e16, _charges()), 0);
        assertGt(InstrumentVector.confidenceChargeApprox(60_000e18, 55e16 - 1, _charges()), 539e18);
    }

    /// The engine clips the confidence to [0, 1]: above 1 counts as 1, whatever the threshold.
    function test_confidenceChargeApprox_clipsAboveOne() public pure {
        ChargeParams memory c = _charges();
        c.confidenceThreshold = 1e18;
        assertEq(InstrumentVector.confidenceChargeApprox(60_000e18, 2e18, c), 0);
        assertEq(InstrumentVector.confidenceChargeApprox(60_000e18, 5e17, c), 600e18);
    }

    function test_shortOptionChargeApprox_optionsOnly() public pure {
        assertEq(InstrumentVector.shortOptionChargeApprox(KIND_CALL, 60_000e18, _charges()), 180e18);
        assertEq(InstrumentVector.shortOptionChargeApprox(KIND_PUT, 60_000e18, _charges()), 180e18);
        assertEq(InstrumentVector.shortOptionChargeApprox(KIND_PERP, 60_000e18, _charges()), 0);
        assertEq(InstrumentVector.shortOptionChargeApprox(KIND_SPOT, 60_000e18, _charges()), 0);
    }

    /// A call an hour from expiry (valued at its payoff after the horizon) with its strike inside
    /// the one segment: the vector is the pieces' (ContinuousRangePad.t.sol has the pad 403.75).
    function test_riskVectorApprox_optionAssemblesEveryField() public view {
        InstrumentMarket memory m =
            InstrumentMarket(KIND_CALL, 0, 95_807.5e18, 1_700_003_600, 1_700_000_000, 95_000e18, 5e17, 0, 0, 0);
        RiskVector memory v = h.riskVector(m, UnderlyingMarket(2, 94_000e18, 3e17), _params());
        (uint256 mark, int256[] memory loss) = h.losses(m, _params().grid, _params().vol);
        (int256 up, int256 down, int256 delta) = h.basisDelta(m, BasisShock(1e16, 45e15), 5e16);
        assertEq(v.underlying, 2);
        assertEq(v.mark, mark);
        assertEq(v.loss, loss);
        assertEq(v.pad.length, 2);
        assertEq(v.pad[1], 403.75e18);
        assertEq(v.basisUp, up);
        assertEq(v.basisDown, down);
        assertEq(v.delta, delta);
        assertEq(v.minimumCharge, 94e18 + 1_316e18); // 0.1 % + 2 % x 0.7 of 94,000
        assertEq(v.shortOptionCharge, 282e18);
        assertEq(v.notional, 94_000e18);
    }

    function test_riskVectorApprox_perpHasNoPadAndNoShortCharge() public view {
        InstrumentMarket memory m = InstrumentMarket(KIND_PERP, 3_010e18, 0, 0, 1_700_000_000, 0, 0, 0, 0, 0);
        RiskVector memory v = h.riskVector(m, UnderlyingMarket(1, 3_000e18, 1e18), _params());
        assertEq(v.underlying, 1);
        assertEq(v.mark, 3_010e18);
        assertEq(v.pad.length, 0);
        assertEq(v.basisUp, -30.1e18);
        assertEq(v.basisDown, 30.1e18);
        assertEq(v.delta, 3_010e18);
        assertEq(v.minimumCharge, 3e18);
        assertEq(v.shortOptionCharge, 0);
        assertEq(v.notional, 3_000e18);
    }

    function test_riskVectorApprox_revertsWhenASpotColumnIsNotAtItsSpot() public {
        InstrumentMarket memory m = InstrumentMarket(KIND_SPOT, 3_010e18, 0, 0, 1_700_000_000, 0, 0, 0, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(InstrumentVector.SpotPriceMismatch.selector, 3_010e18, 3_000e18));
        h.riskVector(m, UnderlyingMarket(1, 3_000e18, 1e18), _params());
        m.price = 3_000e18;
        RiskVector memory v = h.riskVector(m, UnderlyingMarket(1, 3_000e18, 1e18), _params());
        assertEq(v.mark, 3_000e18);
        assertEq(v.delta, 3_000e18);
    }

    /// 1e-12 of the larger of forward and strike (an option) or of the price, plus 1e-14 USD.
    function test_toleranceOf_followsTheScale() public pure {
        InstrumentMarket memory m =
            InstrumentMarket(KIND_PUT, 0, 120_000e18, 1_700_086_400, 1_700_000_000, 100_000e18, 5e17, 0, 0, 0);
        assertEq(InstrumentVector.toleranceScale(m), 120_000e18);
        assertEq(InstrumentVector.toleranceOf(m), 120_000e6 + 1e4);
        m.kind = KIND_PERP;
        m.price = 3_000e18;
        m.strike = 0;
        assertEq(InstrumentVector.toleranceOf(m), 3_000e6 + 1e4);
    }
}
