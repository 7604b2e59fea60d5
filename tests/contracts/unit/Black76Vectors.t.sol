// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {InstrumentVectorFile} from "./InstrumentVectorFile.sol";
import {ScanRange} from "../../../contracts/libraries/ScanRange.sol";
import {console2} from "forge-std/console2.sol";

import {Black76} from "../../../contracts/libraries/Black76.sol";
import {BasisShock, InstrumentMarket, ScenarioGrid, VolShock} from "../../../contracts/libraries/ScenarioLoss.sol";
import {PadLayout} from "../../../contracts/libraries/ContinuousRangePad.sol";
import {RiskVector} from "../../../contracts/libraries/AccountMargin.sol";
import {
    ChargeParams,
    InstrumentVector,
    UnderlyingMarket,
    VectorParams
} from "../../../contracts/libraries/InstrumentVector.sol";

/// @notice The on-chain Black-76 and instruments' whole risk vectors (InstrumentVector.riskVectorApprox)
/// against the Python engine on the shared vectors of tests/vectors/black76/
/// (scripts/gen_black76_vectors.py). Every field must lie within the tolerance of
/// docs/margin-method.md §10; the largest differences per field are logged (-vv).
/// Each instrument file is checked in its own external call, so that its parsed arrays (forge
/// copies the whole file into memory at every parse) are freed before the next.
contract Black76VectorsTest is InstrumentVectorFile {
    string internal constant DIR = "tests/vectors/black76/";
    uint256 internal constant N_INSTRUMENT_FILES = 12;
    /// @dev The tolerance of docs/margin-method.md §10: |chain - engine| <= TOL_SCALE x the
    /// price scale (InstrumentVector.toleranceScale for an instrument) + TOL_WEI.
    uint256 internal constant TOL_SCALE = InstrumentVector.TOLERANCE_PER_SCALE; // 1e-12 of the scale, in WAD
    uint256 internal constant TOL_WEI = InstrumentVector.TOLERANCE_WEI; // 1e-14 USD

    struct Worst {
        uint256 abs; // largest |chain - engine| (USD WAD)
        uint256 scaled; // largest |chain - engine| / scale (WAD)
        uint256 rel; // largest |chain - engine| / |engine| where |engine| >= 1e-6 scale (WAD)
        uint256 n; // values compared
    }

    function _diff(int256 a, int256 b) internal pure returns (uint256) {
        return a > b ? uint256(a - b) : uint256(b - a);
    }

    function _abs(int256 a) internal pure returns (uint256) {
        return a >= 0 ? uint256(a) : uint256(-a);
    }

    /// @dev Checks one value against the tolerance and updates the worst differences. `what` and `i`
    /// name the value in a failure only (building a message per value would exhaust the memory).
    function _record(Worst memory w, int256 chain, int256 engine, uint256 scale, string memory what, uint256 i)
        internal
        pure
    {
        uint256 d = _diff(chain, engine);
        uint256 tol = scale * TOL_SCALE / 1e18 + TOL_WEI;
        if (d > tol) assertLe(d, tol, string.concat(what, " ", vm.toString(i)));
        if (d > w.abs) w.abs = d;
        uint256 s = d * 1e18 / scale;
        if (s > w.scaled) w.scaled = s;
        uint256 e = _abs(engine);
        if (e >= scale / 1e6 && e > 0) {
            uint256 r = d * 1e18 / e;
            if (r > w.rel) w.rel = r;
        }
        ++w.n;
    }

    function _log(string memory name, Worst memory w) internal pure {
        console2.log(name);
        console2.log("  values compared", w.n);
        console2.log("  max |chain - engine| (USD, WAD)", w.abs);
        console2.log("  max |chain - engine| / price scale (WAD)", w.scaled);
        console2.log("  max relative difference, values >= 1e-6 of the scale (WAD)", w.rel);
    }

    function test_vectors_black76Premiums() public view {
        string memory json = vm.readFile(string.concat(DIR, "prices.json"));
        uint256[] memory f = vm.parseJsonUintArray(json, ".prices.forward");
        uint256[] memory k = vm.parseJsonUintArray(json, ".prices.strike");
        uint256[] memory t = vm.parseJsonUintArray(json, ".prices.tenor");
        uint256[] memory v = vm.parseJsonUintArray(json, ".prices.vol");
        int256[] memory r = vm.parseJsonIntArray(json, ".prices.rate");
        bool[] memory c = vm.parseJsonBoolArray(json, ".prices.isCall");
        uint256[] memory p = vm.parseJsonUintArray(json, ".prices.premium");
        assertGe(p.length, 1000);
        Worst memory w;
        for (uint256 i; i < p.length; ++i) {
            uint256 chain = Black76.premiumApprox(f[i], k[i], t[i], v[i], r[i], c[i]);
            // the scale of a premium: the larger of forward and strike (a put is worth up to K)
            uint256 scale = f[i] > k[i] ? f[i] : k[i];
            _record(w, int256(chain), int256(p[i]), scale, "premium", i);
        }
        _log("Black-76 premiums", w);
    }





    function _merge(Worst memory into, Worst memory w) internal pure {
        if (w.abs > into.abs) into.abs = w.abs;
        if (w.scaled > into.scaled) into.scaled = w.scaled;
        if (w.rel > into.rel) into.rel = w.rel;
        into.n += w.n;
    }

    /// @notice Every underlying's scan range of every file from its returns (ScanRange.rangeApprox)
    /// against the engine's: market 0 is a crash (ranges capped), the others calm or stressed.
    function test_vectors_scanRanges() public view {
        uint256 worst;
        uint256 worstScaled;
        uint256 n;
        uint256 capped;
        for (uint256 k; k < N_INSTRUMENT_FILES; ++k) {
            string memory name = string.concat(DIR, "instruments_", k < 10 ? "0" : "", vm.toString(k), ".json");
            File memory f = _file(vm.readFile(name));
            for (uint256 u; u < f.range.length; ++u) {
                uint256 chain = ScanRange.rangeApprox(f.returns_[u], f.scanRangeFloor[u], f.rangeParams);
                uint256 d = _diff(int256(chain), int256(f.range[u]));
                assertLe(d, ScanRange.toleranceOf(f.range[u]), string.concat(name, " underlying ", vm.toString(u)));
                if (d > worst) worst = d;
                if (d * 1e18 / f.range[u] > worstScaled) worstScaled = d * 1e18 / f.range[u];
                if (f.range[u] == f.rangeParams.maxRange) ++capped;
                ++n;
            }
        }
        assertGe(n, 48);
        assertGt(capped, 0);
        console2.log("scan ranges compared (capped)", n, capped);
        console2.log("  max |chain - engine| (WAD)", worst);
        console2.log("  max |chain - engine| / range (WAD)", worstScaled);
    }

    function test_vectors_instrumentRiskVectors() public {
        // 1,080 whole vectors exceed a test's gas limit; gas: tests/contracts/gas/Black76Gas.t.sol
        vm.pauseGasMetering();
        Worsts memory all;
        for (uint256 f; f < N_INSTRUMENT_FILES; ++f) {
            string memory name = string.concat(DIR, "instruments_", f < 10 ? "0" : "", vm.toString(f), ".json");
            Worsts memory w = this.checkInstrumentFile(name);
            _merge(all.mark, w.mark);
            _merge(all.loss, w.loss);
            _merge(all.pad, w.pad);
            _merge(all.basisUp, w.basisUp);
            _merge(all.basisDown, w.basisDown);
            _merge(all.delta, w.delta);
            _merge(all.minimumCharge, w.minimumCharge);
            _merge(all.shortOptionCharge, w.shortOptionCharge);
            _merge(all.notional, w.notional);
            all.underlying += w.underlying;
        }
        assertGe(all.mark.n, 1000);
        assertEq(all.underlying, all.mark.n);
        console2.log("instrument risk vectors (underlying index: exact)", all.underlying);
        _log("mark", all.mark);
        _log("scenario losses", all.loss);
        _log("continuous-range pads (options)", all.pad);
        _log("basis-up losses", all.basisUp);
        _log("basis-down losses", all.basisDown);
        _log("delta notionals", all.delta);
        _log("minimum charges (with the confidence add-on)", all.minimumCharge);
        _log("short option minimums", all.shortOptionCharge);
        _log("unit notionals", all.notional);
    }

    /// @notice Every instrument of one file: its whole risk vector, field by field (external: see
    /// above).
    function checkInstrumentFile(string memory path) external view returns (Worsts memory w) {
        string memory json = vm.readFile(path);
        File memory f = _file(json);
        uint256 n = f.c.kind.length;
        assertGt(n, 0);
        assertEq(f.c.loss.length, n * f.p.grid.fraction.length);
        for (uint256 i; i < n; ++i) {
            _checkInstrument(f, i, w);
        }
    }

    /// @dev The worst differences per field of RiskVector (the underlying index: exact matches).
    struct Worsts {
        Worst mark;
        Worst loss;
        Worst pad;
        Worst basisUp;
        Worst basisDown;
        Worst delta;
        Worst minimumCharge;
        Worst shortOptionCharge;
        Worst notional;
        uint256 underlying;
    }


    function _checkInstrument(File memory f, uint256 i, Worsts memory w) internal pure {
        Columns memory c = f.c;
        uint256 u = c.underlying[i];
        f.p.grid.range = c.range[i];
        InstrumentMarket memory m = _market(c, i);
        RiskVector memory v = InstrumentVector.riskVectorApprox(
            m, UnderlyingMarket({index: u, spot: f.spot[u], confidence: f.confidence[u]}), f.p
        );
        uint256 scale = InstrumentVector.toleranceScale(m);
        assertEq(v.underlying, u, "underlying");
        ++w.underlying;
        _record(w.mark, int256(v.mark), int256(c.mark[i]), scale, "mark of instrument", i);
        uint256 nScen = f.p.grid.fraction.length;
        assertEq(v.loss.length, nScen);
        for (uint256 s; s < nScen; ++s) {
            _record(w.loss, v.loss[s], c.loss[i * nScen + s], scale, "loss of instrument", i);
        }
        _checkPads(w.pad, f, i, v.pad, scale);
        _record(w.basisUp, v.basisUp, c.basisUp[i], scale, "basis up of instrument", i);
        _record(w.basisDown, v.basisDown, c.basisDown[i], scale, "basis down of instrument", i);
        _record(w.delta, v.delta, c.delta[i], scale, "delta of instrument", i);
        _record(
            w.minimumCharge,
            int256(v.minimumCharge),
            int256(c.minimumCharge[i]),
            scale,
            "minimum charge of instrument",
            i
        );
        _record(
            w.shortOptionCharge,
            int256(v.shortOptionCharge),
            int256(c.shortOptionCharge[i]),
            scale,
            "short option minimum of instrument",
            i
        );
        _record(w.notional, int256(v.notional), int256(c.notional[i]), scale, "notional of instrument", i);
    }


    /// @dev An option's pads against the engine's; a perp or spot has none (engine: zeros).
    function _checkPads(Worst memory w, File memory f, uint256 i, uint256[] memory pad, uint256 scale) internal pure {
        uint256 nScan = f.p.grid.fraction.length + f.p.layout.imCopies.length;
        bool option = f.c.kind[i] == 1 || f.c.kind[i] == 2;
        assertEq(pad.length, option ? nScan : 0, "pad length");
        for (uint256 k; k < nScan; ++k) {
            uint256 engine = f.c.pad[i * nScan + k];
            if (!option) {
                assertEq(engine, 0, "pad of a linear instrument");
                continue;
            }
            _record(w, int256(pad[k]), int256(engine), scale, "pad of instrument", i);
        }
    }
}
