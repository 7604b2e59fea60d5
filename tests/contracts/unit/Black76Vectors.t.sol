// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Test} from "forge-std/Test.sol";
import {console2} from "forge-std/console2.sol";

import {Black76} from "../../../contracts/libraries/Black76.sol";
import {
    BasisShock,
    InstrumentMarket,
    ScenarioGrid,
    VolShock,
    ScenarioLoss
} from "../../../contracts/libraries/ScenarioLoss.sol";
import {ContinuousRangePad, PadLayout} from "../../../contracts/libraries/ContinuousRangePad.sol";

/// @notice The on-chain Black-76 and scenario loss vectors against the Python engine on the shared
/// vectors of tests/vectors/black76/ (scripts/gen_black76_vectors.py). Every result must lie
/// within the tolerance of docs/margin-method.md §10; the largest differences are logged (-vv).
/// Each instrument file is checked in its own external call, so that its parsed arrays (forge
/// copies the whole file into memory at every parse) are freed before the next.
contract Black76VectorsTest is Test {
    string internal constant DIR = "tests/vectors/black76/";
    uint256 internal constant N_INSTRUMENT_FILES = 12;
    /// @dev The tolerance of docs/margin-method.md §10: |chain - engine| <= TOL_SCALE x the
    /// instrument's price scale (the forward for an option, the price for a perp or spot) + TOL_WEI.
    uint256 internal constant TOL_SCALE = 1e6; // 1e-12 of the scale, in WAD
    uint256 internal constant TOL_WEI = 1e4; // 1e-14 USD

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

    function _grid(string memory json) internal pure returns (ScenarioGrid memory g, VolShock memory v) {
        int256[] memory vs = vm.parseJsonIntArray(json, ".instruments.grid.volState");
        int8[] memory states = new int8[](vs.length);
        for (uint256 s; s < vs.length; ++s) {
            states[s] = int8(vs[s]);
        }
        g = ScenarioGrid({
            fraction: vm.parseJsonIntArray(json, ".instruments.grid.fraction"),
            volState: states,
            cover: vm.parseJsonUintArray(json, ".instruments.grid.cover"),
            range: 0,
            maxDownMove: vm.parseJsonUint(json, ".instruments.grid.maxDownMove"),
            horizonSeconds: uint64(vm.parseJsonUint(json, ".instruments.grid.horizonSeconds"))
        });
        v = VolShock({
            up: vm.parseJsonUint(json, ".instruments.volShock.up"),
            down: vm.parseJsonUint(json, ".instruments.volShock.down"),
            referenceDays: vm.parseJsonUint(json, ".instruments.volShock.referenceDays"),
            exponentShort: vm.parseJsonUint(json, ".instruments.volShock.exponentShort"),
            exponentLong: vm.parseJsonUint(json, ".instruments.volShock.exponentLong"),
            minTenorDays: vm.parseJsonUint(json, ".instruments.volShock.minTenorDays"),
            floor: vm.parseJsonUint(json, ".instruments.volShock.floor")
        });
    }

    struct Columns {
        uint256[] kind;
        uint256[] price;
        uint256[] strike;
        uint256[] expiry;
        uint256[] timestamp;
        uint256[] forward;
        uint256[] atmVol;
        int256[] skew;
        int256[] curvature;
        int256[] rate;
        uint256[] range;
        uint256[] mark;
        int256[] loss;
        int256[] basisUp;
        int256[] basisDown;
        int256[] delta;
        uint256[] pad;
    }

    function _columns(string memory json) internal pure returns (Columns memory c) {
        c.kind = vm.parseJsonUintArray(json, ".instruments.kind");
        c.price = vm.parseJsonUintArray(json, ".instruments.price");
        c.strike = vm.parseJsonUintArray(json, ".instruments.strike");
        c.expiry = vm.parseJsonUintArray(json, ".instruments.expiry");
        c.timestamp = vm.parseJsonUintArray(json, ".instruments.timestamp");
        c.forward = vm.parseJsonUintArray(json, ".instruments.forward");
        c.atmVol = vm.parseJsonUintArray(json, ".instruments.atmVol");
        c.skew = vm.parseJsonIntArray(json, ".instruments.skew");
        c.curvature = vm.parseJsonIntArray(json, ".instruments.curvature");
        c.rate = vm.parseJsonIntArray(json, ".instruments.rate");
        c.range = vm.parseJsonUintArray(json, ".instruments.range");
        c.mark = vm.parseJsonUintArray(json, ".instruments.mark");
        c.loss = vm.parseJsonIntArray(json, ".instruments.loss");
        c.basisUp = vm.parseJsonIntArray(json, ".instruments.basisUp");
        c.basisDown = vm.parseJsonIntArray(json, ".instruments.basisDown");
        c.delta = vm.parseJsonIntArray(json, ".instruments.delta");
        c.pad = vm.parseJsonUintArray(json, ".instruments.pad");
    }

    function _market(Columns memory c, uint256 i) internal pure returns (InstrumentMarket memory) {
        return InstrumentMarket({
            kind: uint8(c.kind[i]),
            price: c.price[i],
            strike: c.strike[i],
            expiry: uint64(c.expiry[i]),
            timestamp: uint64(c.timestamp[i]),
            forward: c.forward[i],
            atmVol: c.atmVol[i],
            skew: c.skew[i],
            curvature: c.curvature[i],
            rate: c.rate[i]
        });
    }

    function _merge(Worst memory into, Worst memory w) internal pure {
        if (w.abs > into.abs) into.abs = w.abs;
        if (w.scaled > into.scaled) into.scaled = w.scaled;
        if (w.rel > into.rel) into.rel = w.rel;
        into.n += w.n;
    }

    function test_vectors_scenarioLosses() public {
        // 1,080 vectors with their pads exceed a test's gas limit; gas: tests/contracts/gas/Black76Gas.t.sol
        vm.pauseGasMetering();
        Worst memory wMark;
        Worst memory wLoss;
        Worst memory wBasis;
        Worst memory wPad;
        uint256 instruments;
        for (uint256 f; f < N_INSTRUMENT_FILES; ++f) {
            string memory name = string.concat(DIR, "instruments_", f < 10 ? "0" : "", vm.toString(f), ".json");
            Worsts memory w = this.checkInstrumentFile(name);
            _merge(wMark, w.mark);
            _merge(wLoss, w.loss);
            _merge(wBasis, w.basis);
            _merge(wPad, w.pad);
            instruments += w.mark.n;
        }
        assertGe(instruments, 1000);
        _log("instrument marks", wMark);
        _log("scenario losses", wLoss);
        _log("basis losses and delta notionals", wBasis);
        _log("continuous-range pads (options)", wPad);
    }

    /// @notice Every instrument of one file: its mark, its scenario losses, its basis losses, its
    /// delta notional and an option's pads (external: see above).
    function checkInstrumentFile(string memory path) external view returns (Worsts memory w) {
        string memory json = vm.readFile(path);
        File memory f;
        (f.g, f.v) = _grid(json);
        f.c = _columns(json);
        f.bs = BasisShock({
            perp: vm.parseJsonUint(json, ".instruments.basis.perp"),
            forwardPerSqrtYear: vm.parseJsonUint(json, ".instruments.basis.forwardPerSqrtYear")
        });
        f.layout = _layout(json);
        uint256 n = f.c.kind.length;
        assertGt(n, 0);
        assertEq(f.c.loss.length, n * f.g.fraction.length);
        for (uint256 i; i < n; ++i) {
            _checkInstrument(f, i, w);
        }
    }

    struct Worsts {
        Worst mark;
        Worst loss;
        Worst basis;
        Worst pad;
    }

    /// @dev One file's parsed inputs (a struct: the checks would not fit the stack otherwise).
    struct File {
        ScenarioGrid g;
        VolShock v;
        Columns c;
        BasisShock bs;
        PadLayout layout;
    }

    function _checkInstrument(File memory f, uint256 i, Worsts memory w) internal pure {
        Columns memory c = f.c;
        uint256 nScen = f.g.fraction.length;
        f.g.range = c.range[i];
        (uint256 mark, int256[] memory loss) = ScenarioLoss.lossesApprox(_market(c, i), f.g, f.v);
        // the scale: the forward (option) or price (perp, spot), or the strike if larger
        uint256 scale = c.kind[i] == 1 || c.kind[i] == 2 ? c.forward[i] : c.price[i];
        if (c.strike[i] > scale) scale = c.strike[i];
        _record(w.mark, int256(mark), int256(c.mark[i]), scale, "mark of instrument", i);
        for (uint256 s; s < nScen; ++s) {
            _record(w.loss, loss[s], c.loss[i * nScen + s], scale, "loss of instrument", i);
        }
        (int256 up, int256 down, int256 delta) = ScenarioLoss.basisDeltaApprox(_market(c, i), f.bs, f.v.floor);
        _record(w.basis, up, c.basisUp[i], scale, "basis up of instrument", i);
        _record(w.basis, down, c.basisDown[i], scale, "basis down of instrument", i);
        _record(w.basis, delta, c.delta[i], scale, "delta of instrument", i);
        _checkPads(w.pad, f, i, mark, loss, scale);
    }

    function _layout(string memory json) internal pure returns (PadLayout memory l) {
        l.lo = vm.parseJsonUintArray(json, ".instruments.padLayout.lo");
        l.hi = vm.parseJsonUintArray(json, ".instruments.padLayout.hi");
        l.nMm = vm.parseJsonUint(json, ".instruments.padLayout.nMm");
        l.nMmIntervals = vm.parseJsonUint(json, ".instruments.padLayout.nMmIntervals");
        l.imCopies = vm.parseJsonUintArray(json, ".instruments.padLayout.imCopies");
    }

    /// @dev An option's pads against the engine's; a perp or spot has none (engine: zeros).
    function _checkPads(Worst memory w, File memory f, uint256 i, uint256 mark, int256[] memory loss, uint256 scale)
        internal
        pure
    {
        uint256[] memory pad = ContinuousRangePad.padsApprox(_market(f.c, i), f.g, f.v, f.layout, mark, loss);
        uint256 nScan = loss.length + f.layout.imCopies.length;
        for (uint256 k; k < nScan; ++k) {
            uint256 engine = f.c.pad[i * nScan + k];
            if (pad.length == 0) {
                assertEq(engine, 0, "pad of a linear instrument");
                continue;
            }
            _record(w, int256(pad[k]), int256(engine), scale, "pad of instrument", i);
        }
    }
}
