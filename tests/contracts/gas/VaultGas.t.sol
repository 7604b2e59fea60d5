// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Vm} from "forge-std/Vm.sol";
import {console2} from "forge-std/console2.sol";

import {BaseTest} from "../unit/BaseTest.sol";
import {PriceReferences} from "../../../contracts/PriceReferences.sol";
import {MockAggregatorV3} from "../../../contracts/mocks/MockAggregatorV3.sol";
import {StateChainGhost} from "../mocks/StateChainGhost.sol";
import {StateLens} from "../../../contracts/StateLens.sol";
import {StateChain} from "../../../contracts/libraries/StateChain.sol";
import {IFinality} from "../../../contracts/interfaces/IFinality.sol";
import {
    AccountLeaf,
    Epoch,
    FundingUpdate,
    InstrumentLeaf,
    InstrumentProof,
    Leg,
    MarginProof,
    Quote,
    Settlement,
    CommittedState,
    StateDelta
} from "../../../contracts/interfaces/IMarginVault.sol";
import {CalldataGas} from "../mocks/CalldataGas.sol";

/// @notice Shared fixture of the gas tests (docs/gas.md). Every measured test does its
/// preparation in `setUp`, so that the test's own figure in `.gas-snapshot` (`make gas`) is the
/// vault call plus a small, fixed harness cost; the exact call figure is logged. Each figure is the execution gas of
/// the one vault call (`vm.lastCallGas().gasTotalUsed`, with the vault's and tokens' storage
/// made cold first, as in a fresh transaction) plus, for the transaction total, 21,000 and the calldata cost (4 gas per zero
/// byte, 16 per non-zero byte). Trees are built here over N filler accounts plus the real
/// ones; the vault only ever sees a root and log2(N) proof elements.
abstract contract GasBase is BaseTest {
    uint256 internal constant TREE_ACCOUNTS = 10_000; // proof depth 14 for withdrawals/trades
    uint32 internal constant EXTRA_PERPS = 60; // instruments 5..64: room for 64 positions (the cap)

    struct Tree {
        bytes32[][] levels; // levels[0] = leaves, last = [root]
    }

    function setUp() public virtual override {
        super.setUp();
        for (uint32 i; i < EXTRA_PERPS; ++i) {
            uint32 id = vault.registerInstrument(0, bytes32(bytes.concat("P", bytes(vm.toString(i)))), 0, 0);
            instLeaf[id] = InstrumentLeaf(id, 100e18, 10e18, 10e18, 0, bytes32(0));
        }
        _depositCash(alice, 1_000_000e6);
        _depositCash(bob, 1_000_000e6);
        _depositCash(carol, 5_000_000e6);
        vm.prank(carol);
        vault.depositInsurance(1_000_000e6);
        _post3(_leaf(alice, 1_000_000e18, 0, 0), _leaf(bob, 1_000_000e18, 0, 0), _leaf(carol, 5_000_000e18, 0, 0));
    }

    /* TREES OVER MANY ACCOUNTS */

    function _fillerLeaf(uint256 i) internal pure returns (bytes32) {
        return _hashAccountLeaf(AccountLeaf(0x1000000 + i, 0, 0, 0, 1e18, 0, 0, bytes32(0)));
    }

    /// @dev Leaves: every instrument, then `real`, then `fillers` filler accounts. Pairs are
    /// hashed sorted (as MerkleProof verifies), odd nodes promoted.
    function _tree(AccountLeaf[] memory real, uint256 fillers) internal view returns (Tree memory t) {
        uint32 n = vault.instrumentCount();
        bytes32[] memory leaves = new bytes32[](n + real.length + fillers);
        for (uint32 id = 1; id <= n; ++id) {
            leaves[id - 1] = _hashInstrumentLeaf(instLeaf[id]);
        }
        for (uint256 i; i < real.length; ++i) {
            leaves[n + i] = _hashAccountLeaf(real[i]);
        }
        for (uint256 i; i < fillers; ++i) {
            leaves[n + real.length + i] = _fillerLeaf(i);
        }
        uint256 depth;
        for (uint256 w = leaves.length; w > 1; w = (w + 1) / 2) {
            ++depth;
        }
        t.levels = new bytes32[][](depth + 1);
        t.levels[0] = leaves;
        for (uint256 d = 1; d <= depth; ++d) {
            bytes32[] memory prev = t.levels[d - 1];
            bytes32[] memory next = new bytes32[]((prev.length + 1) / 2);
            for (uint256 i; i < next.length; ++i) {
                next[i] = 2 * i + 1 < prev.length ? _hashPair(prev[2 * i], prev[2 * i + 1]) : prev[2 * i];
            }
            t.levels[d] = next;
        }
    }

    /// @dev Root only, hashing in place (for the 100,000-account tree: no proof needed).
    function _rootOver(uint256 fillers) internal view returns (bytes32) {
        uint32 n = vault.instrumentCount();
        bytes32[] memory a = new bytes32[](n + fillers);
        for (uint32 id = 1; id <= n; ++id) {
            a[id - 1] = _hashInstrumentLeaf(instLeaf[id]);
        }
        for (uint256 i; i < fillers; ++i) {
            uint256 fmp;
            assembly ("memory-safe") {
                fmp := mload(0x40)
            }
            a[n + i] = _fillerLeaf(i);
            assembly ("memory-safe") {
                mstore(0x40, fmp) // drop the encoding scratch: 100,000 leaves would not fit
            }
        }
        for (uint256 w = a.length; w > 1; w = (w + 1) / 2) {
            for (uint256 i; i < (w + 1) / 2; ++i) {
                a[i] = 2 * i + 1 < w ? _hashPair(a[2 * i], a[2 * i + 1]) : a[2 * i];
            }
        }
        return a[0];
    }

    function _root(Tree memory t) internal pure returns (bytes32) {
        return t.levels[t.levels.length - 1][0];
    }

    function _proofAt(Tree memory t, uint256 idx) internal pure returns (bytes32[] memory proof) {
        bytes32[] memory buf = new bytes32[](t.levels.length);
        uint256 k;
        for (uint256 d; d + 1 < t.levels.length; ++d) {
            uint256 sib = idx ^ 1;
            if (sib < t.levels[d].length) buf[k++] = t.levels[d][sib];
            idx /= 2;
        }
        proof = new bytes32[](k);
        for (uint256 i; i < k; ++i) {
            proof[i] = buf[i];
        }
    }

    /// @dev `real[i]`'s proof (account leaves sit after the instrument leaves).
    function _accountProof(Tree memory t, AccountLeaf[] memory real, uint256 i)
        internal
        view
        returns (MarginProof memory)
    {
        return MarginProof(real[i], _proofAt(t, vault.instrumentCount() + i));
    }

    function _instrumentProof(Tree memory t, uint32 id) internal view returns (InstrumentProof memory) {
        return InstrumentProof(instLeaf[id], _proofAt(t, id - 1));
    }

    /// @dev Posts `root` with funding updates for `perps` (index moved by `df`).
    function _postRoot(bytes32 root, uint32[] memory perps, int256 df) internal returns (uint256 gasUsed) {
        vm.roll(block.number + 1);
        vm.warp(block.timestamp + 12);
        Epoch memory e = _header(root);
        e.funding = new FundingUpdate[](perps.length);
        for (uint256 i; i < perps.length; ++i) {
            e.funding[i] = FundingUpdate(perps[i], df * int256(uint256(nextEpoch)));
        }
        // a new price every epoch, as in production
        for (uint256 i; i < prices.length; ++i) {
            prices[i].price += 1e18;
        }
        e.tokens = prices;
        bytes[] memory sigs = _signEpoch(e, _quorumKeys());
        if (_measuring) _cool();
        vault.postEpoch(e, sigs);
        gasUsed = _report("postEpoch", abi.encodeCall(vault.postEpoch, (e, sigs)));
        nextEpoch = e.epoch + 1;
        vm.roll(block.number + 1); // accounts act in later blocks than the post
    }

    /// @dev False during setUp: `vm.cool` there would corrupt the accounts for the test's
    /// transaction (forge 1.7); the test body starts cold anyway and cools before each call.
    bool internal _measuring;

    /// @dev Keeps proofs for the test body (memory does not survive setUp).
    mapping(uint256 => MarginProof) internal _mpStore; // by subaccount id
    mapping(uint32 => bytes32[]) internal _ipStore;

    function _storeProofs(Tree memory t, AccountLeaf[] memory real) internal {
        for (uint256 i; i < real.length; ++i) {
            MarginProof memory m = _accountProof(t, real, i);
            _mpStore[real[i].account].leaf = m.leaf;
            _mpStore[real[i].account].proof = m.proof;
        }
        for (uint32 id = 1; id <= vault.instrumentCount(); ++id) {
            _ipStore[id] = _proofAt(t, id - 1);
        }
    }

    function _ipStored(uint32 id) internal view returns (InstrumentProof memory) {
        return InstrumentProof(instLeaf[id], _ipStore[id]);
    }

    function _twoPerps() internal view returns (uint32[] memory p) {
        p = new uint32[](2);
        p[0] = btcPerp;
        p[1] = ethPerp;
    }

    /* REPORTING */

    /// @dev Storage of the vault and tokens cold again, as at the start of a transaction (the
    /// test runs as one transaction, which would warm every slot it touched before).
    function _cool() internal virtual {
        address[8] memory a = [
            address(vault),
            vault.epochModule(),
            vault.exchangeModule(),
            vault.finalityModule(),
            address(usdc),
            address(weth),
            address(wbtc),
            address(gov)
        ];
        for (uint256 i; i < a.length; ++i) {
            // Load the account first: `cool` on an account not yet loaded in this transaction
            // would replace it with an empty one (forge 1.7).
            require(a[i].code.length > 0, "no code");
            vm.cool(a[i]);
        }
    }

    /// @dev Logs execution gas of the last call and the transaction estimate; returns the
    /// execution gas.
    function _report(string memory what, bytes memory data) internal view returns (uint256 exec) {
        Vm.Gas memory g = vm.lastCallGas();
        exec = g.gasTotalUsed;
        console2.log(
            string.concat(
                what,
                ": execution ",
                vm.toString(exec),
                ", calldata bytes ",
                vm.toString(data.length),
                ", tx total ~",
                vm.toString(21_000 + CalldataGas.cost(data) + exec)
            )
        );
    }
}

