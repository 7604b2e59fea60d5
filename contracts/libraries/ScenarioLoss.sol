// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {FixedPointMathLib} from "solady/utils/FixedPointMathLib.sol";

import {Errors} from "../interfaces/Errors.sol";
import {FixedPoint, WAD} from "./FixedPoint.sol";
import {Black76} from "./Black76.sol";
import {NormalCdf} from "./NormalCdf.sol";

// Kinds as the engine numbers them: the chain's PERP = 0, CALL = 1, PUT = 2, and SPOT = 3
// (a collateral token's column, engine only: docs/margin-method.md §1).
uint8 constant KIND_PERP = 0;
uint8 constant KIND_CALL = 1;
uint8 constant KIND_PUT = 2;
uint8 constant KIND_SPOT = 3;

uint256 constant SECONDS_PER_DAY = 86_400;
// risk_engine/market.py:SECONDS_PER_YEAR (365 days).
uint256 constant SECONDS_PER_YEAR = 31_536_000;

/// @notice One instrument and the market inputs its scenario values follow from (all WAD unless
/// said otherwise): the fields of risk_engine's InstrumentTable row and MarketSnapshot slice.
struct InstrumentMarket {
    uint8 kind; // KIND_*
    uint256 price; // PERP: perp mark, SPOT: spot (USD); unused for options
    uint256 strike; // options: USD, > 0
    uint64 expiry; // options: unix seconds, > timestamp
    uint64 timestamp; // the snapshot's "now" (unix seconds)
    uint256 forward; // options: the slice forward F (USD)
    uint256 atmVol; // options: smile `sigma(k) = max(floor, atm + skew k + curvature k^2)`, k = ln(K/F)
    int256 skew;
    int256 curvature;
    int256 rate; // continuously compounded discount rate
}

/// @notice The scenario template of docs/margin-method.md §3 for the instrument's underlying.
struct ScenarioGrid {
    int256[] fraction; // price move in multiples of the scan range (WAD)
    int8[] volState; // -1 down, 0 unchanged, +1 up
    uint256[] cover; // WAD: 1e18, or extreme_cover for the extremes
    uint256 range; // the underlying's scan range R_u (fraction of price, WAD)
    uint256 maxDownMove; // a move never falls below -maxDownMove (WAD)
    uint64 horizonSeconds; // liquidation horizon h (horizon_days x 86,400)
}

/// @notice Tenor-scaled vol shocks (risk_engine/params.py:VolShockParams), WAD.
struct VolShock {
    uint256 up;
    uint256 down;
    uint256 referenceDays;
    uint256 exponentShort;
    uint256 exponentLong;
    uint256 minTenorDays;
    uint256 floor;
}

/// @notice Basis shocks (risk_engine/params.py:BasisParams), WAD: the perp mark moves `+-perp` against
/// spot, an option's forward `+-forwardPerSqrtYear sqrt(T)`.
struct BasisShock {
    uint256 perp;
    uint256 forwardPerSqrtYear;
}

