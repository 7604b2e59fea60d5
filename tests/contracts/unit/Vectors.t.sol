// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Test} from "forge-std/Test.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

import {MarginVault} from "../../../contracts/MarginVault.sol";
import {MockERC20} from "../../../contracts/mocks/MockERC20.sol";
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
import {Leaves} from "../../../contracts/libraries/Leaves.sol";
import {MarginBounds} from "../../../contracts/libraries/MarginBounds.sol";
import {LiquidationLib} from "../../../contracts/libraries/LiquidationLib.sol";
import {FixedPoint} from "../../../contracts/libraries/FixedPoint.sol";

/// @notice Checks the Solidity side against the shared vectors of `tests/vectors/*.json`, which
/// `scripts/gen_vectors.py` writes from the keeper's Python encoding (pytest checks the Python
/// side against the same files): leaf encodings and hashes, Merkle roots and proofs, the
/// vault's EIP-712 digests (`hashEpoch`, `hashQuote`) at the vectors' fixed vault address and
/// chain id, epoch signatures, and the bounds / liquidation numbers of docs/protocol.md §5-6.
contract VectorsTest is Test {
    using FixedPoint for uint256;

    string internal leavesJson;
    string internal merkleJson;
    string internal eip712Json;
    string internal boundsJson;

    function setUp() public {
        string memory root = vm.projectRoot();
        leavesJson = vm.readFile(string.concat(root, "/tests/vectors/leaves.json"));
        merkleJson = vm.readFile(string.concat(root, "/tests/vectors/merkle.json"));
        eip712Json = vm.readFile(string.concat(root, "/tests/vectors/eip712.json"));
        boundsJson = vm.readFile(string.concat(root, "/tests/vectors/bounds.json"));
    }

    /* HELPERS */

    function _key(string memory prefix, uint256 i, string memory field) internal pure returns (string memory) {
        return string.concat(prefix, "[", vm.toString(i), "].", field);
    }

    function _u(string memory json, string memory key) internal pure returns (uint256) {
        return vm.parseJsonUint(json, key);
    }

    function _i(string memory json, string memory key) internal pure returns (int256) {
        return vm.parseJsonInt(json, key);
    }

    /* LEAVES */

    function test_vectors_accountLeafEncodingAndHash() public view {
        uint256 n = _u(leavesJson, ".nAccount");
        assertGt(n, 0);
        for (uint256 i; i < n; ++i) {
            string memory p = ".account";
            AccountLeaf memory l = AccountLeaf({
                account: vm.parseJsonAddress(leavesJson, _key(p, i, "account")),
                stateNonce: uint64(_u(leavesJson, _key(p, i, "stateNonce"))),
                cumLo: _i(leavesJson, _key(p, i, "cumLo")),
                cumHi: _i(leavesJson, _key(p, i, "cumHi")),
                equity: _i(leavesJson, _key(p, i, "equity")),
                im: _u(leavesJson, _key(p, i, "im")),
                mm: _u(leavesJson, _key(p, i, "mm"))
            });
            bytes memory encoded =
                abi.encode(Leaves.ACCOUNT, l.account, l.stateNonce, l.cumLo, l.cumHi, l.equity, l.im, l.mm);
            assertEq(encoded, vm.parseJsonBytes(leavesJson, _key(p, i, "encoded")), "account encoding");
            assertEq(Leaves.hashAccount(l), vm.parseJsonBytes32(leavesJson, _key(p, i, "hash")), "account hash");
        }
    }

    function test_vectors_instrumentLeafEncodingAndHash() public view {
        uint256 n = _u(leavesJson, ".nInstrument");
        assertGt(n, 0);
        for (uint256 i; i < n; ++i) {
            string memory p = ".instrument";
            InstrumentLeaf memory l = InstrumentLeaf({
                instrument: uint32(_u(leavesJson, _key(p, i, "instrument"))),
                mark: _u(leavesJson, _key(p, i, "mark")),
                lossPerUnitLong: _u(leavesJson, _key(p, i, "lossPerUnitLong")),
                lossPerUnitShort: _u(leavesJson, _key(p, i, "lossPerUnitShort"))
            });
            bytes memory encoded =
                abi.encode(Leaves.INSTRUMENT, l.instrument, l.mark, l.lossPerUnitLong, l.lossPerUnitShort);
            assertEq(encoded, vm.parseJsonBytes(leavesJson, _key(p, i, "encoded")), "instrument encoding");
            assertEq(Leaves.hashInstrument(l), vm.parseJsonBytes32(leavesJson, _key(p, i, "hash")), "instrument hash");
        }
    }

    /* MERKLE */

    function test_vectors_merkleProofsVerifyAgainstRoot() public view {
        uint256 cases = _u(merkleJson, ".nCases");
        assertGt(cases, 0);
        for (uint256 c; c < cases; ++c) {
            string memory p = string.concat(".cases[", vm.toString(c), "]");
            bytes32 root = vm.parseJsonBytes32(merkleJson, string.concat(p, ".root"));
            bytes32[] memory leaves = vm.parseJsonBytes32Array(merkleJson, string.concat(p, ".leaves"));
            assertEq(leaves.length, _u(merkleJson, string.concat(p, ".n")));
            for (uint256 j; j < leaves.length; ++j) {
                bytes32[] memory proof =
                    vm.parseJsonBytes32Array(merkleJson, string.concat(p, ".proofs[", vm.toString(j), "]"));
                assertTrue(MerkleProof.verify(proof, root, leaves[j]), "proof must verify");
                // a different leaf with the same proof must not
                assertFalse(MerkleProof.verify(proof, root, keccak256(abi.encode(leaves[j]))), "forged leaf");
            }
        }
    }

    /* EIP-712 */

    function _vault() internal returns (MarginVault v) {
        assertEq(block.chainid, _u(eip712Json, ".chainId"), "vectors assume chain id 31337");
        address at = vm.parseJsonAddress(eip712Json, ".vault");
        MockERC20 usdc = new MockERC20("USD Coin", "USDC", 6);
        deployCodeTo(
            "MarginVault.sol:MarginVault", abi.encode(address(this), address(usdc), uint64(3600), uint64(60)), at
        );
        v = MarginVault(at);
    }

    function _epoch(uint256 i) internal view returns (Epoch memory e) {
        string memory p = string.concat(".epochs[", vm.toString(i), "]");
        e.epoch = uint64(_u(eip712Json, string.concat(p, ".epoch")));
        e.snapshotBlock = uint64(_u(eip712Json, string.concat(p, ".snapshotBlock")));
        e.timestamp = uint64(_u(eip712Json, string.concat(p, ".timestamp")));
        e.root = vm.parseJsonBytes32(eip712Json, string.concat(p, ".root"));
        e.configVersion = uint64(_u(eip712Json, string.concat(p, ".configVersion")));
        e.tokens = new TokenPrice[](_u(eip712Json, string.concat(p, ".nTokens")));
        for (uint256 k; k < e.tokens.length; ++k) {
            string memory t = string.concat(p, ".tokens");
            e.tokens[k] = TokenPrice({
                token: vm.parseJsonAddress(eip712Json, _key(t, k, "token")),
                price: _u(eip712Json, _key(t, k, "price")),
                downShock: _u(eip712Json, _key(t, k, "downShock")),
                upShock: _u(eip712Json, _key(t, k, "upShock"))
            });
        }
        e.funding = new FundingUpdate[](_u(eip712Json, string.concat(p, ".nFunding")));
        for (uint256 k; k < e.funding.length; ++k) {
            string memory f = string.concat(p, ".funding");
            e.funding[k] = FundingUpdate({
                instrument: uint32(_u(eip712Json, _key(f, k, "instrument"))),
                cumFunding: _i(eip712Json, _key(f, k, "cumFunding"))
            });
        }
        e.settlements = new Settlement[](_u(eip712Json, string.concat(p, ".nSettlements")));
        for (uint256 k; k < e.settlements.length; ++k) {
            string memory s = string.concat(p, ".settlements");
            e.settlements[k] = Settlement({
                instrument: uint32(_u(eip712Json, _key(s, k, "instrument"))), price: _u(eip712Json, _key(s, k, "price"))
            });
        }
    }

    function _quote(uint256 i) internal view returns (Quote memory q) {
        string memory p = string.concat(".quotes[", vm.toString(i), "]");
        q.maker = vm.parseJsonAddress(eip712Json, string.concat(p, ".maker"));
        q.taker = vm.parseJsonAddress(eip712Json, string.concat(p, ".taker"));
        q.nonce = _u(eip712Json, string.concat(p, ".nonce"));
        q.deadline = uint64(_u(eip712Json, string.concat(p, ".deadline")));
        q.legs = new Leg[](_u(eip712Json, string.concat(p, ".nLegs")));
        for (uint256 k; k < q.legs.length; ++k) {
            string memory l = string.concat(p, ".legs");
            q.legs[k] = Leg({
                instrument: uint32(_u(eip712Json, _key(l, k, "instrument"))),
                size: _i(eip712Json, _key(l, k, "size")),
                price: _u(eip712Json, _key(l, k, "price"))
            });
        }
    }

    function test_vectors_domainSeparator() public {
        MarginVault v = _vault();
        assertEq(v.domainSeparator(), vm.parseJsonBytes32(eip712Json, ".domainSeparator"));
    }

    function test_vectors_hashEpochAndSignatures() public {
        MarginVault v = _vault();
        address[] memory signers = vm.parseJsonAddressArray(eip712Json, ".signers");
        uint256 n = _u(eip712Json, ".nEpochs");
        assertGt(n, 0);
        for (uint256 i; i < n; ++i) {
            string memory p = string.concat(".epochs[", vm.toString(i), "]");
            bytes32 digest = v.hashEpoch(_epoch(i));
            assertEq(digest, vm.parseJsonBytes32(eip712Json, string.concat(p, ".digest")), "hashEpoch");
            bytes32 structHash = vm.parseJsonBytes32(eip712Json, string.concat(p, ".structHash"));
            assertEq(digest, keccak256(abi.encodePacked("\x19\x01", v.domainSeparator(), structHash)), "struct hash");
            for (uint256 k; k < signers.length; ++k) {
                bytes memory sig = vm.parseJsonBytes(eip712Json, string.concat(p, ".signatures[", vm.toString(k), "]"));
                // signatures come sorted by signer address ascending, as postEpoch requires
                assertEq(ECDSA.recover(digest, sig), signers[k], "epoch signer");
                if (k > 0) assertLt(uint160(signers[k - 1]), uint160(signers[k]));
            }
        }
    }

    function test_vectors_hashQuoteAndMakerSignature() public {
        MarginVault v = _vault();
        uint256 n = _u(eip712Json, ".nQuotes");
        assertGt(n, 0);
        for (uint256 i; i < n; ++i) {
            string memory p = string.concat(".quotes[", vm.toString(i), "]");
            Quote memory q = _quote(i);
            bytes32 digest = v.hashQuote(q);
            assertEq(digest, vm.parseJsonBytes32(eip712Json, string.concat(p, ".digest")), "hashQuote");
            bytes memory sig = vm.parseJsonBytes(eip712Json, string.concat(p, ".signature"));
            assertEq(ECDSA.recover(digest, sig), q.maker, "quote maker");
        }
    }

    function test_vectors_hashEpoch_changesWithTheVaultAddress() public {
        // the digest is bound to the vault: the same header hashed by another vault differs
        MarginVault v = _vault();
        MockERC20 usdc = new MockERC20("USD Coin", "USDC", 6);
        MarginVault other = new MarginVault(address(this), address(usdc), 3600, 60);
        Epoch memory e = _epoch(1);
        assertTrue(v.hashEpoch(e) != other.hashEpoch(e));
    }

    /* BOUNDS (docs/protocol.md §5) */

    function test_vectors_collateralBounds() public view {
        assertEq(uint256(MarginBounds.UNBOUNDED), _u(boundsJson, ".UNBOUNDED"));
        uint256 n = _u(boundsJson, ".nTokens");
        assertGt(n, 0);
        for (uint256 i; i < n; ++i) {
            string memory p = ".tokens";
            TokenPrice memory tp = TokenPrice({
                token: address(0),
                price: _u(boundsJson, _key(p, i, "price")),
                downShock: _u(boundsJson, _key(p, i, "downShock")),
                upShock: _u(boundsJson, _key(p, i, "upShock"))
            });
            uint256 amount = _u(boundsJson, _key(p, i, "amount"));
            uint8 dec = uint8(_u(boundsJson, _key(p, i, "decimals")));
            assertEq(MarginBounds.depositLo(amount, tp, dec), _i(boundsJson, _key(p, i, "depositLo")), "depositLo");
            assertEq(MarginBounds.depositHi(amount, tp, dec), _i(boundsJson, _key(p, i, "depositHi")), "depositHi");
            assertEq(MarginBounds.withdrawLo(amount, tp, dec), _i(boundsJson, _key(p, i, "withdrawLo")), "withdrawLo");
            assertEq(MarginBounds.withdrawHi(amount, tp, dec), _i(boundsJson, _key(p, i, "withdrawHi")), "withdrawHi");
        }
    }

    function test_vectors_tradeLegBounds() public view {
        uint256 n = _u(boundsJson, ".nTrades");
        assertGt(n, 0);
        for (uint256 i; i < n; ++i) {
            string memory p = ".trades";
            int256 q = _i(boundsJson, _key(p, i, "size"));
            uint256 price = _u(boundsJson, _key(p, i, "price"));
            InstrumentLeaf memory l = InstrumentLeaf({
                instrument: 1,
                mark: _u(boundsJson, _key(p, i, "mark")),
                lossPerUnitLong: _u(boundsJson, _key(p, i, "lossPerUnitLong")),
                lossPerUnitShort: _u(boundsJson, _key(p, i, "lossPerUnitShort"))
            });
            // cash as the vault's executeQuote computes it: the buyer pays mulWadUp(|q|, price)
            uint256 amount = FixedPoint.abs(q).mulWadUp(price);
            int256 cashDelta = q > 0 ? -FixedPoint.toInt(amount) : FixedPoint.toInt(amount);
            assertEq(cashDelta, _i(boundsJson, _key(p, i, "cash")), "trade cash");
            assertEq(MarginBounds.legLo(q, cashDelta, l), _i(boundsJson, _key(p, i, "lo")), "legLo");
            assertEq(MarginBounds.legHi(q, cashDelta, l), _i(boundsJson, _key(p, i, "hi")), "legHi");
        }
    }

    /* LIQUIDATION (docs/protocol.md §6) */

    function test_vectors_liquidationQuote() public view {
        uint256 n = _u(boundsJson, ".nLiquidations");
        assertGt(n, 0);
        for (uint256 i; i < n; ++i) {
            string memory p = ".liquidations";
            AccountLeaf memory leaf = AccountLeaf({
                account: address(1),
                stateNonce: 0,
                cumLo: _i(boundsJson, _key(p, i, "leafCumLo")),
                cumHi: _i(boundsJson, _key(p, i, "leafCumHi")),
                equity: _i(boundsJson, _key(p, i, "equity")),
                im: _u(boundsJson, _key(p, i, "mm")),
                mm: _u(boundsJson, _key(p, i, "mm"))
            });
            LiquidationQuote memory r = LiquidationLib.quote(
                leaf,
                _i(boundsJson, _key(p, i, "cumLoNow")),
                _i(boundsJson, _key(p, i, "cumHiNow")),
                LiquidationLib.Params({
                    liquidationPenalty: _u(boundsJson, _key(p, i, "liquidationPenalty")),
                    insuranceShare: _u(boundsJson, _key(p, i, "insuranceShare")),
                    insuranceFund: _u(boundsJson, _key(p, i, "insuranceFund"))
                })
            );
            assertEq(r.mmSurplusHi, _i(boundsJson, _key(p, i, "mmSurplusHi")), "mmSurplusHi");
            assertEq(r.liquidatable, r.mmSurplusHi < 0);
            assertEq(r.equityLo, _i(boundsJson, _key(p, i, "eqLo")), "eqLo");
            assertEq(r.equityHi, _i(boundsJson, _key(p, i, "eqHi")), "eqHi");
            assertEq(r.penalty, _u(boundsJson, _key(p, i, "penalty")), "penalty");
            assertEq(r.pay, _u(boundsJson, _key(p, i, "pay")), "pay");
            assertEq(r.fee, _u(boundsJson, _key(p, i, "fee")), "fee");
            assertEq(r.covered, _u(boundsJson, _key(p, i, "covered")), "covered");
            assertEq(r.uncovered, _u(boundsJson, _key(p, i, "uncovered")), "uncovered");
            assertEq(r.netCashPaid, _i(boundsJson, _key(p, i, "netCashPaid")), "netCashPaid");
        }
    }
}
