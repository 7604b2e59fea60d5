// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Test} from "forge-std/Test.sol";

import {AggregationParams, RiskVector} from "../../../contracts/libraries/AccountMargin.sol";

/// @notice Reads the shared account vectors of tests/vectors/accounts/ (scripts/gen_account_vectors.py):
/// the aggregation parameters, the instruments' risk vectors and the accounts with the engine's
/// numbers and the ACCOUNT leaf values the keeper would post. One reader for the recomputation
/// test (AccountMarginVectors.t.sol), the judge's (AccountDispute.t.sol) and the gas tests.
abstract contract AccountVectors is Test {
    string internal constant DIR = "tests/vectors/accounts/";
    uint256 internal constant N_FILES = 12;

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
        int256[] leafEquity; // the posted leaf: the engine's equity less its pad, rounded down
        uint256[] leafIm; // the engine's IM plus its pad, rounded up
        uint256[] leafMm;
    }

    function _file(uint256 f) internal pure returns (string memory) {
        return string.concat(DIR, "accounts_", f < 10 ? "0" : "", vm.toString(f), ".json");
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
        a.leafEquity = vm.parseJsonIntArray(json, ".accounts.leafEquity");
        a.leafIm = vm.parseJsonUintArray(json, ".accounts.leafIm");
        a.leafMm = vm.parseJsonUintArray(json, ".accounts.leafMm");
    }

    /// @dev Account `i`'s sizes and the vectors of its instruments.
    function _book(Accounts memory a, uint256 i, RiskVector[] memory all)
        internal
        pure
        returns (int256[] memory sizes, RiskVector[] memory vectors)
    {
        uint256 n = a.start[i + 1] - a.start[i];
        sizes = new int256[](n);
        vectors = new RiskVector[](n);
        for (uint256 j; j < n; ++j) {
            sizes[j] = a.size[a.start[i] + j];
            vectors[j] = all[a.instrument[a.start[i] + j]];
        }
    }
}