/// @notice postEpoch over 10, 1,000 and 100,000 accounts: the same header shape (3 tokens, 2
/// funding updates, 2-of-3 signatures), only the root differs, so the gas is the same. The
/// token table is stored one slot per token (docs/gas.md).
contract EpochGasTest is GasBase {
    uint256 internal constant POST_EPOCH_TARGET = 120_000;
    bytes32 internal root10;
    bytes32 internal root1k;
    bytes32 internal root100k;

    function setUp() public override {
        super.setUp();
        root10 = _rootOver(10);
        root1k = _rootOver(1000);
        root100k = _rootOver(100_000);
        // warm-up (another root): every later post overwrites non-zero slots with new values
        _postRoot(_rootOver(11), _twoPerps(), 1e18);
    }

    function test_gas_postEpoch_10accounts() public {
        _measuring = true;
        assertLe(_postRoot(root10, _twoPerps(), 1e18), POST_EPOCH_TARGET);
    }

    function test_gas_postEpoch_1000accounts() public {
        _measuring = true;
        assertLe(_postRoot(root1k, _twoPerps(), 1e18), POST_EPOCH_TARGET);
    }

    function test_gas_postEpoch_100000accounts() public {
        _measuring = true;
        assertLe(_postRoot(root100k, _twoPerps(), 1e18), POST_EPOCH_TARGET);
    }

    /// @notice The claim itself: three posts in a row, equal gas.
    function test_gas_postEpoch_constantInAccounts() public {
        _measuring = true;
        uint256 g10 = _postRoot(root10, _twoPerps(), 1e18);
        uint256 g1k = _postRoot(root1k, _twoPerps(), 1e18);
        uint256 g100k = _postRoot(root100k, _twoPerps(), 1e18);
        console2.log("postEpoch over 10 / 1,000 / 100,000 accounts:", g10, g1k, g100k);
        assertEq(g10, g1k, "posting gas grew with the number of accounts");
        assertEq(g1k, g100k, "posting gas grew with the number of accounts");
    }
}

