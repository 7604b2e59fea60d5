// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {FixedPoint, WAD} from "./FixedPoint.sol";
import {InstrumentLeaf} from "../interfaces/IMarginVault.sol";
import {RiskVector} from "./AccountMargin.sol";
import {ContinuousRangePad, PadLayout} from "./ContinuousRangePad.sol";
import {
    BasisShock,
    InstrumentMarket,
    ScenarioGrid,
    VolShock,
    ScenarioLoss,
    KIND_CALL,
    KIND_PUT,
    KIND_SPOT
} from "./ScenarioLoss.sol";

/// @notice The instrument's underlying in the snapshot: what its per-unit charges follow from
/// (risk_engine/market.py:MarketSnapshot, one underlying).
struct UnderlyingMarket {
    uint256 index; // the underlying's index (the snapshot's order): RiskVector.underlying
    uint256 spot; // USD WAD
    uint256 confidence; // the feed's confidence, WAD in [0, 1e18]; 1e18 when the feed gave none
}

/// @notice The per-unit charge parameters, WAD: `minimum_charge.rate`, `addons.short_option_minimum`,
/// `confidence.threshold` and `confidence.rate` (risk_engine/params.py).
struct ChargeParams {
    uint256 minimumRate;
    uint256 shortOptionMinimum;
    uint256 confidenceThreshold;
    uint256 confidenceRate;
}

/// @notice Every committed parameter an instrument's risk vector follows from. `grid.range` is the
/// instrument's underlying's scan range R_u (the caller sets it per underlying).
struct VectorParams {
    ScenarioGrid grid;
    VolShock vol;
    BasisShock basis;
    PadLayout layout;
    ChargeParams charges;
}

