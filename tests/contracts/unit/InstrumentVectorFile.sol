// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Test} from "forge-std/Test.sol";

import {BasisShock, InstrumentMarket, ScenarioGrid, VolShock} from "../../../contracts/libraries/ScenarioLoss.sol";
import {PadLayout} from "../../../contracts/libraries/ContinuousRangePad.sol";
import {ChargeParams, VectorParams} from "../../../contracts/libraries/InstrumentVector.sol";
import {RiskVector} from "../../../contracts/libraries/AccountMargin.sol";
import {RangeParams} from "../../../contracts/libraries/ScanRange.sol";

/// @notice The reader of tests/vectors/black76/instruments_*.json (scripts/gen_black76_vectors.py):
/// each instrument's inputs, its engine risk vector (column-wise) and its INSTRUMENT leaf, with the
/// file's scenario template and parameters.
abstract contract InstrumentVectorFile is Test {
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
        uint256[] underlying;
        uint256[] minimumCharge;
        uint256[] shortOptionCharge;
        uint256[] notional;
    }

    /// @dev One file's parsed inputs (a struct: the checks would not fit the stack otherwise).
    struct File {
        VectorParams p;
        Columns c;
        uint256[] spot; // per underlying
        uint256[] confidence; // per underlying
        uint256[] concentrationRate; // per underlying
        uint256[] leafMark; // per instrument: the INSTRUMENT leaf the keeper posts
        uint256[] lossLong;
        uint256[] lossShort;
        uint256[] range; // per underlying: the engine's scan range
        uint256[] scanRangeFloor; // per underlying
        int256[][] returns_; // per underlying: its daily log returns, oldest first
        RangeParams rangeParams;
    }

    /// @dev Every input and engine value of one instrument vector file.
    function _file(string memory json) internal pure returns (File memory f) {
        (f.p.grid, f.p.vol) = _grid(json);
        f.c = _columns(json);
        f.p.basis = BasisShock({
            perp: vm.parseJsonUint(json, ".instruments.basis.perp"),
            forwardPerSqrtYear: vm.parseJsonUint(json, ".instruments.basis.forwardPerSqrtYear")
        });
        f.p.layout = _layout(json);
        f.p.charges = ChargeParams({
            minimumRate: vm.parseJsonUint(json, ".instruments.charges.minimumRate"),
            shortOptionMinimum: vm.parseJsonUint(json, ".instruments.charges.shortOptionMinimum"),
            confidenceThreshold: vm.parseJsonUint(json, ".instruments.charges.confidenceThreshold"),
            confidenceRate: vm.parseJsonUint(json, ".instruments.charges.confidenceRate")
        });
        f.spot = vm.parseJsonUintArray(json, ".instruments.underlyings.spot");
        f.confidence = vm.parseJsonUintArray(json, ".instruments.underlyings.confidence");
        f.concentrationRate = vm.parseJsonUintArray(json, ".instruments.underlyings.concentrationRate");
        f.leafMark = vm.parseJsonUintArray(json, ".instruments.leafMark");
        f.lossLong = vm.parseJsonUintArray(json, ".instruments.lossLong");
        f.lossShort = vm.parseJsonUintArray(json, ".instruments.lossShort");
        f.range = vm.parseJsonUintArray(json, ".instruments.underlyings.range");
        f.scanRangeFloor = vm.parseJsonUintArray(json, ".instruments.underlyings.scanRangeFloor");
        f.returns_ = _returns(json, f.spot.length);
        f.rangeParams = RangeParams({
            ewmaLambda: vm.parseJsonUint(json, ".instruments.rangeParams.ewmaLambda"),
            rangeVolMultiple: vm.parseJsonUint(json, ".instruments.rangeParams.rangeVolMultiple"),
            horizonDays: vm.parseJsonUint(json, ".instruments.rangeParams.horizonDays"),
            apcBuffer: vm.parseJsonUint(json, ".instruments.rangeParams.apcBuffer"),
            apcStressRatio: vm.parseJsonUint(json, ".instruments.rangeParams.apcStressRatio"),
            maxRange: vm.parseJsonUint(json, ".instruments.rangeParams.maxRange")
        });
    }

    /// @dev The returns column-major in the file (underlying by underlying), split per underlying.
    function _returns(string memory json, uint256 nU) internal pure returns (int256[][] memory r) {
        int256[] memory all = vm.parseJsonIntArray(json, ".instruments.underlyings.returns");
        uint256 n = vm.parseJsonUint(json, ".instruments.underlyings.nReturns");
        r = new int256[][](nU);
        for (uint256 u; u < nU; ++u) {
            r[u] = new int256[](n);
            for (uint256 k; k < n; ++k) {
                r[u][k] = all[u * n + k];
            }
        }
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
        c.underlying = vm.parseJsonUintArray(json, ".instruments.underlying");
        c.minimumCharge = vm.parseJsonUintArray(json, ".instruments.minimumCharge");
        c.shortOptionCharge = vm.parseJsonUintArray(json, ".instruments.shortOptionCharge");
        c.notional = vm.parseJsonUintArray(json, ".instruments.notional");
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

    function _layout(string memory json) internal pure returns (PadLayout memory l) {
        l.lo = vm.parseJsonUintArray(json, ".instruments.padLayout.lo");
        l.hi = vm.parseJsonUintArray(json, ".instruments.padLayout.hi");
        l.nMm = vm.parseJsonUint(json, ".instruments.padLayout.nMm");
        l.nMmIntervals = vm.parseJsonUint(json, ".instruments.padLayout.nMmIntervals");
        l.imCopies = vm.parseJsonUintArray(json, ".instruments.padLayout.imCopies");
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

    /// @dev Instrument `i`'s engine row as the keeper commits it (keeper/dispute_encoding.py:
    /// RiskVectorWad): an option's pads of every scan column, none for a perp or spot.
    function _engineVector(File memory f, uint256 i) internal pure returns (RiskVector memory v) {
        Columns memory c = f.c;
        uint256 nT = f.p.grid.fraction.length;
        uint256 nScan = nT + f.p.layout.imCopies.length;
        v.underlying = c.underlying[i];
        v.mark = c.mark[i];
        v.loss = new int256[](nT);
        for (uint256 s; s < nT; ++s) {
            v.loss[s] = c.loss[i * nT + s];
        }
        if (c.kind[i] == 1 || c.kind[i] == 2) {
            v.pad = new uint256[](nScan);
            for (uint256 k; k < nScan; ++k) {
                v.pad[k] = c.pad[i * nScan + k];
            }
        }
        (v.basisUp, v.basisDown, v.delta) = (c.basisUp[i], c.basisDown[i], c.delta[i]);
        (v.minimumCharge, v.shortOptionCharge, v.notional) = (c.minimumCharge[i], c.shortOptionCharge[i], c.notional[i]);
    }
}