/// @notice postEpoch with reference prices (docs/protocol.md §4, "Reference prices"): the
/// header of `EpochGasTest`, with a `PriceReferences` contract set and one, then all three,
/// tokens referenced to a Chainlink-style feed (cold, as in a fresh transaction). Without a
/// `PriceReferences` contract the check is one storage read: `EpochGasTest`'s figure.
contract EpochReferenceGasTest is GasBase {
    PriceReferences internal refs;
    MockAggregatorV3[3] internal feeds;

    function setUp() public override {
        super.setUp();
        refs = new PriceReferences(address(vault), address(this));
        vault.setPriceReferences(address(refs));
        for (uint256 i; i < 3; ++i) {
            feeds[i] = new MockAggregatorV3(8, 1); // 8 decimals, as Chainlink's USD feeds
        }
        _postRoot(_rootOver(11), _twoPerps(), 1e18); // warm-up, as EpochGasTest
    }

    function _cool() internal override {
        super._cool();
        vm.cool(address(refs));
        for (uint256 i; i < 3; ++i) {
            vm.cool(address(feeds[i]));
        }
    }

    function _reference(uint256 n) internal {
        for (uint256 i; i < n; ++i) {
            // the next post moves each price by +1 USD: the feed answers that price
            feeds[i].setAnswer(int256((prices[i].price + 1e18) / 1e10));
            refs.setPriceReference(prices[i].token, address(feeds[i]), 0.05e18, 1 hours);
        }
    }

    function test_gas_postEpoch_oneReference() public {
        _reference(1);
        _measuring = true;
        uint256 g = _postRoot(_rootOver(10), _twoPerps(), 1e18);
        console2.log("postEpoch, 1 of 3 tokens referenced:", g);
    }

    function test_gas_postEpoch_allReferences() public {
        _reference(3);
        _measuring = true;
        uint256 g = _postRoot(_rootOver(10), _twoPerps(), 1e18);
        console2.log("postEpoch, 3 of 3 tokens referenced:", g);
    }
}

