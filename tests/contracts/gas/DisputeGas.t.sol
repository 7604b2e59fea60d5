// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {console2} from "forge-std/console2.sol";

import {BaseTest} from "../unit/BaseTest.sol";
import {AccountVectors} from "../unit/AccountVectors.sol";
import {AccountDisputeHarness} from "../mocks/AccountDisputeHarness.sol";
import {IFinality} from "../../../contracts/interfaces/IFinality.sol";
import {AccountClaim, IDispute} from "../../../contracts/interfaces/IDispute.sol";
import {
    AccountLeaf,
    CommittedState,
    Epoch,
    InstrumentLeaf,
    StateCollateral,
    StatePosition
} from "../../../contracts/interfaces/IMarginVault.sol";
import {AggregationParams, RiskVector} from "../../../contracts/libraries/AccountMargin.sol";
import {Verdict} from "../../../contracts/libraries/AccountDispute.sol";
import {CalldataGas} from "../mocks/CalldataGas.sol";

/// @notice Gas of `disputeAccount` (docs/gas.md, docs/protocol.md §11) for an account of 1 and of
/// 20 option positions whose risk vectors are real engine rows (tests/vectors/accounts/, 69
/// scenarios, 75 scan columns, the file's aggregation parameters), in a vault whose tree holds
/// the 24 instruments and two accounts: execution of the whole entry point (Merkle proofs, the
/// state proof, the vector and input hashes, the recomputation, the fraud) and its calldata.
contract DisputeGasTest is BaseTest, AccountVectors {
    string internal constant FILE = "tests/vectors/accounts/accounts_01.json";
    uint256 internal constant GOAL = 5_000_000;
    bytes32 internal constant MARKET = keccak256("market");

    AccountDisputeHarness internal d;
    uint32[] internal ids;
    RiskVector[] internal book;
    int256[] internal bookSizes;

    function setUp() public override {
        super.setUp();
        d = new AccountDisputeHarness();
        IFinality(address(vault)).setDisputeConfig(1 hours, 1000e6);
        vm.prank(carol);
        IFinality(address(vault)).postBond(1000e6);
    }

    /// @dev `n` option instruments, each with a real engine row (the first `n` options of the
    /// file) committed in its INSTRUMENT leaf, and alice holding each against bob.
    function _world(string memory json, uint256 n) internal {
        uint256 nScen = vm.parseJsonUint(json, ".instruments.nScenarios");
        uint256 nScan = vm.parseJsonUint(json, ".instruments.nScan");
        bool[] memory hasPad = vm.parseJsonBoolArray(json, ".instruments.hasPad");
        int256[] memory loss = vm.parseJsonIntArray(json, ".instruments.loss");
        uint256[] memory pad = vm.parseJsonUintArray(json, ".instruments.pad");
        uint256[] memory mark = vm.parseJsonUintArray(json, ".instruments.mark");
        int256[] memory delta = vm.parseJsonIntArray(json, ".instruments.delta");
        uint256[] memory notional = vm.parseJsonUintArray(json, ".instruments.notional");
        for (uint256 i; ids.length < n; ++i) {
            if (!hasPad[i]) continue;
            int256[] memory l = new int256[](nScen);
            for (uint256 k; k < nScen; ++k) {
                l[k] = loss[i * nScen + k];
            }
            uint256[] memory pd = new uint256[](nScan);
            for (uint256 k; k < nScan; ++k) {
                pd[k] = pad[i * nScan + k];
            }
            RiskVector memory v = RiskVector(
                0, mark[i], l, pd, -int256(mark[i] / 100), int256(mark[i] / 100), delta[i], notional[i] / 1000, 0, notional[i]
            );
            uint32 id = vault.registerInstrument(1, "BTC", 40_000e18 + ids.length * 1000e18, EXPIRY);
            instLeaf[id] = InstrumentLeaf(id, mark[i], mark[i], mark[i], 0, d.hashVector(v));
            ids.push(id);
            book.push(v);
            bookSizes.push(int256(1e18 + ids.length * 1e17));
        }
        _depositCash(alice, 10_000_000e6);
        _depositCash(bob, 10_000_000e6);
        _post2(_leaf(alice, 1e30, 0, 0), _leaf(bob, 1e30, 0, 0));
        for (uint256 j; j < n; ++j) {
            _fill(_quote(alice, bob, ids[j], bookSizes[j], instLeaf[ids[j]].mark, j + 1), aliceKey, bob);
            _post2(_leaf(alice, 1e30, 0, 0), _leaf(bob, 1e30, 0, 0));
        }
    }

    function _measure(uint256 n) internal returns (uint256 execution, uint256 data, uint256 bytes_) {
        string memory json = vm.readFile(FILE);
        AggregationParams memory p = _params(json);
        _world(json, n);
        // the engine's numbers, then a leaf whose equity is 10 % higher
        int256 cash = _cash(alice);
        Verdict memory honest = d.recompute(cash, bookSizes, book, p);
        AccountLeaf memory leaf = _leaf(alice, honest.equity + int256(honest.im / 10) + 1e21, honest.im, honest.mm);
        bytes32[] memory tokenHashes = new bytes32[](3);
        AccountLeaf[] memory l = new AccountLeaf[](2);
        (l[0], l[1]) = (leaf, _leaf(bob, 1e30, 0, 0));
        vm.roll(block.number + 1);
        Epoch memory e = _buildEpoch(l);
        e.inputsHash = keccak256(abi.encode(d.hashParams(p), keccak256(abi.encodePacked(tokenHashes)), MARKET));
        _postHeader(e);

        AccountClaim memory c;
        c.epoch = e.epoch;
        c.leaf = leaf;
        c.proof = _merkleProof(treeLeaves, _hashAccountLeaf(leaf));
        (,, c.state.cumLo, c.state.cumHi,,,,) = vault.accountState(acctOf[alice]);
        c.state.cash = cash;
        c.state.positions = new StatePosition[](n);
        c.state.collateral = new StateCollateral[](0);
        c.instruments = new InstrumentLeaf[](n);
        c.instrumentProofs = new bytes32[][](n);
        for (uint256 j; j < n; ++j) {
            c.state.positions[j] = StatePosition(ids[j], bookSizes[j], 0);
            c.instruments[j] = instLeaf[ids[j]];
            c.instrumentProofs[j] = _merkleProof(treeLeaves, _hashInstrumentLeaf(instLeaf[ids[j]]));
        }
        c.cash = cash;
        c.sizes = bookSizes;
        c.vectors = book;
        c.params = p;
        c.tokenVectorHashes = tokenHashes;
        c.marketHash = MARKET;
        vm.prank(carol);
        IDispute(address(vault)).disputeAccount(c);
        execution = vm.lastCallGas().gasTotalUsed;
        (uint64 fraudEpoch,) = IFinality(address(vault)).fraudState();
        assertEq(fraudEpoch, e.epoch, "the dispute was won");
        bytes memory call = abi.encodeCall(IDispute.disputeAccount, (c));
        data = CalldataGas.cost(call);
        bytes_ = call.length;
    }

    function test_gas_disputeAccount_1position() public {
        (uint256 e, uint256 data, uint256 b) = _measure(1);
        console2.log("disputeAccount, 1 option position: execution", e);
        console2.log("disputeAccount, 1 option position: calldata bytes", b);
        console2.log("disputeAccount, 1 option position: calldata gas", data);
    }

    function test_gas_disputeAccount_20positions() public {
        (uint256 e, uint256 data, uint256 b) = _measure(20);
        console2.log("disputeAccount, 20 option positions: execution", e);
        console2.log("disputeAccount, 20 option positions: calldata bytes", b);
        console2.log("disputeAccount, 20 option positions: calldata gas", data);
        assertLe(e + data + 21_000, GOAL);
    }
}
