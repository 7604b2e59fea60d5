// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {FixedPoint, WAD} from "./FixedPoint.sol";
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