contract CollateralGasTest is GasBase {
    function setUp() public override {
        super.setUp();
        _deposit(bob, weth, 1e18);
    }

    function test_gas_deposit_firstOfToken() public {
        _cool();
        vm.prank(alice);
        vault.deposit(aliceAcct, address(weth), 1e18);
        _report("deposit (first of the token)", abi.encodeCall(vault.deposit, (aliceAcct, address(weth), 1e18)));
    }

    function test_gas_deposit_again() public {
        _cool();
        vm.prank(bob);
        vault.deposit(bobAcct, address(weth), 1e18);
        _report("deposit (token already held)", abi.encodeCall(vault.deposit, (bobAcct, address(weth), 1e18)));
    }

    function test_gas_depositCash() public {
        _cool();
        vm.prank(alice);
        vault.depositCash(aliceAcct, 1000e6);
        _report("depositCash", abi.encodeCall(vault.depositCash, (aliceAcct, 1000e6)));
    }

    function test_gas_withdraw_noPositionsNoProof() public {
        _cool();
        vm.prank(bob);
        vault.withdraw(bobAcct, address(weth), 0.5e18, _emptyProof());
        _report(
            "withdraw (no positions, no proof)",
            abi.encodeCall(vault.withdraw, (bobAcct, address(weth), 0.5e18, _emptyProof()))
        );
    }
}

