// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Test} from "forge-std/Test.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

import {MarginVault} from "../../../contracts/MarginVault.sol";
import {EpochModule} from "../../../contracts/modules/EpochModule.sol";
import {ExchangeModule} from "../../../contracts/modules/ExchangeModule.sol";
import {FinalityModule} from "../../../contracts/modules/FinalityModule.sol";
import {DisputeModule} from "../../../contracts/modules/DisputeModule.sol";
import {InstrumentDisputeModule} from "../../../contracts/modules/InstrumentDisputeModule.sol";
import {MockERC20} from "../../../contracts/mocks/MockERC20.sol";
import {Leaves} from "../../../contracts/libraries/Leaves.sol";
import {MarginBounds} from "../../../contracts/libraries/MarginBounds.sol";
import {LiquidationLib} from "../../../contracts/libraries/LiquidationLib.sol";
import {
    AccountLeaf,
    InstrumentLeaf,
    TokenPrice,
    FundingUpdate,
    Settlement,
    Epoch,
    Leg,
    Quote,
    LiquidationQuote
} from "../../../contracts/interfaces/IMarginVault.sol";

/// @notice The shared vectors of tests/vectors/*.json (written by scripts/gen_vectors.py from
/// the Python side): the contracts must produce the same leaf hashes, Merkle proofs, EIP-712
/// digests, signatures, bounds and liquidation amounts as the keeper.
contract VectorsTest is Test {
    string internal constant DIR = "tests/vectors/";

    function _u(string memory json, string memory key) internal pure returns (uint256) {
        return vm.parseJsonUint(json, key);
    }

    function _i(string memory json, string memory key) internal pure returns (int256) {
        return vm.parseJsonInt(json, key);
    }

    function _at(string memory prefix, uint256 i, string memory field) internal pure returns (string memory) {
        return string.concat(prefix, "[", vm.toString(i), "]", field);
    }

    /* LEAVES */

    function test_vectors_leafHashes() public view {
        string memory json = vm.readFile(string.concat(DIR, "leaves.json"));
        uint256 n = _u(json, ".nAccount");
        assertGt(n, 0);
        for (uint256 i; i < n; ++i) {
            string memory p = _at(".account", i, "");
            AccountLeaf memory l = AccountLeaf(
                _u(json, string.concat(p, ".account")),
                uint64(_u(json, string.concat(p, ".stateNonce"))),
                _i(json, string.concat(p, ".cumLo")),
                _i(json, string.concat(p, ".cumHi")),
                _i(json, string.concat(p, ".equity")),
                _u(json, string.concat(p, ".im")),
                _u(json, string.concat(p, ".mm")),
                vm.parseJsonBytes32(json, string.concat(p, ".stateWord"))
            );
            assertEq(Leaves.hashAccount(l), vm.parseJsonBytes32(json, string.concat(p, ".hash")), p);
        }
        n = _u(json, ".nInstrument");
        assertGt(n, 0);
        for (uint256 i; i < n; ++i) {
            string memory p = _at(".instrument", i, "");
            InstrumentLeaf memory l = InstrumentLeaf(
                uint32(_u(json, string.concat(p, ".instrument"))),
                _u(json, string.concat(p, ".mark")),
                _u(json, string.concat(p, ".lossPerUnitLong")),
                _u(json, string.concat(p, ".lossPerUnitShort")),
                _i(json, string.concat(p, ".fundingIndex")),
                vm.parseJsonBytes32(json, string.concat(p, ".vectorHash"))
            );
            assertEq(Leaves.hashInstrument(l), vm.parseJsonBytes32(json, string.concat(p, ".hash")), p);
        }
    }

    /* MERKLE */

    function test_vectors_merkleProofsVerify() public view {
        string memory json = vm.readFile(string.concat(DIR, "merkle.json"));
        uint256 cases = _u(json, ".nCases");
        assertGt(cases, 0);
        for (uint256 c; c < cases; ++c) {
            string memory p = _at(".cases", c, "");
            bytes32 root = vm.parseJsonBytes32(json, string.concat(p, ".root"));
            bytes32[] memory leaves = vm.parseJsonBytes32Array(json, string.concat(p, ".leaves"));
            for (uint256 i; i < leaves.length; ++i) {
                bytes32[] memory proof = vm.parseJsonBytes32Array(json, _at(string.concat(p, ".proofs"), i, ""));
                assertTrue(MerkleProof.verify(proof, root, leaves[i]), p);
                // A proof does not verify another leaf.
                assertFalse(MerkleProof.verify(proof, root, keccak256(abi.encode(leaves[i]))));
            }
        }
    }

    /* EIP-712 */

    function _vaultAt(string memory json) internal returns (MarginVault v) {
        vm.chainId(_u(json, ".chainId"));
        address at = vm.parseJsonAddress(json, ".vault");
        MockERC20 usdc = new MockERC20("USD Coin", "USDC", 6);
        address em = address(new EpochModule());
        address xm = address(new ExchangeModule(address(usdc), 1e12));
        address fm = address(new FinalityModule(address(usdc), 1e12, address(new DisputeModule(address(new InstrumentDisputeModule())))));
        deployCodeTo("MarginVault.sol:MarginVault", abi.encode(address(this), address(usdc), 3600, 60, em, xm, fm), at);
        v = MarginVault(at);
    }

    function _epoch(string memory json, uint256 k) internal pure returns (Epoch memory e) {
        string memory p = _at(".epochs", k, "");
        e.epoch = uint64(_u(json, string.concat(p, ".epoch")));
        e.snapshotBlock = uint64(_u(json, string.concat(p, ".snapshotBlock")));
        e.timestamp = uint64(_u(json, string.concat(p, ".timestamp")));
        e.root = vm.parseJsonBytes32(json, string.concat(p, ".root"));
        e.inputsHash = vm.parseJsonBytes32(json, string.concat(p, ".inputsHash"));
        e.configVersion = uint64(_u(json, string.concat(p, ".configVersion")));
        e.tokens = new TokenPrice[](_u(json, string.concat(p, ".nTokens")));
        for (uint256 i; i < e.tokens.length; ++i) {
            string memory t = _at(string.concat(p, ".tokens"), i, "");
            e.tokens[i] = TokenPrice(
                vm.parseJsonAddress(json, string.concat(t, ".token")),
                _u(json, string.concat(t, ".price")),
                _u(json, string.concat(t, ".downShock")),
                _u(json, string.concat(t, ".upShock"))
            );
        }
        e.funding = new FundingUpdate[](_u(json, string.concat(p, ".nFunding")));
        for (uint256 i; i < e.funding.length; ++i) {
            string memory t = _at(string.concat(p, ".funding"), i, "");
            e.funding[i] = FundingUpdate(
                uint32(_u(json, string.concat(t, ".instrument"))), _i(json, string.concat(t, ".cumFunding"))
            );
        }
        e.settlements = new Settlement[](_u(json, string.concat(p, ".nSettlements")));
        for (uint256 i; i < e.settlements.length; ++i) {
            string memory t = _at(string.concat(p, ".settlements"), i, "");
            e.settlements[i] =
                Settlement(uint32(_u(json, string.concat(t, ".instrument"))), _u(json, string.concat(t, ".price")));
        }
    }

    function _quote(string memory json, uint256 k) internal pure returns (Quote memory q) {
        string memory p = _at(".quotes", k, "");
        q.maker = vm.parseJsonAddress(json, string.concat(p, ".maker"));
        q.makerAccount = _u(json, string.concat(p, ".makerAccount"));
        q.taker = vm.parseJsonAddress(json, string.concat(p, ".taker"));
        q.legs = new Leg[](_u(json, string.concat(p, ".nLegs")));
        for (uint256 i; i < q.legs.length; ++i) {
            string memory t = _at(string.concat(p, ".legs"), i, "");
            q.legs[i] = Leg(
                uint32(_u(json, string.concat(t, ".instrument"))),
                _i(json, string.concat(t, ".size")),
                _u(json, string.concat(t, ".price"))
            );
        }
        q.nonce = _u(json, string.concat(p, ".nonce"));
        q.deadline = uint64(_u(json, string.concat(p, ".deadline")));
    }

    function test_vectors_eip712DigestsAndSignatures() public {
        string memory json = vm.readFile(string.concat(DIR, "eip712.json"));
        MarginVault v = _vaultAt(json);
        assertEq(v.domainSeparator(), vm.parseJsonBytes32(json, ".domainSeparator"));
        address[] memory signers = vm.parseJsonAddressArray(json, ".signers");
        uint256 n = _u(json, ".nEpochs");
        assertGt(n, 0);
        for (uint256 k; k < n; ++k) {
            Epoch memory e = _epoch(json, k);
            string memory p = _at(".epochs", k, "");
            bytes32 digest = v.hashEpoch(e);
            assertEq(digest, vm.parseJsonBytes32(json, string.concat(p, ".digest")), p);
            bytes32 structHash = vm.parseJsonBytes32(json, string.concat(p, ".structHash"));
            assertEq(digest, keccak256(abi.encodePacked(hex"1901", v.domainSeparator(), structHash)));
            bytes[] memory sigs = vm.parseJsonBytesArray(json, string.concat(p, ".signatures"));
            for (uint256 i; i < sigs.length; ++i) {
                assertEq(ECDSA.recover(digest, sigs[i]), signers[i], "signature order = signer order");
                if (i > 0) assertLt(uint160(signers[i - 1]), uint160(signers[i]));
            }
        }
        n = _u(json, ".nQuotes");
        assertGt(n, 0);
        for (uint256 k; k < n; ++k) {
            Quote memory q = _quote(json, k);
            string memory p = _at(".quotes", k, "");
            bytes32 digest = v.hashQuote(q);
            assertEq(digest, vm.parseJsonBytes32(json, string.concat(p, ".digest")), p);
            bytes memory sig = vm.parseJsonBytes(json, string.concat(p, ".signature"));
            assertEq(ECDSA.recover(digest, sig), q.maker);
        }
    }

    /* BOUNDS AND LIQUIDATION */

    function test_vectors_bounds() public view {
        string memory json = vm.readFile(string.concat(DIR, "bounds.json"));
        assertEq(_i(json, ".UNBOUNDED"), MarginBounds.UNBOUNDED);
        uint256 n = _u(json, ".nTokens");
        for (uint256 k; k < n; ++k) {
            string memory p = _at(".tokens", k, "");
            TokenPrice memory t = TokenPrice(
                address(0),
                _u(json, string.concat(p, ".price")),
                _u(json, string.concat(p, ".downShock")),
                _u(json, string.concat(p, ".upShock"))
            );
            uint256 amount = _u(json, string.concat(p, ".amount"));
            uint8 dec = uint8(_u(json, string.concat(p, ".decimals")));
            assertEq(MarginBounds.depositLo(amount, t, dec), _i(json, string.concat(p, ".depositLo")), p);
            assertEq(MarginBounds.depositHi(amount, t, dec), _i(json, string.concat(p, ".depositHi")), p);
            assertEq(MarginBounds.withdrawLo(amount, t, dec), _i(json, string.concat(p, ".withdrawLo")), p);
            assertEq(MarginBounds.withdrawHi(amount, t, dec), _i(json, string.concat(p, ".withdrawHi")), p);
        }
        n = _u(json, ".nTrades");
        for (uint256 k; k < n; ++k) {
            string memory p = _at(".trades", k, "");
            int256 size = _i(json, string.concat(p, ".size"));
            uint256 price = _u(json, string.concat(p, ".price"));
            InstrumentLeaf memory l = InstrumentLeaf(
                1,
                _u(json, string.concat(p, ".mark")),
                _u(json, string.concat(p, ".lossPerUnitLong")),
                _u(json, string.concat(p, ".lossPerUnitShort")),
                0,
                bytes32(0)
            );
            // The vault's cash for the leg: the buyer pays mulWadUp(|size|, price).
            uint256 absSize = uint256(size > 0 ? size : -size);
            int256 amount = int256((absSize * price + 1e18 - 1) / 1e18);
            int256 cash = size > 0 ? -amount : amount;
            assertEq(cash, _i(json, string.concat(p, ".cash")), p);
            assertEq(MarginBounds.legLo(size, cash, l), _i(json, string.concat(p, ".lo")), p);
            assertEq(MarginBounds.legHi(size, cash, l), _i(json, string.concat(p, ".hi")), p);
        }
    }

    function test_vectors_liquidationQuotes() public view {
        string memory json = vm.readFile(string.concat(DIR, "bounds.json"));
        uint256 n = _u(json, ".nLiquidations");
        assertGt(n, 0);
        uint256 cashScale = _u(json, ".cashScale");
        for (uint256 k; k < n; ++k) {
            string memory p = _at(".liquidations", k, "");
            AccountLeaf memory leaf = AccountLeaf(
                1,
                0,
                _i(json, string.concat(p, ".leafCumLo")),
                _i(json, string.concat(p, ".leafCumHi")),
                _i(json, string.concat(p, ".equity")),
                _u(json, string.concat(p, ".im")),
                _u(json, string.concat(p, ".mm")),
                bytes32(0)
            );
            LiquidationQuote memory r = LiquidationLib.quote(
                leaf,
                _i(json, string.concat(p, ".cumLoNow")),
                _i(json, string.concat(p, ".cumHiNow")),
                LiquidationLib.Params(
                    _u(json, string.concat(p, ".liquidationPenalty")),
                    _u(json, string.concat(p, ".insuranceShare")),
                    _u(json, string.concat(p, ".insuranceFund")),
                    cashScale
                )
            );
            assertEq(r.mmSurplusHi, _i(json, string.concat(p, ".mmSurplusHi")), p);
            assertEq(r.equityLo, _i(json, string.concat(p, ".eqLo")), p);
            assertEq(r.equityHi, _i(json, string.concat(p, ".eqHi")), p);
            assertEq(r.penalty, _u(json, string.concat(p, ".penalty")), p);
            assertEq(r.pay, _u(json, string.concat(p, ".pay")), p);
            assertEq(r.fee, _u(json, string.concat(p, ".fee")), p);
            assertEq(r.covered, _u(json, string.concat(p, ".covered")), p);
            assertEq(r.uncovered, _u(json, string.concat(p, ".uncovered")), p);
            assertEq(r.netCashPaid, _i(json, string.concat(p, ".netCashPaid")), p);
            // The liquidator's capital need (keeper.bounds.min_deposit6 on the Python side).
            assertEq(r.imSurplusLo, _i(json, string.concat(p, ".imSurplusLoNow")), p);
            assertEq(r.minDeposit6, _u(json, string.concat(p, ".minDeposit6")), p);
        }
    }
}
