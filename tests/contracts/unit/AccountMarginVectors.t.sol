// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {console2} from "forge-std/console2.sol";

import {AggregationParams, Requirements, RiskVector} from "../../../contracts/libraries/AccountMargin.sol";
import {AccountMarginHarness} from "../mocks/AccountMarginHarness.sol";
import {AccountVectors} from "./AccountVectors.sol";

/// @notice The on-chain account recomputation against the Python engine on the shared vectors of
/// tests/vectors/accounts/ (scripts/gen_account_vectors.py): every account's equity, IM and MM
/// (and each term) must lie within the tolerance of docs/margin-method.md §10. The largest
/// differences are logged (-vv), also those in the account's favour alone (the float engine's own
/// rounding can leave the chain's number a few ulps on the account's side). Each market file is
/// checked in its own external call, so that its parsed arrays are freed before the next.
contract AccountMarginVectorsTest is AccountVectors {
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
            FileWorst memory w = this.checkFile(_file(f));
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
        (int256[] memory sizes, RiskVector[] memory vectors) = _book(a, i, all);
        w.positions += sizes.length;
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
}