/// @title InstrumentVector
/// @notice An instrument's whole risk vector (AccountMargin's RiskVector: its row of
/// risk_engine/risk_arrays.py:build_risk_arrays, docs/margin-method.md §4) recomputed from the
/// committed market inputs and parameters, so that a dispute of an INSTRUMENT vector compares
/// one whole vector (docs/margin-method.md §10). The mark, losses, pads, basis losses and delta
/// notional come from ScenarioLoss and ContinuousRangePad; the per-unit charges are here, as
/// risk_engine/addons.py and build_risk_arrays compute them.
/// @dev Not directed: every field but `underlying` (exact) is within `toleranceOf(m)` of the
/// engine's float64 value (docs/margin-method.md §10). The charges are products of WAD inputs,
/// each rounded down, so they lie within 2 wei (+ 1 wei per USD of spot) of the exact product:
/// far inside the tolerance.
library InstrumentVector {
    /// @dev Declared here, not in Errors (the vault's ABI), until the vault calls this library.
    error SpotPriceMismatch(uint256 price, uint256 spot);

    /// @dev docs/margin-method.md §10: `|chain - engine| <= 1e-12 x scale + 1e-14 USD` per value.
    uint256 internal constant TOLERANCE_PER_SCALE = 1e6; // 1e-12, WAD
    uint256 internal constant TOLERANCE_WEI = 1e4; // 1e-14 USD
    /// @dev A leaf's per-unit loss sums up to 5 vector fields (a scan column's loss and pad, a basis
    /// loss, the minimum and the short-option charge) and the concentration slope: 8 tolerances.
    uint256 internal constant LEAF_LOSS_TOLERANCES = 8;
    /// @dev risk_engine/leaves.py:pad_loss: `loss x (1 + LOSS_PAD_REL) + LOSS_PAD_SPOT x spot`.
    uint256 internal constant LOSS_PAD_REL = 1e9; // 1e-9, WAD
    uint256 internal constant LOSS_PAD_SPOT = 1e6; // 1e-12, WAD

    /// @dev `differs`'s answer: the first field (in RiskVector order) beyond the tolerance; then
    /// the INSTRUMENT leaf's own numbers (`leafDiffers`).
    uint8 internal constant FIELD_NONE = 0;
    uint8 internal constant FIELD_UNDERLYING = 1;
    uint8 internal constant FIELD_MARK = 2;
    uint8 internal constant FIELD_LOSS = 3;
    uint8 internal constant FIELD_PAD = 4;
    uint8 internal constant FIELD_BASIS_UP = 5;
    uint8 internal constant FIELD_BASIS_DOWN = 6;
    uint8 internal constant FIELD_DELTA = 7;
    uint8 internal constant FIELD_MINIMUM_CHARGE = 8;
    uint8 internal constant FIELD_SHORT_OPTION_CHARGE = 9;
    uint8 internal constant FIELD_NOTIONAL = 10;
    uint8 internal constant FIELD_LEAF_MARK = 11;
    uint8 internal constant FIELD_LEAF_LOSS_LONG = 12;
    uint8 internal constant FIELD_LEAF_LOSS_SHORT = 13;
    /// @dev The committed market has no entry for the instrument's underlying, or no slice for the
    /// option's expiry: its leaf follows from nothing.
    uint8 internal constant FIELD_NOT_IN_MARKET = 14;
    /// @dev The leaf's funding index is not the one its epoch's header posts for the perp (or not 0
    /// for an option): the pending funding of every holder's engine cash follows from it.
    uint8 internal constant FIELD_FUNDING_INDEX = 15;

    /// @notice The instrument's risk vector, field by field as build_risk_arrays writes its row:
    /// - `underlying`: `u.index`, exact;
    /// - `mark`, `loss` (the 69 template losses x cover): ScenarioLoss.lossesApprox;
    /// - `pad`: an option's continuous-range pad of every scan column (ContinuousRangePad.padsApprox,
    ///   possibly all zero); empty for a perp or spot, whose engine row is zeros;
    /// - `basisUp`, `basisDown`, `delta`: ScenarioLoss.basisDeltaApprox;
    /// - `minimumCharge`, `shortOptionCharge`: minimumChargeApprox, shortOptionChargeApprox;
    /// - `notional`: the underlying's spot, exact (risk_arrays' `unit_notional`).
    /// Each within `toleranceOf(m)` of the engine's value.
    /// @dev Warning: the caller must check `m`, `u` and `p` against the epoch's commitments (and set
    /// `p.grid.range` to the underlying's scan range); this library trusts them.
    function riskVectorApprox(InstrumentMarket memory m, UnderlyingMarket memory u, VectorParams memory p)
        internal
        pure
        returns (RiskVector memory v)
    {
        // A token's column is priced at its underlying's spot (docs/margin-method.md §1): two
        // different numbers would give a vector that no engine run produces.
        if (m.kind == KIND_SPOT && m.price != u.spot) revert SpotPriceMismatch(m.price, u.spot);
        v.underlying = u.index;
        (v.mark, v.loss) = ScenarioLoss.lossesApprox(m, p.grid, p.vol);
        v.pad = ContinuousRangePad.padsApprox(m, p.grid, p.vol, p.layout, v.mark, v.loss);
        (v.basisUp, v.basisDown, v.delta) = ScenarioLoss.basisDeltaApprox(m, p.basis, p.vol.floor);
        v.minimumCharge = minimumChargeApprox(u.spot, u.confidence, p.charges);
        v.shortOptionCharge = shortOptionChargeApprox(m.kind, u.spot, p.charges);
        v.notional = u.spot;
    }

    /// @notice The minimum charge per unit of `|size|` (USD WAD): `minimumRate x spot` plus the
    /// confidence add-on (confidenceChargeApprox), as build_risk_arrays' `minimum_charge`.
    /// @dev Each product rounded down (FixedPoint.mulWadDown).
    function minimumChargeApprox(uint256 spot, uint256 confidence, ChargeParams memory c)
        internal
        pure
        returns (uint256)
    {
        return FixedPoint.mulWadDown(c.minimumRate, spot) + confidenceChargeApprox(spot, confidence, c);
    }

    /// @notice The confidence add-on per unit of `|size|` (USD WAD): `confidenceRate x (1 - confidence)
    /// x spot` when `confidence < confidenceThreshold` (strictly), else 0
    /// (risk_engine/addons.py:confidence_rate times the spot, in the engine's order).
    /// @dev A confidence above 1 counts as 1, as the engine clips it (its validation refuses one).
    /// Each product rounded down.
    function confidenceChargeApprox(uint256 spot, uint256 confidence, ChargeParams memory c)
        internal
        pure
        returns (uint256)
    {
        uint256 conf = FixedPoint.min(confidence, WAD);
        if (conf >= c.confidenceThreshold) return 0;
        return FixedPoint.mulWadDown(FixedPoint.mulWadDown(c.confidenceRate, WAD - conf), spot);
    }

    /// @notice The short option minimum per unit short (USD WAD): `shortOptionMinimum x spot` for a
    /// call or put, 0 for a perp or spot (build_risk_arrays' `short_option_charge`).
    /// @dev Rounded down.
    function shortOptionChargeApprox(uint8 kind, uint256 spot, ChargeParams memory c) internal pure returns (uint256) {
        if (kind != KIND_CALL && kind != KIND_PUT) return 0;
        return FixedPoint.mulWadDown(c.shortOptionMinimum, spot);
    }

    /// @notice The first field of `got` beyond `tol` of `want` (either side), FIELD_NONE when every
    /// one is within it; `underlying` and the array lengths must be equal.
    function differs(RiskVector memory want, RiskVector memory got, uint256 tol) internal pure returns (uint8) {
        if (want.underlying != got.underlying) return FIELD_UNDERLYING;
        if (_far(FixedPoint.toInt(want.mark), FixedPoint.toInt(got.mark), tol)) return FIELD_MARK;
        if (want.loss.length != got.loss.length) return FIELD_LOSS;
        for (uint256 j; j < want.loss.length; ++j) {
            if (_far(want.loss[j], got.loss[j], tol)) return FIELD_LOSS;
        }
        // a linear instrument's pad is empty on chain and zeros in the engine's row: both none
        if (want.pad.length != got.pad.length && !(_zeros(want.pad) && _zeros(got.pad))) return FIELD_PAD;
        for (uint256 j; j < want.pad.length && j < got.pad.length; ++j) {
            if (_far(FixedPoint.toInt(want.pad[j]), FixedPoint.toInt(got.pad[j]), tol)) return FIELD_PAD;
        }
        if (_far(want.basisUp, got.basisUp, tol)) return FIELD_BASIS_UP;
        if (_far(want.basisDown, got.basisDown, tol)) return FIELD_BASIS_DOWN;
        if (_far(want.delta, got.delta, tol)) return FIELD_DELTA;
        if (_far(FixedPoint.toInt(want.minimumCharge), FixedPoint.toInt(got.minimumCharge), tol)) {
            return FIELD_MINIMUM_CHARGE;
        }
        if (_far(FixedPoint.toInt(want.shortOptionCharge), FixedPoint.toInt(got.shortOptionCharge), tol)) {
            return FIELD_SHORT_OPTION_CHARGE;
        }
        if (_far(FixedPoint.toInt(want.notional), FixedPoint.toInt(got.notional), tol)) return FIELD_NOTIONAL;
        return FIELD_NONE;
    }

    /// @notice The INSTRUMENT leaf's per-unit losses of a long and a short unit that follow from
    /// vector `v` (risk_engine/risk_arrays.py, the standalone IM of +-1 unit, then pad_loss):
    /// `long = max(max_c(loss_c + pad_c), 0) + max(basisUp, basisDown, 0) + minimum`,
    /// `short = max(max_c(-loss_c), 0) + max(-basisUp, -basisDown, 0) + shortOption + minimum`, each
    /// plus the concentration slope `rate x |delta|` and padded; `c` over the scan columns, the
    /// copies `imCopies` after the template's.
    function leafLosses(RiskVector memory v, uint256[] memory imCopies, uint256 concentrationRate)
        internal
        pure
        returns (uint256 long, uint256 short)
    {
        int256 worstLong;
        int256 worstShort;
        uint256 nT = v.loss.length;
        for (uint256 c; c < nT + imCopies.length; ++c) {
            int256 loss = c < nT ? v.loss[c] : v.loss[imCopies[c - nT]];
            int256 padded = c < v.pad.length ? loss + FixedPoint.toInt(v.pad[c]) : loss;
            if (padded > worstLong) worstLong = padded;
            if (-loss > worstShort) worstShort = -loss;
        }
        int256 basisLong = FixedPoint.max(FixedPoint.max(v.basisUp, v.basisDown), 0);
        int256 basisShort = FixedPoint.max(FixedPoint.max(-v.basisUp, -v.basisDown), 0);
        uint256 slope = FixedPoint.mulWadDown(concentrationRate, FixedPoint.abs(v.delta));
        long = _padLoss(uint256(worstLong + basisLong) + v.minimumCharge + slope, v.notional);
        short = _padLoss(uint256(worstShort + basisShort) + v.shortOptionCharge + v.minimumCharge + slope, v.notional);
    }

    /// @notice The first of the leaf's mark and per-unit losses beyond the leaf tolerance (mark:
    /// `tol`; losses: LEAF_LOSS_TOLERANCES x `tol`) of what vector `v` gives, FIELD_NONE if none.
    function leafDiffers(
        InstrumentLeaf calldata leaf,
        RiskVector memory v,
        uint256[] memory imCopies,
        uint256 concentrationRate,
        uint256 tol
    ) internal pure returns (uint8) {
        if (_far(FixedPoint.toInt(leaf.mark), FixedPoint.toInt(v.mark), tol)) return FIELD_LEAF_MARK;
        (uint256 long, uint256 short) = leafLosses(v, imCopies, concentrationRate);
        uint256 t = LEAF_LOSS_TOLERANCES * tol;
        if (_far(FixedPoint.toInt(leaf.lossPerUnitLong), FixedPoint.toInt(long), t)) return FIELD_LEAF_LOSS_LONG;
        if (_far(FixedPoint.toInt(leaf.lossPerUnitShort), FixedPoint.toInt(short), t)) return FIELD_LEAF_LOSS_SHORT;
        return FIELD_NONE;
    }

    function _padLoss(uint256 loss, uint256 spot) private pure returns (uint256) {
        return loss + FixedPoint.mulWadDown(loss, LOSS_PAD_REL) + FixedPoint.mulWadDown(spot, LOSS_PAD_SPOT);
    }

    function _far(int256 a, int256 b, uint256 tol) private pure returns (bool) {
        return FixedPoint.abs(a - b) > tol;
    }

    function _zeros(uint256[] memory a) private pure returns (bool) {
        for (uint256 j; j < a.length; ++j) {
            if (a[j] != 0) return false;
        }
        return true;
    }

    /// @notice The price scale of the instrument's vector (USD WAD): the larger of the forward and
    /// the strike for an option (a put is worth up to K), the price for a perp or spot.
    function toleranceScale(InstrumentMarket memory m) internal pure returns (uint256) {
        uint256 s = m.kind == KIND_CALL || m.kind == KIND_PUT ? m.forward : m.price;
        return s > m.strike ? s : m.strike;
    }

    /// @notice How far each field of an honest vector may lie from the chain's (USD WAD), either side:
    /// `1e-12 x toleranceScale(m) + 1e-14 USD` (docs/margin-method.md §10).
    function toleranceOf(InstrumentMarket memory m) internal pure returns (uint256) {
        return toleranceScale(m) * TOLERANCE_PER_SCALE / WAD + TOLERANCE_WEI;
    }
}
