// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Test} from "forge-std/Test.sol";
import {console2} from "forge-std/console2.sol";

import {
    BasisShock,
    InstrumentMarket,
    ScenarioGrid,
    VolShock,
    KIND_CALL,
    KIND_PUT,
    KIND_PERP
} from "../../../contracts/libraries/ScenarioLoss.sol";
import {PadLayout} from "../../../contracts/libraries/ContinuousRangePad.sol";
import {ChargeParams, UnderlyingMarket, VectorParams} from "../../../contracts/libraries/InstrumentVector.sol";
import {Black76Harness} from "../mocks/Black76Harness.sol";
import {CalldataGas} from "../mocks/CalldataGas.sol";

/// @notice Gas of the on-chain recomputation (docs/gas.md, docs/margin-method.md §10): one
/// Black-76 premium, one N(x), one instrument's scenario loss vector on the engine's 69-scenario
/// template and one instrument's whole risk vector (read from tests/vectors/black76/instruments_00.json). Each figure is the execution gas
/// of one call to Black76Harness (`vm.lastCallGas().gasTotalUsed`), calldata decoding included.
contract Black76GasTest is Test {
    uint256 internal constant WAD = 1e18;
    /// @dev docs/gas.md: the goal for disputeInstrument is <= 5M gas per instrument.
    uint256 internal constant INSTRUMENT_GOAL = 5_000_000;
    Black76Harness internal h;
    ScenarioGrid internal grid;
    VolShock internal shock;
    PadLayout internal layout;

    function setUp() public {
        h = new Black76Harness();
        string memory json = vm.readFile("tests/vectors/black76/instruments_00.json");
        int256[] memory vs = vm.parseJsonIntArray(json, ".instruments.grid.volState");
        for (uint256 s; s < vs.length; ++s) {
            grid.volState.push(int8(vs[s]));
        }
        grid.fraction = vm.parseJsonIntArray(json, ".instruments.grid.fraction");
        grid.cover = vm.parseJsonUintArray(json, ".instruments.grid.cover");
        grid.range = 136e15;
        grid.maxDownMove = vm.parseJsonUint(json, ".instruments.grid.maxDownMove");
        grid.horizonSeconds = uint64(vm.parseJsonUint(json, ".instruments.grid.horizonSeconds"));
        layout.lo = vm.parseJsonUintArray(json, ".instruments.padLayout.lo");
        layout.hi = vm.parseJsonUintArray(json, ".instruments.padLayout.hi");
        layout.nMm = vm.parseJsonUint(json, ".instruments.padLayout.nMm");
        layout.nMmIntervals = vm.parseJsonUint(json, ".instruments.padLayout.nMmIntervals");
        layout.imCopies = vm.parseJsonUintArray(json, ".instruments.padLayout.imCopies");
        shock = VolShock(5e17, 3e17, 30e18, 3e17, 13e16, 1e18, 5e16);
    }

    function _btcOption(uint8 kind, uint256 strike, uint64 tenorSeconds)
        internal
        pure
        returns (InstrumentMarket memory)
    {
        return InstrumentMarket(
            kind, 0, strike, 1_719_792_000 + tenorSeconds, 1_719_792_000, 61_000e18, 55e16, -1e17, 3e17, 3e16
        );
    }

    function test_gas_premium() public view {
        h.premium(61_000e18, 60_000e18, 30 * WAD / 365, 55e16, 3e16, true);
        uint256 atm = vm.lastCallGas().gasTotalUsed;
        h.premium(61_000e18, 20_000e18, 3 * WAD, 12e17, 3e16, false);
        uint256 otm = vm.lastCallGas().gasTotalUsed;
        h.cdf(5e17);
        uint256 cdfRational = vm.lastCallGas().gasTotalUsed;
        h.cdf(-75e17);
        uint256 cdfTail = vm.lastCallGas().gasTotalUsed;
        console2.log("premium, 30-day near-the-money call", atm);
        console2.log("premium, 3-year deep out-of-the-money put", otm);
        console2.log("N(x), rational branch", cdfRational);
        console2.log("N(x), continued-fraction branch", cdfTail);
        assertLe(atm, 20_000);
        assertLe(otm, 20_000);
    }

    function test_gas_instrumentVector() public view {
        assertEq(grid.fraction.length, 69);
        h.losses(_btcOption(KIND_CALL, 60_000e18, 30 days), grid, shock);
        uint256 call30 = vm.lastCallGas().gasTotalUsed;
        h.losses(_btcOption(KIND_PUT, 40_000e18, 365 days), grid, shock);
        uint256 put365 = vm.lastCallGas().gasTotalUsed;
        h.losses(_btcOption(KIND_CALL, 60_000e18, 12 hours), grid, shock);
        uint256 withinHorizon = vm.lastCallGas().gasTotalUsed;
        InstrumentMarket memory perp = _btcOption(KIND_PERP, 0, 0);
        perp.price = 61_000e18;
        h.losses(perp, grid, shock);
        uint256 perpGas = vm.lastCallGas().gasTotalUsed;
        console2.log("69-scenario vector, 30-day call", call30);
        console2.log("69-scenario vector, 1-year put", put365);
        console2.log("69-scenario vector, call expiring within the horizon", withinHorizon);
        console2.log("69-scenario vector, perp", perpGas);
        h.basisDelta(_btcOption(KIND_CALL, 60_000e18, 30 days), BasisShock(1e16, 45e15), shock.floor);
        console2.log("basis losses and delta notional, 30-day call", vm.lastCallGas().gasTotalUsed);
        h.lossesAndPads(_btcOption(KIND_CALL, 60_000e18, 30 days), grid, shock, layout);
        uint256 pads30 = vm.lastCallGas().gasTotalUsed;
        h.lossesAndPads(_btcOption(KIND_CALL, 60_000e18, 12 hours), grid, shock, layout);
        uint256 padsWithin = vm.lastCallGas().gasTotalUsed;
        console2.log("mark, 69 losses and 75 pads, 30-day call", pads30);
        console2.log("mark, 69 losses and 75 pads, call expiring within the horizon", padsWithin);
        assertLe(pads30, INSTRUMENT_GOAL);
        assertLe(call30, INSTRUMENT_GOAL);
        assertLe(put365, INSTRUMENT_GOAL);
    }

    /// @dev One whole risk vector (InstrumentVector.riskVectorApprox): its execution gas and the
    /// intrinsic gas and size of its calldata (16 per non-zero byte, 4 per zero byte).
    function _measureVector(InstrumentMarket memory m, UnderlyingMarket memory u)
        internal
        view
        returns (uint256 execution, uint256 data, uint256 bytes_)
    {
        // default parameters (risk_engine/params/default.toml); the confidence add-on charged
        VectorParams memory p =
            VectorParams(grid, shock, BasisShock(1e16, 45e15), layout, ChargeParams(1e15, 3e15, 55e16, 2e16));
        h.riskVector(m, u, p);
        execution = vm.lastCallGas().gasTotalUsed;
        bytes memory call = abi.encodeCall(Black76Harness.riskVector, (m, u, p));
        data = CalldataGas.cost(call);
        bytes_ = call.length;
    }

    function test_gas_riskVector() public view {
        UnderlyingMarket memory btc = UnderlyingMarket(0, 60_500e18, 4e17);
        (uint256 call30, uint256 callData, uint256 callBytes) =
            _measureVector(_btcOption(KIND_CALL, 60_000e18, 30 days), btc);
        (uint256 within,,) = _measureVector(_btcOption(KIND_CALL, 60_000e18, 12 hours), btc);
        InstrumentMarket memory perp = _btcOption(KIND_PERP, 0, 0);
        perp.price = 61_000e18;
        (uint256 perpGas, uint256 perpData, uint256 perpBytes) = _measureVector(perp, btc);
        console2.log("whole risk vector, 30-day call: execution", call30);
        console2.log("whole risk vector, 30-day call: calldata bytes", callBytes);
        console2.log("whole risk vector, 30-day call: calldata gas", callData);
        console2.log("whole risk vector, call expiring within the horizon: execution", within);
        console2.log("whole risk vector, perp: execution", perpGas);
        console2.log("whole risk vector, perp: calldata bytes", perpBytes);
        console2.log("whole risk vector, perp: calldata gas", perpData);
        assertLe(call30 + callData, INSTRUMENT_GOAL);
    }
}