/// @title ScenarioLoss
/// @notice An instrument's mark and per-unit scenario loss vector, as risk_engine/risk_arrays.py:
/// build_risk_arrays computes them: `loss[s] = (mark - V(s)) * cover(s)` (USD WAD per unit LONG,
/// positive = loss), `V(s)` the instrument re-priced with the underlying moved by
/// `m(s) = max(fraction(s) R_u, -maxDownMove)`, the smile vol shocked by `volState(s)` and the
/// time advanced by the horizon (docs/margin-method.md §3, §4). What a dispute of an INSTRUMENT
/// vector recomputes (docs/margin-method.md §10).
/// @dev Not directed: each entry is within the tolerance of docs/margin-method.md §10 of the
/// engine's float64 value. `basisDeltaApprox` gives the basis and delta columns,
/// ContinuousRangePad the pads, InstrumentVector the per-unit charges and the whole risk vector.
library ScenarioLoss {
    /// @dev Declared here, not in Errors (the vault's ABI), until the vault calls this library.
    error ScenarioGridMismatch(uint256 fractions, uint256 volStates, uint256 covers);
    error OptionExpiredAt(uint64 expiry, uint64 timestamp);

    /// @dev The three shocked total standard deviations `sigma_v sqrt(T - h)` and the scenario
    /// discount factor of one option: per instrument, not per scenario.
    struct OptionScenarioTerms {
        uint256 sdDown;
        uint256 sdFlat;
        uint256 sdUp;
        uint256 discount;
        bool expiresInHorizon;
    }

    /// @notice The instrument's mark (USD WAD per unit) and its per-unit scenario losses (one per
    /// template scenario, USD WAD, positive = loss for a long unit).
    function lossesApprox(InstrumentMarket memory m, ScenarioGrid memory g, VolShock memory v)
        internal
        pure
        returns (uint256 mark, int256[] memory loss)
    {
        uint256 n = g.fraction.length;
        // One template: every scenario has a move, a vol state and a cover.
        if (g.volState.length != n || g.cover.length != n) {
            revert ScenarioGridMismatch(n, g.volState.length, g.cover.length);
        }
        loss = new int256[](n);
        if (m.kind == KIND_PERP || m.kind == KIND_SPOT) {
            mark = m.price;
            for (uint256 s; s < n; ++s) {
                int256 value = _moved(m.price, _move(g, s));
                loss[s] = FixedPointMathLib.sMulWad(_toInt(mark) - value, _toInt(g.cover[s]));
            }
            return (mark, loss);
        }
        if (m.kind != KIND_CALL && m.kind != KIND_PUT) revert Errors.InvalidInstrument(m.kind, m.strike, m.expiry);
        // The engine refuses an expired option (validate_market): it must be settled into cash.
        if (m.expiry <= m.timestamp) revert OptionExpiredAt(m.expiry, m.timestamp);
        bool isCall = m.kind == KIND_CALL;
        uint256 tenorSeconds = m.expiry - m.timestamp;
        uint256 sigma = smileVolApprox(m, v.floor);
        mark = Black76.premiumApprox(m.forward, m.strike, tenorSeconds * WAD / SECONDS_PER_YEAR, sigma, m.rate, isCall);
        OptionScenarioTerms memory t = scenarioTermsApprox(m, g, v, sigma, tenorSeconds);
        int256 markInt = _toInt(mark);
        for (uint256 s; s < n; ++s) {
            int256 value = _toInt(_optionValue(m, g, t, s, isCall));
            loss[s] = FixedPointMathLib.sMulWad(markInt - value, _toInt(g.cover[s]));
        }
    }

    /// @notice The basis-up and basis-down losses and the delta notional per unit LONG (USD WAD), the
    /// columns `col_basis_up`, `col_basis_down` and `col_delta` of risk_engine/risk_arrays.py:
    /// build_risk_arrays (docs/margin-method.md §4): a perp's `-+perp x mark` and its mark, a spot's
    /// 0 and its price, an option's `mark - V(F (1 +- b))` with `b = forwardPerSqrtYear sqrt(T)`
    /// (re-priced at the base vol and tenor) and `dV/dF x F`.
    /// @dev Not directed, as `lossesApprox` (docs/margin-method.md §10).
    function basisDeltaApprox(InstrumentMarket memory m, BasisShock memory b, uint256 volFloor)
        internal
        pure
        returns (int256 basisUp, int256 basisDown, int256 delta)
    {
        if (m.kind == KIND_SPOT) return (0, 0, _toInt(m.price));
        if (m.kind == KIND_PERP) {
            int256 shock = _toInt(FixedPointMathLib.mulWad(m.price, b.perp));
            return (-shock, shock, _toInt(m.price));
        }
        if (m.kind != KIND_CALL && m.kind != KIND_PUT) revert Errors.InvalidInstrument(m.kind, m.strike, m.expiry);
        if (m.expiry <= m.timestamp) revert OptionExpiredAt(m.expiry, m.timestamp);
        uint256 tenor = (m.expiry - m.timestamp) * WAD / SECONDS_PER_YEAR;
        uint256 sigma = smileVolApprox(m, volFloor);
        uint256 rootT = FixedPointMathLib.sqrtWad(tenor);
        uint256 shift = FixedPointMathLib.mulWad(b.forwardPerSqrtYear, rootT);
        int256 mark = _premiumAt(m, m.forward, tenor, sigma);
        basisUp = mark - _premiumAt(m, FixedPointMathLib.mulWad(m.forward, WAD + shift), tenor, sigma);
        basisDown = mark - _premiumAt(m, FixedPointMathLib.mulWad(m.forward, WAD - shift), tenor, sigma);
        delta = _deltaNotional(m, tenor, FixedPointMathLib.mulWad(sigma, rootT));
    }

    /// @dev The option's Black-76 premium at `forward` (its base vol and tenor).
    function _premiumAt(InstrumentMarket memory m, uint256 forward, uint256 tenor, uint256 sigma)
        private
        pure
        returns (int256)
    {
        return _toInt(Black76.premiumApprox(forward, m.strike, tenor, sigma, m.rate, m.kind == KIND_CALL));
    }

    /// @dev `dV/dF x F`: `dV/dF = df N(d1)` (call) or `df (N(d1) - 1)` (put),
    /// `d1 = (ln(F/K) + sd^2/2) / sd`, `sd = sigma sqrt(T) > 0` (the vol floor is > 0).
    function _deltaNotional(InstrumentMarket memory m, uint256 tenor, uint256 sd) private pure returns (int256) {
        int256 s = _toInt(sd);
        int256 lnFk = FixedPointMathLib.lnWad(_toInt(FixedPointMathLib.divWad(m.forward, m.strike)));
        int256 d1 = FixedPointMathLib.sDivWad(lnFk + FixedPointMathLib.sMulWad(s, s) / 2, s);
        int256 n = _toInt(NormalCdf.cdfApprox(d1));
        if (m.kind == KIND_PUT) n -= _toInt(WAD);
        int256 dvdf = FixedPointMathLib.sMulWad(_toInt(Black76.discountApprox(m.rate, tenor)), n);
        return FixedPointMathLib.sMulWad(dvdf, _toInt(m.forward));
    }

    /// @notice The smile vol at the option's strike: `max(floor, atm + skew k + curvature k^2)`,
    /// `k = ln(K / F)` (risk_engine/market.py:smile_vol).
    function smileVolApprox(InstrumentMarket memory m, uint256 floor) internal pure returns (uint256) {
        int256 k = FixedPointMathLib.lnWad(_toInt(FixedPointMathLib.divWad(m.strike, m.forward)));
        int256 smile = _toInt(m.atmVol) + FixedPointMathLib.sMulWad(m.skew, k)
            + FixedPointMathLib.sMulWad(m.curvature, FixedPointMathLib.sMulWad(k, k));
        // forge-lint: disable-next-line(unsafe-typecast)
        return smile > _toInt(floor) ? uint256(smile) : floor;
    }

    /// @notice Tenor scaling of the vol shocks `(ref / max(T_days, min))^p`, `p` = exponentShort
    /// up to `ref` days, exponentLong beyond (risk_engine/scenarios.py:vol_shock_multiplier), WAD.
    function shockMultiplierApprox(uint256 tenorSeconds, VolShock memory v) internal pure returns (uint256) {
        uint256 days_ = FixedPointMathLib.max(tenorSeconds * WAD / SECONDS_PER_DAY, v.minTenorDays);
        uint256 p = days_ <= v.referenceDays ? v.exponentShort : v.exponentLong;
        int256 r = FixedPointMathLib.powWad(_toInt(FixedPointMathLib.divWad(v.referenceDays, days_)), _toInt(p));
        // forge-lint: disable-next-line(unsafe-typecast)
        return uint256(r); // exp is >= 0
    }

    /// @notice The per-option terms of every scenario: the three shocked total standard deviations
    /// `sigma_v sqrt(T - h)`, the scenario discount factor, or that the option expires within the
    /// horizon (valued at its payoff).
    function scenarioTermsApprox(
        InstrumentMarket memory m,
        ScenarioGrid memory g,
        VolShock memory v,
        uint256 sigma,
        uint256 tenorSeconds
    ) internal pure returns (OptionScenarioTerms memory t) {
        if (tenorSeconds <= g.horizonSeconds) {
            t.expiresInHorizon = true; // T - h <= 0: valued at its payoff, undiscounted
            return t;
        }
        uint256 after_ = (tenorSeconds - g.horizonSeconds) * WAD / SECONDS_PER_YEAR;
        uint256 rootT = FixedPointMathLib.sqrtWad(after_);
        uint256 mult = shockMultiplierApprox(tenorSeconds, v);
        uint256 up = FixedPointMathLib.mulWad(sigma, WAD + FixedPointMathLib.mulWad(v.up, mult));
        // sigma (1 - down mult) may go negative before the floor: signed.
        int256 downFactor = _toInt(WAD) - _toInt(FixedPointMathLib.mulWad(v.down, mult));
        int256 down = FixedPointMathLib.sMulWad(_toInt(sigma), downFactor);
        // forge-lint: disable-next-line(unsafe-typecast)
        uint256 downFloored = down > _toInt(v.floor) ? uint256(down) : v.floor;
        t.sdDown = FixedPointMathLib.mulWad(downFloored, rootT);
        t.sdFlat = FixedPointMathLib.mulWad(FixedPointMathLib.max(sigma, v.floor), rootT);
        t.sdUp = FixedPointMathLib.mulWad(FixedPointMathLib.max(up, v.floor), rootT);
        t.discount = Black76.discountApprox(m.rate, after_);
    }

    /// @dev The option's value in scenario `s` (USD WAD per unit).
    function _optionValue(
        InstrumentMarket memory m,
        ScenarioGrid memory g,
        OptionScenarioTerms memory t,
        uint256 s,
        bool isCall
    ) private pure returns (uint256) {
        // forge-lint: disable-next-line(unsafe-typecast)
        uint256 fs = uint256(_moved(m.forward, _move(g, s))); // > 0: the move is >= -maxDownMove > -1
        if (t.expiresInHorizon) return Black76.intrinsic(fs, m.strike, isCall);
        uint256 sd = g.volState[s] > 0 ? t.sdUp : (g.volState[s] < 0 ? t.sdDown : t.sdFlat);
        return FixedPointMathLib.mulWad(t.discount, Black76.undiscountedApprox(fs, m.strike, sd, isCall));
    }

    /// @notice `price (1 + max(fraction(s) R, -maxDownMove))`: a price in scenario `s` (USD WAD, > 0).
    function scenarioPrice(uint256 price, ScenarioGrid memory g, uint256 s) internal pure returns (uint256) {
        // forge-lint: disable-next-line(unsafe-typecast)
        return uint256(_moved(price, _move(g, s))); // > 0: the move is >= -maxDownMove > -1
    }

    /// @dev `max(fraction R, -maxDownMove)` (WAD, signed).
    function _move(ScenarioGrid memory g, uint256 s) private pure returns (int256) {
        int256 raw = FixedPointMathLib.sMulWad(g.fraction[s], _toInt(g.range));
        int256 floor = -_toInt(g.maxDownMove);
        return raw > floor ? raw : floor;
    }

    /// @dev `price (1 + move)` (WAD, signed).
    function _moved(uint256 price, int256 move) private pure returns (int256) {
        return FixedPointMathLib.sMulWad(_toInt(price), _toInt(WAD) + move);
    }

    /// @dev Reverts above type(int256).max rather than wrapping (no valid price, vol or fraction is near it).
    function _toInt(uint256 x) private pure returns (int256) {
        return FixedPoint.toInt(x);
    }
}