/// @notice alice holds a BTC perp (so she needs her leaf) in a tree of 10,000 accounts: proof
/// depth 14.
contract ProofGasTest is GasBase {
    function setUp() public override {
        super.setUp();
        _fill(_quote(alice, bob, btcPerp, 1e18, 60_000e18, 1), aliceKey, bob);
        _deposit(alice, weth, 10e18);
        AccountLeaf[] memory real = new AccountLeaf[](3);
        real[0] = _leaf(alice, 1_030_000e18, 6000e18, 3000e18);
        real[1] = _leaf(bob, 1_000_000e18, 6000e18, 3000e18);
        real[2] = _leaf(carol, 5_000_000e18, 0, 0);
        Tree memory t = _tree(real, TREE_ACCOUNTS);
        _postRoot(_root(t), _twoPerps(), 1e18);
        _storeProofs(t, real);
        assertEq(_mpStore[aliceAcct].proof.length, 14);
    }

    function test_gas_withdraw_withProof10kAccounts() public {
        MarginProof memory mp = _mpStore[aliceAcct];
        _cool();
        vm.prank(alice);
        vault.withdraw(aliceAcct, address(weth), 1e18, mp);
        _report("withdraw (proof depth 14)", abi.encodeCall(vault.withdraw, (aliceAcct, address(weth), 1e18, mp)));
    }

    function test_gas_withdrawCash_withProof10kAccounts() public {
        MarginProof memory mp = _mpStore[aliceAcct];
        _cool();
        vm.prank(alice);
        vault.withdrawCash(aliceAcct, 1000e6, mp);
        _report("withdrawCash (proof depth 14)", abi.encodeCall(vault.withdrawCash, (aliceAcct, 1000e6, mp)));
    }

    function test_gas_executeQuote_twoLegs() public {
        Quote memory q;
        q.maker = alice;
        q.makerAccount = aliceAcct;
        q.taker = bob;
        q.legs = new Leg[](2);
        q.legs[0] = Leg(btcPerp, 0.5e18, 60_000e18);
        q.legs[1] = Leg(ethPerp, -5e18, 3000e18);
        q.nonce = 7;
        q.deadline = uint64(block.timestamp + 600);
        bytes memory sig = _signQuote(q, aliceKey);
        InstrumentProof[] memory ips = new InstrumentProof[](2);
        ips[0] = _ipStored(btcPerp);
        ips[1] = _ipStored(ethPerp);
        MarginProof memory mpA = _mpStore[aliceAcct];
        MarginProof memory mpB = _mpStore[bobAcct];
        _cool();
        vm.prank(bob);
        vault.executeQuote(q, sig, ips, mpA, bobAcct, mpB);
        _report(
            "executeQuote (2 legs, proof depth 14)",
            abi.encodeCall(vault.executeQuote, (q, sig, ips, mpA, bobAcct, mpB))
        );
    }
}

