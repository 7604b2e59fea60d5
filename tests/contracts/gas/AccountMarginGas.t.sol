// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {console2} from "forge-std/console2.sol";

import {Verdict} from "../../../contracts/libraries/AccountDispute.sol";
import {AggregationParams, RiskVector} from "../../../contracts/libraries/AccountMargin.sol";
import {AccountDisputeHarness} from "../mocks/AccountDisputeHarness.sol";
import {AccountMarginHarness} from "../mocks/AccountMarginHarness.sol";
import {AccountVectors} from "../unit/AccountVectors.sol";
import {CalldataGas} from "../mocks/CalldataGas.sol";

/// @notice Gas of the on-chain account recomputation (docs/gas.md, docs/margin-method.md §10): one
/// account of 1 and of 20 positions, the options first, on the risk vectors of
/// tests/vectors/accounts/accounts_01.json (69 scenarios, 75 scan columns, four underlyings). The
/// execution gas is one call to AccountMarginHarness (`vm.lastCallGas().gasTotalUsed`, calldata
/// decoding included); the calldata's own cost (16 gas a non-zero byte, 4 a zero byte) is added
/// for the total a dispute transaction would pay for the recomputation. The judge
/// (AccountDispute.judge) is measured the same way, with the hashes of every vector and of the
/// parameters that a dispute checks against the commitments (AccountDisputeHarness.judgeHashed).
contract AccountMarginGasTest is AccountVectors {
    /// @dev docs/gas.md: the goal for disputeAccount is <= 5M gas at 20 positions, calldata included.
    uint256 internal constant ACCOUNT_GOAL = 5_000_000;
    string internal constant FILE = "tests/vectors/accounts/accounts_01.json";

    AccountMarginHarness internal h;
    AccountDisputeHarness internal d;

    function setUp() public {
        h = new AccountMarginHarness();
        d = new AccountDisputeHarness();
    }

    /// @dev The first `n` instruments of the file that have a pad (options), long and short in turn.
    function _optionBook(string memory json, uint256 n)
        internal
        pure
        returns (int256[] memory sizes, RiskVector[] memory v)
    {
        uint256 nScen = vm.parseJsonUint(json, ".instruments.nScenarios");
        uint256 nScan = vm.parseJsonUint(json, ".instruments.nScan");
        bool[] memory hasPad = vm.parseJsonBoolArray(json, ".instruments.hasPad");
        int256[] memory loss = vm.parseJsonIntArray(json, ".instruments.loss");
        uint256[] memory pad = vm.parseJsonUintArray(json, ".instruments.pad");
        uint256[] memory und = vm.parseJsonUintArray(json, ".instruments.underlying");
        uint256[] memory mark = vm.parseJsonUintArray(json, ".instruments.mark");
        int256[] memory delta = vm.parseJsonIntArray(json, ".instruments.delta");
        uint256[] memory notional = vm.parseJsonUintArray(json, ".instruments.notional");
        sizes = new int256[](n);
        v = new RiskVector[](n);
        uint256 j;
        for (uint256 i; j < n; ++i) {
            if (!hasPad[i]) continue;
            int256[] memory l = new int256[](nScen);
            for (uint256 k; k < nScen; ++k) {
                l[k] = loss[i * nScen + k];
            }
            uint256[] memory pd = new uint256[](nScan);
            for (uint256 k; k < nScan; ++k) {
                pd[k] = pad[i * nScan + k];
            }
            v[j] = RiskVector(
                und[i],
                mark[i],
                l,
                pd,
                -int256(mark[i] / 100),
                int256(mark[i] / 100),
                delta[i],
                notional[i] / 1000,
                notional[i] * 3 / 1000,
                notional[i]
            );
            sizes[j] = j % 2 == 0 ? int256(3e18 + j * 1e17) : -int256(2e18 + j * 1e17);
            ++j;
        }
    }

    function _measure(AggregationParams memory p, string memory json, uint256 n)
        internal
        view
        returns (uint256 execution, uint256 data, uint256 bytes_)
    {
        (int256[] memory sizes, RiskVector[] memory v) = _optionBook(json, n);
        h.account(1_000_000e18, sizes, v, p);
        execution = vm.lastCallGas().gasTotalUsed;
        bytes memory call = abi.encodeCall(AccountMarginHarness.account, (1_000_000e18, sizes, v, p));
        data = CalldataGas.cost(call);
        bytes_ = call.length;
    }

    function test_gas_account() public view {
        string memory json = vm.readFile(FILE);
        AggregationParams memory p = _params(json);
        (uint256 e1, uint256 d1, uint256 b1) = _measure(p, json, 1);
        (uint256 e20, uint256 d20, uint256 b20) = _measure(p, json, 20);
        console2.log("1 option position: execution", e1);
        console2.log("1 option position: calldata bytes", b1);
        console2.log("1 option position: calldata gas", d1);
        console2.log("20 option positions: execution", e20);
        console2.log("20 option positions: calldata bytes", b20);
        console2.log("20 option positions: calldata gas", d20);
        assertLe(e20 + d20, ACCOUNT_GOAL);
    }

    /// @dev One judgment of the account's own recomputed numbers (an honest leaf: not wrong).
    function _measureJudge(AggregationParams memory p, string memory json, uint256 n, bool hashed)
        internal
        view
        returns (uint256 execution, uint256 data, uint256 bytes_)
    {
        (int256[] memory sizes, RiskVector[] memory v) = _optionBook(json, n);
        Verdict memory r = d.judge(1_000_000e18, sizes, v, p, 0, 0, 0);
        bytes memory call;
        if (hashed) {
            (r,,) = d.judgeHashed(1_000_000e18, sizes, v, p, r.equity, r.im, r.mm);
            execution = vm.lastCallGas().gasTotalUsed;
            call = abi.encodeCall(AccountDisputeHarness.judgeHashed, (1_000_000e18, sizes, v, p, r.equity, r.im, r.mm));
        } else {
            r = d.judge(1_000_000e18, sizes, v, p, r.equity, r.im, r.mm);
            execution = vm.lastCallGas().gasTotalUsed;
            call = abi.encodeCall(AccountDisputeHarness.judge, (1_000_000e18, sizes, v, p, r.equity, r.im, r.mm));
        }
        assertFalse(r.equityWrong || r.imWrong || r.mmWrong);
        data = CalldataGas.cost(call);
        bytes_ = call.length;
    }

    function test_gas_judge() public view {
        string memory json = vm.readFile(FILE);
        AggregationParams memory p = _params(json);
        (uint256 j1,,) = _measureJudge(p, json, 1, false);
        (uint256 j20,,) = _measureJudge(p, json, 20, false);
        (uint256 e1, uint256 d1, uint256 b1) = _measureJudge(p, json, 1, true);
        (uint256 e20, uint256 d20, uint256 b20) = _measureJudge(p, json, 20, true);
        console2.log("judge, 1 option position: execution", j1);
        console2.log("judge, 20 option positions: execution", j20);
        console2.log("judge + hashes, 1 option position: execution", e1);
        console2.log("judge + hashes, 1 option position: calldata bytes", b1);
        console2.log("judge + hashes, 1 option position: calldata gas", d1);
        console2.log("judge + hashes, 20 option positions: execution", e20);
        console2.log("judge + hashes, 20 option positions: calldata bytes", b20);
        console2.log("judge + hashes, 20 option positions: calldata gas", d20);
        assertLe(e20 + d20, ACCOUNT_GOAL);
    }
}
