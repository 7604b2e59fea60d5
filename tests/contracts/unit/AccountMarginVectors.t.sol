// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Test} from "forge-std/Test.sol";
import {console2} from "forge-std/console2.sol";

import {AggregationParams, Requirements, RiskVector} from "../../../contracts/libraries/AccountMargin.sol";
import {AccountMarginHarness} from "../mocks/AccountMarginHarness.sol";

/// @notice The on-chain account recomputation against the Python engine on the shared vectors of
/// tests/vectors/accounts/ (scripts/gen_account_vectors.py): every account's equity, IM and MM
/// (and each term) must lie within the tolerance of docs/margin-method.md §10. The largest
/// differences are logged (-vv), also those in the account's favour alone (the float engine's own
/// rounding can leave the chain's number a few ulps on the account's side). Each market file is
/// checked in its own external call, so that its parsed arrays are freed before the next.
contract AccountMarginVectorsTest is Test {
    string internal constant DIR = "tests/vectors/accounts/";
    uint256 internal constant N_FILES = 12;
    /// @dev docs/margin-method.md §10: |chain - engine| <= TOL_SCALE x (gross notional + |cash|) + TOL_WEI.
    uint256 internal constant TOL_SCALE = 1e6; // 1e-12, in WAD
    uint256 internal constant TOL_WEI = 1e4; // 1e-14 USD

    AccountMarginHarness internal h;

    function setUp() public {
        h = new AccountMarginHarness();
    }

    struct Worst {
        uint256 abs; // largest |chain - engine| (USD WAD)
        uint256 scaled; // largest |chain - engine| / (gross notional + |cash|) (WAD)
        uint256 rel; // largest |chain - engine| / |engine| where |engine| >= 1e-9 of the scale (WAD)
        uint256 favour; // largest difference in the account's favour (a requirement below the engine's, equity above)
        uint256 n;
    }

    struct Instruments {
        uint256[] underlying;
        uint256[] mark;
        int256[] loss;
        bool[] hasPad;
        uint256[] pad;
        int256[] basisUp;
        int256[] basisDown;
        int256[] delta;
        uint256[] minimumCharge;
        uint256[] shortOptionCharge;
        uint256[] notional;
        uint256 nScenarios;
        uint256 nScan;
    }

    struct Accounts {
        uint256[] start;
        uint256[] instrument;
        int256[] size;
        int256[] cash;
        int256[] equity;
        uint256[] im;
        uint256[] mm;
        uint256[] scanIm;
        uint256[] scanMm;
        uint256[] basis;
        uint256[] shortOption;
        uint256[] minimum;
        uint256[] concentration;
        uint256[] grossNotional;
    }

    /// @dev The worst differences of one file: equity, IM, MM, then the terms (scan IM, scan MM,
    /// basis, short option minimum, minimum charge, concentration).
    struct FileWorst {
        Worst equity;
        Worst im;
        Worst mm;
        Worst terms;
        uint256 accounts;
        uint256 positions;
    }

    function _diff(int256 a, int256 b) internal pure returns (uint256) {
        return a > b ? uint256(a - b) : uint256(b - a);
    }

    function _abs(int256 a) internal pure returns (uint256) {
        return a >= 0 ? uint256(a) : uint256(-a);
    }

    /// @dev Checks one value and updates the worst differences. `up` = the chain rounds it up
    /// (requirements) rather than down (equity).
    function _record(Worst memory w, int256 chain, int256 engine, uint256 scale, bool up, string memory what, uint256 a)
        internal
        pure
    {
        uint256 d = _diff(chain, engine);
        uint256 tol = scale * TOL_SCALE / 1e18 + TOL_WEI;
        if (d > tol) assertLe(d, tol, string.concat(what, " of account ", vm.toString(a)));
        if (d > w.abs) w.abs = d;
        uint256 s = d * 1e18 / scale;
        if (s > w.scaled) w.scaled = s;
        uint256 e = _abs(engine);
        if (e >= scale / 1e9 && e > 0) {
            uint256 r = d * 1e18 / e;
            if (r > w.rel) w.rel = r;
        }
        if ((up && chain < engine) || (!up && chain > engine)) {
            if (d > w.favour) w.favour = d;
        }
        ++w.n;
    }

    function _merge(Worst memory into, Worst memory w) internal pure {
        if (w.abs > into.abs) into.abs = w.abs;
        if (w.scaled > into.scaled) into.scaled = w.scaled;
        if (w.rel > into.rel) into.rel = w.rel;
        if (w.favour > into.favour) into.favour = w.favour;
        into.n += w.n;
    }

    function _log(string memory name, Worst memory w) internal pure {
        console2.log(name);
        console2.log("  values compared", w.n);
        console2.log("  max |chain - engine| (USD, WAD)", w.abs);
        console2.log("  max |chain - engine| / (gross notional + |cash|) (WAD)", w.scaled);
        console2.log("  max relative difference, values >= 1e-9 of the scale (WAD)", w.rel);
        console2.log("  max difference in the account's favour (USD, WAD)", w.favour);
    }

    function test_vectors_accountMargins() public {
        // 1,200 recomputations and 12 parses of a 0.26 MB file exceed a test's gas limit; the
        // figures of interest here are the differences (gas: tests/contracts/gas/AccountMarginGas.t.sol)
        vm.pauseGasMetering();
        FileWorst memory all;
        for (uint256 f; f < N_FILES; ++f) {
            string memory name = string.concat(DIR, "accounts_", f < 10 ? "0" : "", vm.toString(f), ".json");
            FileWorst memory w = this.checkFile(name);
            _merge(all.equity, w.equity);
            _merge(all.im, w.im);
            _merge(all.mm, w.mm);
            _merge(all.terms, w.terms);
            all.accounts += w.accounts;
            all.positions += w.positions;
        }
        assertGe(all.accounts, 1000);
        console2.log("accounts", all.accounts);
        console2.log("positions", all.positions);
        _log("equity", all.equity);
        _log("IM", all.im);
        _log("MM", all.mm);
        _log("terms (scan IM, scan MM, basis, short option, minimum, concentration)", all.terms);
    }

    /// @notice Every account of one market file (external: see above).
    function checkFile(string memory path) external view returns (FileWorst memory w) {
        string memory json = vm.readFile(path);
        AggregationParams memory p = _params(json);
        RiskVector[] memory vectors = _vectors(_instruments(json));
        Accounts memory a = _accounts(json);
        w.accounts = a.cash.length;
        for (uint256 i; i < w.accounts; ++i) {
            // each account's call encodes its vectors afresh: release that memory after the check
            uint256 free;
            assembly ("memory-safe") {
                free := mload(0x40)
            }
            _checkAccount(w, a, i, vectors, p);
            assembly ("memory-safe") {
                mstore(0x40, free)
            }
        }
    }

    function _checkAccount(
        FileWorst memory w,
        Accounts memory a,
        uint256 i,
        RiskVector[] memory all,
        AggregationParams memory p
    ) internal view {
        uint256 n = a.start[i + 1] - a.start[i];
        int256[] memory sizes = new int256[](n);
        RiskVector[] memory vectors = new RiskVector[](n);
        for (uint256 j; j < n; ++j) {
            sizes[j] = a.size[a.start[i] + j];
            vectors[j] = all[a.instrument[a.start[i] + j]];
        }
        w.positions += n;
        (int256 equity, Requirements memory r) = h.account(a.cash[i], sizes, vectors, p);
        uint256 scale = a.grossNotional[i] + _abs(a.cash[i]);
        _record(w.equity, equity, a.equity[i], scale, false, "equity", i);
        _record(w.im, int256(r.imUp), int256(a.im[i]), scale, true, "im", i);
        _record(w.mm, int256(r.mmUp), int256(a.mm[i]), scale, true, "mm", i);
        _record(w.terms, int256(r.scanImUp), int256(a.scanIm[i]), scale, true, "scan im", i);
        _record(w.terms, int256(r.scanMmUp), int256(a.scanMm[i]), scale, true, "scan mm", i);
        _record(w.terms, int256(r.basisUp), int256(a.basis[i]), scale, true, "basis", i);
        _record(w.terms, int256(r.shortOptionUp), int256(a.shortOption[i]), scale, true, "short option", i);
        _record(w.terms, int256(r.minimumUp), int256(a.minimum[i]), scale, true, "minimum", i);
        _record(w.terms, int256(r.concentrationUp), int256(a.concentration[i]), scale, true, "concentration", i);
    }

    function _params(string memory json) internal pure returns (AggregationParams memory p) {
        p.nMm = vm.parseJsonUint(json, ".params.nMm");
        p.imCopies = vm.parseJsonUintArray(json, ".params.imCopies");
        p.mmScale = vm.parseJsonUint(json, ".params.mmScale");
        p.concentrationRate = vm.parseJsonUintArray(json, ".params.concentrationRate");
        p.concentrationThreshold = vm.parseJsonUintArray(json, ".params.concentrationThreshold");
        p.nodeWeight = vm.parseJsonUintArray(json, ".params.nodeWeight");
        p.left = vm.parseJsonUintArray(json, ".params.left");
        p.right = vm.parseJsonUintArray(json, ".params.right");
    }

    function _instruments(string memory json) internal pure returns (Instruments memory c) {
        c.nScenarios = vm.parseJsonUint(json, ".instruments.nScenarios");
        c.nScan = vm.parseJsonUint(json, ".instruments.nScan");
        c.underlying = vm.parseJsonUintArray(json, ".instruments.underlying");
        c.mark = vm.parseJsonUintArray(json, ".instruments.mark");
        c.loss = vm.parseJsonIntArray(json, ".instruments.loss");
        c.hasPad = vm.parseJsonBoolArray(json, ".instruments.hasPad");
        c.pad = vm.parseJsonUintArray(json, ".instruments.pad");
        c.basisUp = vm.parseJsonIntArray(json, ".instruments.basisUp");
        c.basisDown = vm.parseJsonIntArray(json, ".instruments.basisDown");
        c.delta = vm.parseJsonIntArray(json, ".instruments.delta");
        c.minimumCharge = vm.parseJsonUintArray(json, ".instruments.minimumCharge");
        c.shortOptionCharge = vm.parseJsonUintArray(json, ".instruments.shortOptionCharge");
        c.notional = vm.parseJsonUintArray(json, ".instruments.notional");
    }

    /// @dev One RiskVector per instrument; a linear instrument's pad is empty (it has none).
    function _vectors(Instruments memory c) internal pure returns (RiskVector[] memory v) {
        uint256 n = c.mark.length;
        v = new RiskVector[](n);
        for (uint256 i; i < n; ++i) {
            int256[] memory loss = new int256[](c.nScenarios);
            for (uint256 k; k < c.nScenarios; ++k) {
                loss[k] = c.loss[i * c.nScenarios + k];
            }
            uint256[] memory pad = new uint256[](c.hasPad[i] ? c.nScan : 0);
            for (uint256 k; k < pad.length; ++k) {
                pad[k] = c.pad[i * c.nScan + k];
            }
            v[i] = RiskVector({
                underlying: c.underlying[i],
                mark: c.mark[i],
                loss: loss,
                pad: pad,
                basisUp: c.basisUp[i],
                basisDown: c.basisDown[i],
                delta: c.delta[i],
                minimumCharge: c.minimumCharge[i],
                shortOptionCharge: c.shortOptionCharge[i],
                notional: c.notional[i]
            });
        }
    }

    function _accounts(string memory json) internal pure returns (Accounts memory a) {
        a.start = vm.parseJsonUintArray(json, ".accounts.start");
        a.instrument = vm.parseJsonUintArray(json, ".accounts.instrument");
        a.size = vm.parseJsonIntArray(json, ".accounts.size");
        a.cash = vm.parseJsonIntArray(json, ".accounts.cash");
        a.equity = vm.parseJsonIntArray(json, ".accounts.equity");
        a.im = vm.parseJsonUintArray(json, ".accounts.im");
        a.mm = vm.parseJsonUintArray(json, ".accounts.mm");
        a.scanIm = vm.parseJsonUintArray(json, ".accounts.scanIm");
        a.scanMm = vm.parseJsonUintArray(json, ".accounts.scanMm");
        a.basis = vm.parseJsonUintArray(json, ".accounts.basis");
        a.shortOption = vm.parseJsonUintArray(json, ".accounts.shortOption");
        a.minimum = vm.parseJsonUintArray(json, ".accounts.minimum");
        a.concentration = vm.parseJsonUintArray(json, ".accounts.concentration");
        a.grossNotional = vm.parseJsonUintArray(json, ".accounts.grossNotional");
    }
}