/// @notice Three subaccounts below MM in one tree of 10,000 accounts (proof depth 14): alice's
/// with 1 position, dave's with 20, erin's with 64 (the cap), one per instrument against bob,
/// funding due on every perp. carol liquidates each by transfer with the least deposit. Gas
/// must not depend on the number of positions (docs/protocol.md §6): each <= 150,000 and the
/// three within 10 % of each other.
contract LiquidationGasTest is GasBase {
    uint256 internal constant LIQUIDATE_TARGET = 150_000;
    address internal dave;
    uint256 internal daveKey;
    address internal erin;
    uint256 internal erinKey;
    mapping(uint256 => uint256) internal _minDeposit6;

    function setUp() public override {
        super.setUp();
        (dave, daveKey) = makeAddrAndKey("dave");
        (erin, erinKey) = makeAddrAndKey("erin");
        _fund(dave);
        _fund(erin);
        _depositCash(dave, 1_000_000e6);
        _depositCash(erin, 1_000_000e6);
        AccountLeaf[] memory start = new AccountLeaf[](5);
        start[0] = _leaf(alice, 1_000_000e18, 0, 0);
        start[1] = _leaf(bob, 1_000_000e18, 0, 0);
        start[2] = _leaf(carol, 5_000_000e18, 0, 0);
        start[3] = _leaf(dave, 1_000_000e18, 0, 0);
        start[4] = _leaf(erin, 1_000_000e18, 0, 0);
        _post(start);
        _openPositions(alice, aliceKey, 1);
        _openPositions(dave, daveKey, 20);
        _openPositions(erin, erinKey, 64);

        uint32[] memory perps = new uint32[](vault.instrumentCount() - 2);
        uint256 k;
        for (uint32 id = 1; id <= vault.instrumentCount(); ++id) {
            if (id != btcCall && id != btcPut) perps[k++] = id;
        }
        // Equity 90k against IM 150k and MM 100k: pay 60k to the owner, fee 15k, deposit ~135k.
        AccountLeaf[] memory real = new AccountLeaf[](4);
        real[0] = _leaf(alice, 90_000e18, 150_000e18, 100_000e18);
        real[1] = _leaf(dave, 90_000e18, 150_000e18, 100_000e18);
        real[2] = _leaf(erin, 90_000e18, 150_000e18, 100_000e18);
        real[3] = _leaf(carol, 5_000_000e18, 0, 0);
        Tree memory t = _tree(real, TREE_ACCOUNTS);
        _postRoot(_root(t), perps, 1e15);
        _storeProofs(t, real);
        uint256[3] memory victims = [aliceAcct, acctOf[dave], acctOf[erin]];
        for (uint256 i; i < victims.length; ++i) {
            (bool ok,,,,,, uint256 minDeposit6) = vault.checkLiquidation(victims[i], _mpStore[victims[i]]);
            assertTrue(ok);
            _minDeposit6[victims[i]] = minDeposit6;
        }
    }

    /// @dev `who` opens `n` positions of 1 unit, one per instrument (perps first), against bob.
    function _openPositions(address who, uint256 key, uint256 n) internal {
        uint32[] memory ids = new uint32[](n);
        uint256 k;
        for (uint32 id = 1; id <= vault.instrumentCount() && k < n; ++id) {
            if (id != btcCall && id != btcPut) ids[k++] = id;
        }
        if (k < n) ids[k++] = btcCall;
        if (k < n) ids[k++] = btcPut;
        for (uint256 start; start < n; start += 8) {
            uint256 m = n - start < 8 ? n - start : 8;
            Quote memory q;
            q.maker = who;
            q.makerAccount = acctOf[who];
            q.taker = bob;
            q.legs = new Leg[](m);
            for (uint256 i; i < m; ++i) {
                uint32 id = ids[start + i];
                q.legs[i] = Leg(id, 1e18, instLeaf[id].mark);
            }
            q.nonce = start;
            q.deadline = uint64(block.timestamp + 600);
            _fill(q, key, bob);
        }
        (,,,, uint32[] memory open,,,) = vault.accountState(acctOf[who]);
        assertEq(open.length, n);
    }

    function _liquidate(uint256 account, uint256 positions) internal returns (uint256 gasUsed) {
        MarginProof memory mp = _mpStore[account];
        uint256 deposit6 = _minDeposit6[account];
        _cool();
        vm.prank(carol);
        vault.liquidate(account, mp, deposit6, type(int256).max);
        gasUsed = _report(
            string.concat("liquidate (", vm.toString(positions), " positions, funding due on each perp)"),
            abi.encodeCall(vault.liquidate, (account, mp, deposit6, type(int256).max))
        );
        assertEq(vault.ownerOf(account), carol);
        (,,,, uint32[] memory kept,,,) = vault.accountState(account);
        assertEq(kept.length, positions); // nothing moved: the subaccount changed hands
        assertLe(gasUsed, LIQUIDATE_TARGET);
    }

    function test_gas_liquidate_1position() public {
        _liquidate(aliceAcct, 1);
    }

    function test_gas_liquidate_20positions() public {
        _liquidate(acctOf[dave], 20);
    }

    function test_gas_liquidate_64positions() public {
        _liquidate(acctOf[erin], 64);
    }

    /// @notice The claim itself: 1, 20 and 64 positions within 10 % of each other.
    function test_gas_liquidate_constantInPositions() public {
        uint256 g1 = _liquidate(aliceAcct, 1);
        uint256 g20 = _liquidate(acctOf[dave], 20);
        uint256 g64 = _liquidate(acctOf[erin], 64);
        console2.log("liquidate at 1 / 20 / 64 positions:", g1, g20, g64);
        uint256 lo = g1 < g20 ? (g1 < g64 ? g1 : g64) : (g20 < g64 ? g20 : g64);
        uint256 hi = g1 > g20 ? (g1 > g64 ? g1 : g64) : (g20 > g64 ? g20 : g64);
        assertLe(hi * 10, lo * 11, "liquidation gas grew with the number of positions");
    }
}

