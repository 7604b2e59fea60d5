// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {FixedPointMathLib} from "solady/utils/FixedPointMathLib.sol";

import {FixedPoint, WAD} from "./FixedPoint.sol";
import {NormalCdf} from "./NormalCdf.sol";
import {InstrumentMarket, ScenarioGrid, VolShock, ScenarioLoss, KIND_CALL, KIND_PUT} from "./ScenarioLoss.sol";

/// @notice The segments of the continuous scan range (risk_engine/scenarios.py:ScenarioSet): for each
/// vol state, consecutive in-range grid points `(lo[j], hi[j])` (scenario indices); the first
/// `nMmIntervals` lie inside the MM range. Scan column `nScenarios + j` is the IM-only copy of MM
/// point `imCopies[j]` (mm_boundary).
struct PadLayout {
    uint256[] lo;
    uint256[] hi;
    uint256 nMm;
    uint256 nMmIntervals;
    uint256[] imCopies;
}

/// @title ContinuousRangePad
/// @notice An option's continuous-range pad per scan column (USD WAD per unit LONG), as
/// risk_engine/risk_arrays.py:_segment_pad and _point_pad compute it (docs/margin-method.md §3):
/// per segment `[a, b]` of width `h = (fraction(b) - fraction(a)) R`, with the loss `g = mark - V`,
/// its one-sided slopes `p = -F V'_+(a)`, `q = -F V'_-(b)` and the chord `c = (g(b) - g(a)) / h`,
/// `pad = min(h p' q' / (p' + q'), max(V(a), V(b)))`, `p' = max(p - c, 0)`, `q' = max(c - q, 0)`;
/// each MM column takes the largest pad of the MM segments its point ends, every other in-range
/// column (and each IM copy) the largest of all the segments its point ends, the extremes none.
/// @dev Not directed: within the tolerance of docs/margin-method.md §10 of the engine's values. A
/// perp or spot has no pad (an empty vector).
library ContinuousRangePad {
    error PadLayoutMismatch(uint256 lo, uint256 hi, uint256 nMmIntervals, uint256 nMm, uint256 nScenarios);

    /// @param mark, loss the option's mark and template losses (ScenarioLoss.lossesApprox): the
    /// scenario values of in-range points are `mark - loss` (their cover is 1)
    function padsApprox(
        InstrumentMarket memory m,
        ScenarioGrid memory g,
        VolShock memory v,
        PadLayout memory l,
        uint256 mark,
        int256[] memory loss
    ) internal pure returns (uint256[] memory pad) {
        if (m.kind != KIND_CALL && m.kind != KIND_PUT) return pad;
        uint256 nScenarios = loss.length;
        if (l.lo.length != l.hi.length || l.nMmIntervals > l.lo.length || l.nMm > nScenarios) {
            revert PadLayoutMismatch(l.lo.length, l.hi.length, l.nMmIntervals, l.nMm, nScenarios);
        }
        uint256 tenorSeconds = m.expiry - m.timestamp; // lossesApprox has refused an expired option
        ScenarioLoss.OptionScenarioTerms memory t =
            ScenarioLoss.scenarioTermsApprox(m, g, v, ScenarioLoss.smileVolApprox(m, v.floor), tenorSeconds);
        uint256[] memory full = new uint256[](nScenarios); // largest pad of any segment a point ends
        pad = new uint256[](nScenarios + l.imCopies.length);
        for (uint256 j; j < l.lo.length; ++j) {
            uint256 segment = _segmentPad(m, g, t, l.lo[j], l.hi[j], mark, loss);
            _raise(full, l.lo[j], segment);
            _raise(full, l.hi[j], segment);
            if (j < l.nMmIntervals) {
                _raise(pad, l.lo[j], segment);
                _raise(pad, l.hi[j], segment);
            }
        }
        for (uint256 k = l.nMm; k < nScenarios; ++k) {
            pad[k] = full[k];
        }
        for (uint256 j; j < l.imCopies.length; ++j) {
            pad[nScenarios + j] = full[l.imCopies[j]];
        }
    }

    function _raise(uint256[] memory a, uint256 k, uint256 x) private pure {
        if (x > a[k]) a[k] = x;
    }

    /// @dev The most a long unit's loss can exceed the chord on segment `[a, b]` (USD WAD, >= 0).
    function _segmentPad(
        InstrumentMarket memory m,
        ScenarioGrid memory g,
        ScenarioLoss.OptionScenarioTerms memory t,
        uint256 a,
        uint256 b,
        uint256 mark,
        int256[] memory loss
    ) private pure returns (uint256) {
        int256 h = FixedPointMathLib.sMulWad(g.fraction[b] - g.fraction[a], FixedPoint.toInt(g.range));
        // slopes of g = mark - V in the move m: dg/dm = -F dV/dF_s
        int256 f = FixedPoint.toInt(m.forward);
        int256 p = -FixedPointMathLib.sMulWad(f, _deltaApprox(m, g, t, a, true));
        int256 q = -FixedPointMathLib.sMulWad(f, _deltaApprox(m, g, t, b, false));
        int256 chord = FixedPointMathLib.sDivWad(loss[b] - loss[a], h);
        uint256 pp = FixedPoint.positivePart(p - chord);
        uint256 qq = FixedPoint.positivePart(chord - q);
        uint256 tangent;
        if (pp + qq > 0) {
            tangent = FixedPointMathLib.mulDiv(FixedPointMathLib.mulWad(FixedPoint.abs(h), pp), qq, pp + qq);
        }
        // V >= 0 bounds the loss by the mark, the chord is above min(g(a), g(b))
        uint256 va = FixedPoint.positivePart(FixedPoint.toInt(mark) - loss[a]);
        uint256 vb = FixedPoint.positivePart(FixedPoint.toInt(mark) - loss[b]);
        return FixedPoint.min(tangent, va > vb ? va : vb);
    }

    /// @dev One-sided `dV/dF` at scenario `s` (right or left): `df N(d1)` (call), `df (N(d1) - 1)`
    /// (put); an option valued at its payoff has the payoff's slope, with the kink at `F_s = K` taken
    /// on the requested side (risk_engine/pricing.py:black76_delta_one_sided).
    function _deltaApprox(
        InstrumentMarket memory m,
        ScenarioGrid memory g,
        ScenarioLoss.OptionScenarioTerms memory t,
        uint256 s,
        bool right
    ) private pure returns (int256) {
        uint256 fs = ScenarioLoss.scenarioPrice(m.forward, g, s);
        bool isCall = m.kind == KIND_CALL;
        if (t.expiresInHorizon) {
            bool above = right ? fs >= m.strike : fs > m.strike;
            if (isCall) return above ? int256(WAD) : int256(0);
            return above ? int256(0) : -int256(WAD);
        }
        uint256 sd = g.volState[s] > 0 ? t.sdUp : (g.volState[s] < 0 ? t.sdDown : t.sdFlat);
        int256 sdInt = FixedPoint.toInt(sd);
        int256 lnFk = FixedPointMathLib.lnWad(FixedPoint.toInt(FixedPointMathLib.divWad(fs, m.strike)));
        int256 d1 = FixedPointMathLib.sDivWad(lnFk + FixedPointMathLib.sMulWad(sdInt, sdInt) / 2, sdInt);
        int256 n = FixedPoint.toInt(NormalCdf.cdfApprox(d1));
        if (!isCall) n -= int256(WAD);
        return FixedPointMathLib.sMulWad(FixedPoint.toInt(t.discount), n);
    }
}
