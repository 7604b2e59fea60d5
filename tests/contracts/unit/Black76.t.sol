// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Test} from "forge-std/Test.sol";

import {Errors} from "../../../contracts/interfaces/Errors.sol";
import {Black76} from "../../../contracts/libraries/Black76.sol";
import {NormalCdf} from "../../../contracts/libraries/NormalCdf.sol";
import {
    BasisShock,
    InstrumentMarket,
    ScenarioGrid,
    VolShock,
    ScenarioLoss,
    KIND_PERP,
    KIND_CALL,
    KIND_PUT,
    KIND_SPOT
} from "../../../contracts/libraries/ScenarioLoss.sol";
import {Black76Harness} from "../mocks/Black76Harness.sol";

/// @notice Properties of the on-chain Black-76 (docs/margin-method.md §10): known values of N,
/// bounds, put-call parity and monotonicity within the stated tolerance, and the scenario loss
/// vector's guards. Accuracy against the engine: Black76Vectors.t.sol.
contract Black76Test is Test {
    uint256 internal constant WAD = 1e18;
    Black76Harness internal h;

    function setUp() public {
        h = new Black76Harness();
    }

    /// @dev The tolerance of docs/margin-method.md §10: 1e-12 of the price scale, plus 1e-14 USD.
    function _tol(uint256 forward, uint256 strike) internal pure returns (uint256) {
        return (forward > strike ? forward : strike) / 1e6 + 1e4;
    }

    /// @dev Inputs of a live option: forward 0.001 to 1e6 USD, K/F 0.05 to 20, 1 hour to 5 years,
    /// vol 1 % to 500 %, rate -10 % to +20 %.
    function _inputs(uint256 f, uint256 m, uint256 t, uint256 v, int256 r)
        internal
        pure
        returns (uint256 forward, uint256 strike, uint256 tenor, uint256 sigma, int256 rate)
    {
        forward = bound(f, 1e15, 1e24);
        strike = forward * bound(m, 5e16, 20e18) / WAD;
        tenor = bound(t, WAD / 8760, 5 * WAD);
        sigma = bound(v, 1e16, 5e18);
        rate = bound(r, -1e17, 2e17);
    }

    /* NORMAL CDF */

    function test_cdfApprox_knownValues() public pure {
        // scipy.special.ndtr (a float64: +-1e-16); Hart/West is within 1e-15 = 1,000 wei
        assertEq(NormalCdf.cdfApprox(0), 5e17);
        assertApproxEqAbs(NormalCdf.cdfApprox(1e18), 841344746068542949, 1.2e3);
        assertApproxEqAbs(NormalCdf.cdfApprox(-1e18), 158655253931457051, 1.2e3);
        assertApproxEqAbs(NormalCdf.cdfApprox(1.96e18), 975002104851779456, 1.2e3);
        assertApproxEqAbs(NormalCdf.cdfApprox(-3e18), 1349898031630093, 1.2e3);
        assertApproxEqAbs(NormalCdf.cdfApprox(-5e18), 286651571879, 1.2e3);
        assertApproxEqAbs(NormalCdf.cdfApprox(-7.5e18), 31909, 1.2e3); // continued-fraction branch
        assertEq(NormalCdf.cdfApprox(-40e18), 0);
        assertEq(NormalCdf.cdfApprox(40e18), WAD);
    }

    function testFuzz_cdfApprox_symmetric(int256 x) public pure {
        x = bound(x, -40e18, 40e18);
        assertEq(NormalCdf.cdfApprox(x) + NormalCdf.cdfApprox(-x), WAD);
    }

    function testFuzz_cdfApprox_monotone(int256 x, int256 y) public pure {
        x = bound(x, -40e18, 40e18);
        y = bound(y, x, 40e18);
        // non-decreasing up to the error bound (a WAD rounding may reverse two adjacent values)
        assertLe(NormalCdf.cdfApprox(x), NormalCdf.cdfApprox(y) + 1e3);
    }

    /* BLACK-76 */

    function test_premiumApprox_atTheMoney() public pure {
        // F = K = 100, T = 1, sigma = 0.2, r = 0: C = P = 100 (2 N(0.1) - 1) = 7.965567455405798
        uint256 c = Black76.premiumApprox(100e18, 100e18, WAD, 2e17, 0, true);
        uint256 p = Black76.premiumApprox(100e18, 100e18, WAD, 2e17, 0, false);
        assertApproxEqAbs(c, 7965567455405798000, 1e6);
        assertApproxEqAbs(p, 7965567455405798000, 1e6);
    }

    function test_premiumApprox_expiredIsIntrinsic() public pure {
        assertEq(Black76.premiumApprox(110e18, 100e18, 0, 5e17, 5e16, true), 10e18);
        assertEq(Black76.premiumApprox(110e18, 100e18, 0, 5e17, 5e16, false), 0);
        assertEq(Black76.premiumApprox(90e18, 100e18, 0, 5e17, 5e16, false), 10e18);
    }

    function testFuzz_premiumApprox_bounds(uint256 f, uint256 m, uint256 t, uint256 v, int256 r) public pure {
        (uint256 forward, uint256 strike, uint256 tenor, uint256 sigma, int256 rate) = _inputs(f, m, t, v, r);
        uint256 df = Black76.discountApprox(rate, tenor);
        uint256 tol = _tol(forward, strike);
        uint256 c = Black76.premiumApprox(forward, strike, tenor, sigma, rate, true);
        uint256 p = Black76.premiumApprox(forward, strike, tenor, sigma, rate, false);
        // 0 <= C <= df F, 0 <= P <= df K, and at least the discounted intrinsic value
        assertLe(c, forward * df / WAD + tol);
        assertLe(p, strike * df / WAD + tol);
        assertGe(c + tol, Black76.intrinsic(forward, strike, true) * df / WAD);
        assertGe(p + tol, Black76.intrinsic(forward, strike, false) * df / WAD);
    }

    function testFuzz_premiumApprox_putCallParity(uint256 f, uint256 m, uint256 t, uint256 v, int256 r) public pure {
        (uint256 forward, uint256 strike, uint256 tenor, uint256 sigma, int256 rate) = _inputs(f, m, t, v, r);
        uint256 df = Black76.discountApprox(rate, tenor);
        int256 c = int256(Black76.premiumApprox(forward, strike, tenor, sigma, rate, true));
        int256 p = int256(Black76.premiumApprox(forward, strike, tenor, sigma, rate, false));
        // C - P = df (F - K)
        int256 parity = (int256(forward) - int256(strike)) * int256(df) / int256(WAD);
        assertApproxEqAbs(c - p, parity, _tol(forward, strike));
    }

    function testFuzz_premiumApprox_monotone(uint256 f, uint256 m, uint256 t, uint256 v, int256 r, uint256 bump)
        public
        pure
    {
        (uint256 forward, uint256 strike, uint256 tenor, uint256 sigma, int256 rate) = _inputs(f, m, t, v, r);
        uint256 step = bound(bump, 1e12, 5e17); // a relative bump of 1e-6 to 50 %
        uint256 tol = 2 * _tol(forward * 2, strike * 2);
        uint256 c = Black76.premiumApprox(forward, strike, tenor, sigma, rate, true);
        uint256 p = Black76.premiumApprox(forward, strike, tenor, sigma, rate, false);
        uint256 up = forward + forward * step / WAD;
        // a call rises and a put falls with the forward
        assertGe(Black76.premiumApprox(up, strike, tenor, sigma, rate, true) + tol, c);
        assertLe(Black76.premiumApprox(up, strike, tenor, sigma, rate, false), p + tol);
        // a call falls and a put rises with the strike
        uint256 kUp = strike + strike * step / WAD;
        assertLe(Black76.premiumApprox(forward, kUp, tenor, sigma, rate, true), c + tol);
        assertGe(Black76.premiumApprox(forward, kUp, tenor, sigma, rate, false) + tol, p);
        // both rise with the vol
        uint256 vUp = sigma + sigma * step / WAD;
        assertGe(Black76.premiumApprox(forward, strike, tenor, vUp, rate, true) + tol, c);
        assertGe(Black76.premiumApprox(forward, strike, tenor, vUp, rate, false) + tol, p);
    }

    /* SCENARIO LOSS VECTOR */

    function _grid() internal pure returns (ScenarioGrid memory g, VolShock memory v) {
        // moves -2, -1, 0, +1, +2 ranges, each vol state once or so; the extremes at 35 % cover
        int256[] memory fr = new int256[](5);
        int8[] memory vs = new int8[](5);
        uint256[] memory cv = new uint256[](5);
        (fr[0], vs[0], cv[0]) = (0, 0, WAD);
        (fr[1], vs[1], cv[1]) = (-1e18, -1, WAD);
        (fr[2], vs[2], cv[2]) = (1e18, 1, WAD);
        (fr[3], vs[3], cv[3]) = (-2e18, 0, 35e16);
        (fr[4], vs[4], cv[4]) = (2e18, 1, 35e16);
        g = ScenarioGrid(fr, vs, cv, 6e17, 95e16, 86_400);
        v = VolShock(5e17, 3e17, 30e18, 3e17, 13e16, 1e18, 5e16);
    }

    function _option(uint8 kind, uint64 tenorSeconds) internal pure returns (InstrumentMarket memory) {
        return InstrumentMarket(
            kind, 0, 60_000e18, 1_700_000_000 + tenorSeconds, 1_700_000_000, 61_000e18, 6e17, -1e17, 3e17, 3e16
        );
    }

    function test_lossesApprox_perpIsLinear() public pure {
        (ScenarioGrid memory g, VolShock memory v) = _grid();
        InstrumentMarket memory m = _option(KIND_PERP, 0);
        m.price = 3_000e18;
        (uint256 mark, int256[] memory loss) = ScenarioLoss.lossesApprox(m, g, v);
        assertEq(mark, 3_000e18);
        assertEq(loss[0], 0);
        assertEq(loss[1], 1_800e18); // -60 %: a long unit loses 1,800
        assertEq(loss[2], -1_800e18);
        assertEq(loss[3], 997.5e18); // -120 % floored at -95 %, at 35 % cover: 2,850 x 0.35
        assertEq(loss[4], -1_260e18); // +120 % at 35 % cover
    }

    function test_lossesApprox_optionWithinHorizonIsPayoff() public pure {
        (ScenarioGrid memory g, VolShock memory v) = _grid();
        // expires in 12 hours, inside the 1-day horizon: every scenario value is the payoff
        (uint256 mark, int256[] memory loss) = ScenarioLoss.lossesApprox(_option(KIND_CALL, 43_200), g, v);
        assertEq(loss[0], int256(mark) - 1_000e18); // F 61,000, K 60,000
        assertEq(loss[1], int256(mark)); // F 24,400: worthless
        assertEq(loss[2], int256(mark) - 37_600e18); // F 97,600
    }

    function test_lossesApprox_callAndPutLossesFollowParity() public pure {
        (ScenarioGrid memory g, VolShock memory v) = _grid();
        InstrumentMarket memory call = _option(KIND_CALL, 30 days);
        InstrumentMarket memory put = _option(KIND_PUT, 30 days);
        (uint256 mc, int256[] memory lc) = ScenarioLoss.lossesApprox(call, g, v);
        (uint256 mp, int256[] memory lp) = ScenarioLoss.lossesApprox(put, g, v);
        assertApproxEqAbs(int256(mc) - int256(mp), int256(Black76.discountApprox(3e16, 30 * WAD / 365)) * 1_000, 1e8);
        // in each unfloored scenario, (C - P)(s) = df_s (F_s - K): a long call's loss minus a
        // long put's loss is the move's forward loss, the same for both vol states
        for (uint256 s; s < 3; ++s) {
            int256 fs = int256(61_000e18) * (int256(WAD) + g.fraction[s] * 6e17 / int256(WAD)) / int256(WAD);
            int256 df = int256(Black76.discountApprox(3e16, 29 * WAD / 365));
            int256 cMinusP = (fs - 60_000e18) * df / int256(WAD);
            assertApproxEqAbs((int256(mc) - int256(mp)) - (lc[s] - lp[s]), cMinusP, 1e8);
        }
    }

    function test_lossesApprox_revertsWhenGridLengthsDiffer() public {
        (ScenarioGrid memory g, VolShock memory v) = _grid();
        g.cover = new uint256[](4);
        vm.expectRevert(abi.encodeWithSelector(ScenarioLoss.ScenarioGridMismatch.selector, 5, 5, 4));
        h.losses(_option(KIND_CALL, 30 days), g, v);
    }

    function test_lossesApprox_revertsWhenOptionExpired() public {
        (ScenarioGrid memory g, VolShock memory v) = _grid();
        InstrumentMarket memory m = _option(KIND_PUT, 0);
        vm.expectRevert(abi.encodeWithSelector(ScenarioLoss.OptionExpiredAt.selector, m.expiry, m.timestamp));
        h.losses(m, g, v);
    }

    function test_lossesApprox_revertsWhenKindUnknown() public {
        (ScenarioGrid memory g, VolShock memory v) = _grid();
        InstrumentMarket memory m = _option(4, 30 days);
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidInstrument.selector, 4, m.strike, m.expiry));
        h.losses(m, g, v);
    }

    function test_basisDeltaApprox_perpAndSpot() public pure {
        InstrumentMarket memory m = _option(KIND_PERP, 0);
        m.price = 3_000e18;
        (int256 up, int256 down, int256 delta) = ScenarioLoss.basisDeltaApprox(m, BasisShock(1e16, 45e15), 5e16);
        assertEq(up, -30e18); // the perp mark up 1 %: a long unit gains 30
        assertEq(down, 30e18);
        assertEq(delta, 3_000e18);
        m.kind = KIND_SPOT;
        (up, down, delta) = ScenarioLoss.basisDeltaApprox(m, BasisShock(1e16, 45e15), 5e16);
        assertEq(up, 0);
        assertEq(down, 0);
        assertEq(delta, 3_000e18);
    }

    /// The call's and the put's basis losses differ by the forward's shift (parity), and their
    /// delta notionals by `df F`.
    function test_basisDeltaApprox_callAndPutFollowParity() public pure {
        BasisShock memory b = BasisShock(1e16, 45e15);
        (int256 cu, int256 cd, int256 cDelta) = ScenarioLoss.basisDeltaApprox(_option(KIND_CALL, 365 days), b, 5e16);
        (int256 pu, int256 pd, int256 pDelta) = ScenarioLoss.basisDeltaApprox(_option(KIND_PUT, 365 days), b, 5e16);
        int256 df = int256(Black76.discountApprox(3e16, WAD));
        assertApproxEqAbs(cDelta - pDelta, df * 61_000, 1e9); // df x F, F = 61,000
        // b = 4.5 % at T = 1 year: the forward moves +-2,745; the call loses (C - P) change = -df 2,745
        assertApproxEqAbs(cu - pu, -df * 2_745, 1e9);
        assertApproxEqAbs(cd - pd, df * 2_745, 1e9);
        assertGt(cDelta, 0);
        assertLt(pDelta, 0);
    }

    function test_basisDeltaApprox_revertsWhenOptionExpired() public {
        InstrumentMarket memory m = _option(KIND_CALL, 0);
        vm.expectRevert(abi.encodeWithSelector(ScenarioLoss.OptionExpiredAt.selector, m.expiry, m.timestamp));
        h.basisDelta(m, BasisShock(1e16, 45e15), 5e16);
    }

    function test_basisDeltaApprox_revertsWhenKindUnknown() public {
        InstrumentMarket memory m = _option(4, 30 days);
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidInstrument.selector, 4, m.strike, m.expiry));
        h.basisDelta(m, BasisShock(1e16, 45e15), 5e16);
    }
}