/// @notice The two open actions that change an account without a proof: `applyFunding` (alice
/// holds two perps whose funding index moved) and `settle` (alice's expired call). With the
/// rows above, every kind of action whose state change the state chain commits
/// (docs/protocol.md §9).
contract FundingSettleGasTest is GasBase {
    function setUp() public override {
        super.setUp();
        _depositCash(alice, 1_000_000e6);
        _depositCash(bob, 1_000_000e6);
        _post2(_leaf(alice, 1_000_000e18, 0, 0), _leaf(bob, 1_000_000e18, 0, 0));
        Quote memory q = _quote(alice, bob, btcPerp, 1e18, 60_000e18, 1);
        q.legs = new Leg[](3);
        q.legs[0] = Leg(btcPerp, 1e18, 60_000e18);
        q.legs[1] = Leg(ethPerp, -2e18, 3000e18);
        q.legs[2] = Leg(btcCall, 1e18, 2000e18);
        _fill(q, aliceKey, bob);
        vm.warp(EXPIRY);
        vm.roll(block.number + 1);
        Epoch memory e = _buildEpoch(new AccountLeaf[](0));
        e.timestamp = uint64(block.timestamp);
        e.funding = new FundingUpdate[](2);
        e.funding[0] = FundingUpdate(btcPerp, 10e18);
        e.funding[1] = FundingUpdate(ethPerp, -3e18);
        e.settlements = new Settlement[](1);
        e.settlements[0] = Settlement(btcCall, 65_000e18);
        _postHeader(e);
        vm.roll(block.number + 1);
    }

    function test_gas_applyFunding_twoPerps() public {
        _cool();
        vault.applyFunding(aliceAcct);
        _report("applyFunding (2 perps due, 1 option)", abi.encodeCall(vault.applyFunding, (aliceAcct)));
    }

    function test_gas_settle() public {
        _cool();
        vault.settle(aliceAcct, btcCall);
        _report("settle (expired call)", abi.encodeCall(vault.settle, (aliceAcct, btcCall)));
    }
}

/// @notice What proving an older state costs a disputer (docs/gas.md, docs/security.md):
/// `StateLens.proveStateAt` over 8 and 40 deltas after the checkpoint, for cash-only deltas
/// (depositCash) and for trade deltas on a subaccount holding 20 positions (each delta's old
/// value is searched among the open positions). The marginal gas per delta is the
/// difference over 32 deltas.
contract StateProofGasTest is GasBase {
    StateLens internal lens;
    StateChainGhost internal ghost;

    function setUp() public override {
        vm.recordLogs(); // from the start: the ghost must see every state event
        super.setUp();
        lens = new StateLens(address(vault));
        ghost = new StateChainGhost(vault);
        _depositCash(alice, 1_000_000e6);
        _depositCash(bob, 1_000_000e6);
        _post2(_leaf(alice, 1e24, 0, 0), _leaf(bob, 1e24, 0, 0));
    }

    function _prove(uint256 account, string memory what) internal returns (uint256 exec) {
        ghost.ingest(vm.getRecordedLogs());
        (uint64 seq, bytes24 chain, CommittedState memory s, StateDelta[] memory d) = ghost.proofInput(account);
        _cool();
        bytes32 h = lens.proveStateAt(account, seq, chain, s, d);
        exec = _report(what, abi.encodeCall(lens.proveStateAt, (account, seq, chain, s, d)));
        assertEq(h, StateChain.hashState(s));
    }

    function _cashDeltas(uint256 n) internal returns (uint256) {
        ghost.ingest(vm.getRecordedLogs());
        ghost.checkpoint(aliceAcct);
        for (uint256 i; i < n; ++i) {
            _depositCash(alice, 1e6);
        }
        // two deltas per depositCash: the cash, then the bounds (docs/protocol.md §9)
        return _prove(aliceAcct, string.concat("proveStateAt, ", vm.toString(2 * n), " deltas of depositCash"));
    }

    function test_gas_proveStateAt_cashDeltas() public {
        uint256 g8 = _cashDeltas(4);
        uint256 g40 = _cashDeltas(20);
        console2.log("proveStateAt per delta of depositCash (40 vs 8): execution", (g40 - g8) / 32);
    }

    /// @dev alice opens 20 positions (one leg per instrument, in quotes of 8 legs), then
    /// trades 1 unit more of the first `legs` of them: 3 deltas per leg (position, cash, bounds).
    function _tradeDeltas(uint256 legs) internal returns (uint256) {
        ghost.ingest(vm.getRecordedLogs());
        ghost.checkpoint(aliceAcct);
        for (uint256 start; start < legs; start += 8) {
            uint256 m = legs - start < 8 ? legs - start : 8;
            Quote memory q = _quote(alice, bob, btcPerp, 1e18, 60_000e18, ++_quoteNonce);
            q.legs = new Leg[](m);
            for (uint256 i; i < m; ++i) {
                uint32 id = _ids[(start + i) % _ids.length];
                q.legs[i] = Leg(id, 1e15, instLeaf[id].mark);
            }
            _fill(q, aliceKey, bob);
        }
        return _prove(aliceAcct, string.concat("proveStateAt, 20 positions, ", vm.toString(3 * legs), " trade deltas"));
    }

    uint32[] internal _ids;
    uint256 internal _quoteNonce = 1000;

    function test_gas_proveStateAt_tradeDeltas20Positions() public {
        for (uint32 id = 1; id <= vault.instrumentCount() && _ids.length < 20; ++id) {
            if (id != btcCall && id != btcPut) _ids.push(id);
        }
        assertEq(_ids.length, 20);
        _post2(_leaf(alice, 1e24, 0, 0), _leaf(bob, 1e24, 0, 0));
        _tradeDeltas(_ids.length); // opens the 20 positions
        uint256 g12 = _tradeDeltas(4);
        uint256 g60 = _tradeDeltas(20);
        console2.log("proveStateAt per trade delta at 20 positions (60 vs 12):", (g60 - g12) / 48);
    }
}

/// @notice The finality path with a challenge window (docs/protocol.md §10): postEpoch recording
/// its root (first fill of a ring slot, and the steady state that rewrites one), a withdrawal
/// queued and claimed, and a duplicate-leaf fraud proof in a tree of 10,000 accounts (proof
/// depth 14). alice holds a BTC perp, so her withdrawals rest on her leaf.
contract FinalityGasTest is GasBase {
    IFinality internal fin;
    AccountLeaf internal dupA;
    AccountLeaf internal dupB;
    bytes32[] internal proofA;
    bytes32[] internal proofB;

    function setUp() public override {
        super.setUp();
        fin = IFinality(address(vault));
        fin.setDisputeConfig(1 hours, 100_000e6);
        vm.prank(carol);
        fin.postBond(100_000e6);
        _fill(_quote(alice, bob, btcPerp, 1e18, 60_000e18, 1), aliceKey, bob);
        _deposit(alice, weth, 10e18);
        AccountLeaf[] memory real = new AccountLeaf[](4);
        real[0] = _leaf(alice, 1_030_000e18, 6000e18, 3000e18);
        real[1] = _leaf(bob, 1_000_000e18, 6000e18, 3000e18);
        real[2] = _leaf(carol, 5_000_000e18, 0, 0);
        real[3] = _leaf(alice, 9_000_000e18, 6000e18, 3000e18); // the duplicate
        Tree memory t = _tree(real, TREE_ACCOUNTS);
        _postRoot(_root(t), _twoPerps(), 1e18);
        _storeProofs(t, real);
        dupA = real[0];
        dupB = real[3];
        proofA = _accountProof(t, real, 0).proof;
        proofB = _accountProof(t, real, 3).proof;
        _mpStore[aliceAcct] = _accountProof(t, real, 0);
    }

    function test_gas_postEpoch_recordingTheRoot() public {
        _measuring = true;
        uint256 first = _postRoot(_rootOver(12), _twoPerps(), 1e18); // a new ring slot
        console2.log("postEpoch with a window, ring slot first written:", first);
        // 8,192 epochs later the slot is rewritten: the steady state
        vm.warp(block.timestamp + 1 hours + 1);
        nextEpoch += 8191;
        uint256 steady = _postRoot(_rootOver(13), _twoPerps(), 1e18);
        console2.log("postEpoch with a window, ring slot rewritten:", steady);
        assertLt(steady, first);
    }

    function test_gas_withdrawCash_queued() public {
        MarginProof memory mp = _mpStore[aliceAcct];
        _cool();
        vm.prank(alice);
        vault.withdrawCash(aliceAcct, 1000e6, mp);
        _report("withdrawCash queued (proof depth 14)", abi.encodeCall(vault.withdrawCash, (aliceAcct, 1000e6, mp)));
        vm.warp(block.timestamp + 1 hours);
        _cool();
        fin.claimWithdrawal(1);
        _report("claimWithdrawal", abi.encodeCall(fin.claimWithdrawal, (1)));
    }

    function test_gas_disputeDuplicateLeaf() public {
        uint64 epoch = nextEpoch - 1;
        _cool();
        vm.prank(bob);
        fin.disputeDuplicateLeaf(epoch, dupA, proofA, dupB, proofB);
        _report(
            "disputeDuplicateLeaf (proof depth 14)",
            abi.encodeCall(fin.disputeDuplicateLeaf, (epoch, dupA, proofA, dupB, proofB))
        );
        assertTrue(vault.isSafeMode());
    }
}
