// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Test} from "forge-std/Test.sol";

import {MarginVault} from "../../../contracts/MarginVault.sol";
import {EpochModule} from "../../../contracts/modules/EpochModule.sol";
import {ExchangeModule} from "../../../contracts/modules/ExchangeModule.sol";
import {FinalityModule} from "../../../contracts/modules/FinalityModule.sol";
import {DisputeModule} from "../../../contracts/modules/DisputeModule.sol";
import {InstrumentDisputeModule} from "../../../contracts/modules/InstrumentDisputeModule.sol";
import {MockERC20} from "../../../contracts/mocks/MockERC20.sol";
import {
    AccountLeaf,
    InstrumentLeaf,
    MarginProof,
    InstrumentProof,
    TokenPrice,
    FundingUpdate,
    Settlement,
    Epoch,
    Leg,
    Quote
} from "../../../contracts/interfaces/IMarginVault.sol";

/// @notice Shared fixture for the vault's forge tests (unit and invariant): deploys the mock
/// tokens (USDC 6, WETH 18, WBTC 8, GOV 18) and the vault, registers the tokens and four
/// instruments, sets 3 signers with quorum 2, gives alice, bob and carol one subaccount each
/// (`aliceAcct` = 1, `bobAcct` = 2, `carolAcct` = 3; `acctOf[user]`), and offers helpers to build a Merkle tree of
/// leaves (OpenZeppelin StandardMerkleTree layout, docs/protocol.md §3), post signed epochs and sign quotes.
/// Leaves are hashed here from the spec's formula, not through `Leaves`, so that the tests
/// check the vault's encoding instead of reusing it.
abstract contract BaseTest is Test {
    /// @dev The vault's modules for settlement token `token` (deployed apart, as
    /// scripts/protocol_deploy.py does; the vault's constructor checks them).
    function modulesFor(address token)
        internal
        returns (address epochModule, address exchangeModule, address finalityModule)
    {
        uint256 scale = 1;
        if (token.code.length != 0) {
            uint8 dec = MockERC20(token).decimals();
            if (dec <= 18) scale = 10 ** (18 - dec);
        }
        epochModule = address(new EpochModule());
        exchangeModule = address(new ExchangeModule(token, scale));
        finalityModule = address(new FinalityModule(token, scale, address(new DisputeModule(address(new InstrumentDisputeModule())))));
    }

    function newVault(address owner_, address token, uint64 maxAge, uint64 futureTolerance)
        internal
        returns (MarginVault)
    {
        (address em, address xm, address fm) = modulesFor(token);
        return new MarginVault(owner_, token, maxAge, futureTolerance, em, xm, fm);
    }

    uint64 internal constant MAX_AGE = 1 hours;
    uint64 internal constant FUTURE_TOLERANCE = 60;
    uint64 internal constant START_TIME = 1_700_000_000;
    uint64 internal constant EXPIRY = START_TIME + 7 days;

    MarginVault internal vault;
    MockERC20 internal usdc;
    MockERC20 internal weth;
    MockERC20 internal wbtc;
    MockERC20 internal gov;

    uint32 internal btcPerp;
    uint32 internal ethPerp;
    uint32 internal btcCall; // strike 60k, EXPIRY
    uint32 internal btcPut; // strike 60k, EXPIRY

    address internal owner;
    address internal alice;
    uint256 internal aliceKey;
    address internal bob;
    uint256 internal bobKey;
    address internal carol;
    uint256 internal carolKey;

    /// @dev Each user's first subaccount: the helpers below that take a user act on it.
    mapping(address => uint256) internal acctOf;
    uint256 internal aliceAcct;
    uint256 internal bobAcct;
    uint256 internal carolAcct;

    uint256[] internal signerKeys;
    address[] internal signerAddrs;

    /// @dev The token table posted with every epoch; tests change it before posting.
    TokenPrice[] internal prices;
    /// @dev The instrument leaves posted with every epoch (marks and losses per unit).
    mapping(uint32 => InstrumentLeaf) internal instLeaf;

    // The last posted tree, for proofs.
    bytes32[] internal treeLeaves;
    mapping(uint256 => AccountLeaf) internal lastAccountLeaf;
    mapping(uint256 => bool) internal inTree;
    uint256[] internal treeAccounts;
    uint64 internal nextEpoch = 1;

    function setUp() public virtual {
        vm.warp(START_TIME);
        vm.roll(100);
        owner = address(this);
        (alice, aliceKey) = makeAddrAndKey("alice");
        (bob, bobKey) = makeAddrAndKey("bob");
        (carol, carolKey) = makeAddrAndKey("carol");

        usdc = new MockERC20("USD Coin", "USDC", 6);
        weth = new MockERC20("Wrapped Ether", "WETH", 18);
        wbtc = new MockERC20("Wrapped BTC", "WBTC", 8);
        gov = new MockERC20("Governance", "GOV", 18);
        vault = newVault(owner, address(usdc), MAX_AGE, FUTURE_TOLERANCE);

        vault.registerToken(address(weth));
        vault.registerToken(address(wbtc));
        vault.registerToken(address(gov));
        prices.push(TokenPrice(address(weth), 3000e18, 0.2e18, 0.25e18));
        prices.push(TokenPrice(address(wbtc), 60_000e18, 0.15e18, 0.2e18));
        prices.push(TokenPrice(address(gov), 1e18, 0.5e18, 1e18));

        btcPerp = vault.registerInstrument(0, "BTC", 0, 0);
        ethPerp = vault.registerInstrument(0, "ETH", 0, 0);
        btcCall = vault.registerInstrument(1, "BTC", 60_000e18, EXPIRY);
        btcPut = vault.registerInstrument(2, "BTC", 60_000e18, EXPIRY);
        instLeaf[btcPerp] = InstrumentLeaf(btcPerp, 60_000e18, 6000e18, 6000e18, 0, bytes32(0));
        instLeaf[ethPerp] = InstrumentLeaf(ethPerp, 3000e18, 300e18, 300e18, 0, bytes32(0));
        instLeaf[btcCall] = InstrumentLeaf(btcCall, 2000e18, 2000e18, 8000e18, 0, bytes32(0));
        instLeaf[btcPut] = InstrumentLeaf(btcPut, 1500e18, 1500e18, 8000e18, 0, bytes32(0));

        for (uint256 i; i < 3; ++i) {
            (address a, uint256 k) = makeAddrAndKey(string.concat("signer", vm.toString(i)));
            signerKeys.push(k);
            signerAddrs.push(a);
        }
        vault.setSigners(signerAddrs, 2);

        address[3] memory users = [alice, bob, carol];
        for (uint256 i; i < users.length; ++i) {
            _fund(users[i]);
        }
        aliceAcct = acctOf[alice];
        bobAcct = acctOf[bob];
        carolAcct = acctOf[carol];
    }

    /* FUNDING USERS */

    /// @notice Mints and approves `user` everything, and creates its first subaccount.
    function _fund(address user) internal {
        vm.prank(user);
        acctOf[user] = vault.createSubaccount();
        usdc.mint(user, 10_000_000e6);
        weth.mint(user, 10_000e18);
        wbtc.mint(user, 1000e8);
        gov.mint(user, 10_000_000e18);
        vm.startPrank(user);
        usdc.approve(address(vault), type(uint256).max);
        weth.approve(address(vault), type(uint256).max);
        wbtc.approve(address(vault), type(uint256).max);
        gov.approve(address(vault), type(uint256).max);
        vm.stopPrank();
    }

    function _depositCash(address user, uint256 amount6) internal {
        vm.prank(user);
        vault.depositCash(acctOf[user], amount6);
    }

    function _deposit(address user, MockERC20 token, uint256 amount) internal {
        vm.prank(user);
        vault.deposit(acctOf[user], address(token), amount);
    }

    /* LEAVES AND TREE */

    function _hashAccountLeaf(AccountLeaf memory l) internal pure returns (bytes32) {
        return keccak256(
            bytes.concat(
                keccak256(
                    abi.encode(uint8(1), l.account, l.stateNonce, l.cumLo, l.cumHi, l.equity, l.im, l.mm, l.stateWord)
                )
            )
        );
    }

    function _hashInstrumentLeaf(InstrumentLeaf memory l) internal pure returns (bytes32) {
        return keccak256(
            bytes.concat(
                keccak256(
                    abi.encode(
                        uint8(2), l.instrument, l.mark, l.lossPerUnitLong, l.lossPerUnitShort, l.fundingIndex, l.vectorHash
                    )
                )
            )
        );
    }

    function _hashPair(bytes32 a, bytes32 b) internal pure returns (bytes32) {
        return a < b ? keccak256(abi.encodePacked(a, b)) : keccak256(abi.encodePacked(b, a));
    }

    function _sort(bytes32[] memory a) internal pure returns (bytes32[] memory) {
        for (uint256 i = 1; i < a.length; ++i) {
            bytes32 x = a[i];
            uint256 j = i;
            while (j > 0 && a[j - 1] > x) {
                a[j] = a[j - 1];
                --j;
            }
            a[j] = x;
        }
        return a;
    }

    /// @notice The tree as OpenZeppelin's StandardMerkleTree lays it out (docs/protocol.md §3):
    /// leaf hashes sorted ascending, stored at the end of a `2n - 1` array in reverse order,
    /// node i = hashPair(node 2i+1, node 2i+2).
    function _merkleTree(bytes32[] memory leaves) internal pure returns (bytes32[] memory tree) {
        require(leaves.length > 0, "empty tree");
        bytes32[] memory sorted = _sort(_copy(leaves));
        uint256 n = sorted.length;
        tree = new bytes32[](2 * n - 1);
        for (uint256 i; i < n; ++i) {
            tree[tree.length - 1 - i] = sorted[i];
        }
        for (uint256 i = n - 1; i > 0; --i) {
            tree[i - 1] = _hashPair(tree[2 * i - 1], tree[2 * i]);
        }
    }

    function _copy(bytes32[] memory a) internal pure returns (bytes32[] memory b) {
        b = new bytes32[](a.length);
        for (uint256 i; i < a.length; ++i) {
            b[i] = a[i];
        }
    }

    function _merkleRoot(bytes32[] memory leaves) internal pure returns (bytes32) {
        return _merkleTree(leaves)[0];
    }

    /// @notice Proof of `leaf` in `_merkleTree(leaves)`: the siblings from the leaf up.
    function _merkleProof(bytes32[] memory leaves, bytes32 leaf) internal pure returns (bytes32[] memory proof) {
        bytes32[] memory tree = _merkleTree(leaves);
        uint256 j = type(uint256).max;
        for (uint256 i = leaves.length - 1; i < tree.length; ++i) {
            if (tree[i] == leaf) j = i;
        }
        require(j != type(uint256).max, "leaf not in tree");
        bytes32[] memory buf = new bytes32[](64);
        uint256 n;
        while (j > 0) {
            buf[n++] = tree[j % 2 == 1 ? j + 1 : j - 1];
            j = (j - 1) / 2;
        }
        proof = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            proof[i] = buf[i];
        }
    }

    /// @notice An ACCOUNT leaf for `who`'s first subaccount with the vault's current nonce and
    /// running sums.
    function _leaf(address who, int256 equity, uint256 im, uint256 mm) internal view returns (AccountLeaf memory) {
        return _leafOf(acctOf[who], equity, im, mm);
    }

    function _leafOf(uint256 account, int256 equity, uint256 im, uint256 mm)
        internal
        view
        returns (AccountLeaf memory l)
    {
        (, uint64 nonce, int256 cumLo, int256 cumHi,,,,) = vault.accountState(account);
        l = AccountLeaf(account, nonce, cumLo, cumHi, equity, im, mm, vault.stateChain(account));
    }

    /* EPOCHS */

    function _header(bytes32 root) internal view returns (Epoch memory e) {
        e.epoch = nextEpoch;
        e.snapshotBlock = uint64(block.number - 1);
        e.timestamp = uint64(block.timestamp);
        e.root = root;
        e.configVersion = vault.configVersion();
        e.tokens = prices;
        e.funding = new FundingUpdate[](0);
        e.settlements = new Settlement[](0);
    }

    /// @notice Signatures of `keys` over the epoch digest, sorted by signer address.
    function _signEpoch(Epoch memory e, uint256[] memory keys) internal view returns (bytes[] memory sigs) {
        bytes32 digest = vault.hashEpoch(e);
        sigs = new bytes[](keys.length);
        // Sort keys by address (insertion sort, few keys).
        for (uint256 i = 1; i < keys.length; ++i) {
            uint256 k = keys[i];
            uint256 j = i;
            while (j > 0 && vm.addr(keys[j - 1]) > vm.addr(k)) {
                keys[j] = keys[j - 1];
                --j;
            }
            keys[j] = k;
        }
        for (uint256 i; i < keys.length; ++i) {
            sigs[i] = _sign(keys[i], digest);
        }
    }

    function _sign(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    function _quorumKeys() internal view returns (uint256[] memory keys) {
        keys = new uint256[](2);
        keys[0] = signerKeys[0];
        keys[1] = signerKeys[1];
    }

    /// @notice Builds the tree (all instrument leaves + `accounts`), then the header.
    function _buildEpoch(AccountLeaf[] memory accounts) internal returns (Epoch memory e) {
        uint32 n = vault.instrumentCount();
        delete treeLeaves;
        for (uint256 i; i < treeAccounts.length; ++i) {
            inTree[treeAccounts[i]] = false;
        }
        delete treeAccounts;
        for (uint32 id = 1; id <= n; ++id) {
            if (instLeaf[id].instrument == id) treeLeaves.push(_hashInstrumentLeaf(instLeaf[id]));
        }
        for (uint256 i; i < accounts.length; ++i) {
            treeLeaves.push(_hashAccountLeaf(accounts[i]));
            lastAccountLeaf[accounts[i].account] = accounts[i];
            inTree[accounts[i].account] = true;
            treeAccounts.push(accounts[i].account);
        }
        e = _header(_merkleRoot(treeLeaves));
    }

    /// @notice Posts an epoch over `accounts` (plus every instrument leaf), signed by a quorum.
    function _post(AccountLeaf[] memory accounts) internal returns (Epoch memory e) {
        vm.roll(block.number + 1);
        e = _buildEpoch(accounts);
        _postHeader(e);
    }

    /// @dev An epoch in the next block that only sets perp `id`'s funding index.
    function _postFunding(uint32 id, int256 f) internal {
        vm.roll(block.number + 1);
        Epoch memory e = _buildEpoch(new AccountLeaf[](0));
        e.funding = new FundingUpdate[](1);
        e.funding[0] = FundingUpdate(id, f);
        _postHeader(e);
    }

    /// @dev An epoch in the next block that only sets option `id`'s settlement price.
    function _postSettlement(uint32 id, uint256 price) internal {
        vm.roll(block.number + 1);
        Epoch memory e = _buildEpoch(new AccountLeaf[](0));
        e.settlements = new Settlement[](1);
        e.settlements[0] = Settlement(id, price);
        _postHeader(e);
    }

    function _postHeader(Epoch memory e) internal {
        vault.postEpoch(e, _signEpoch(e, _quorumKeys()));
        nextEpoch = e.epoch + 1;
    }

    function _post() internal returns (Epoch memory) {
        return _post(new AccountLeaf[](0));
    }

    function _post1(AccountLeaf memory a) internal returns (Epoch memory) {
        AccountLeaf[] memory l = new AccountLeaf[](1);
        l[0] = a;
        return _post(l);
    }

    function _post2(AccountLeaf memory a, AccountLeaf memory b) internal returns (Epoch memory) {
        AccountLeaf[] memory l = new AccountLeaf[](2);
        l[0] = a;
        l[1] = b;
        return _post(l);
    }

    function _post3(AccountLeaf memory a, AccountLeaf memory b, AccountLeaf memory c) internal returns (Epoch memory) {
        AccountLeaf[] memory l = new AccountLeaf[](3);
        l[0] = a;
        l[1] = b;
        l[2] = c;
        return _post(l);
    }

    /// @notice The leaf of `who`'s first subaccount in the last posted tree with its proof
    /// (empty if not in the tree).
    function _mp(address who) internal view returns (MarginProof memory) {
        return _mpOf(acctOf[who]);
    }

    function _mpOf(uint256 account) internal view returns (MarginProof memory mp) {
        if (!inTree[account]) return mp;
        mp.leaf = lastAccountLeaf[account];
        mp.proof = _merkleProof(treeLeaves, _hashAccountLeaf(mp.leaf));
    }

    function _ip(uint32 id) internal view returns (InstrumentProof memory ip) {
        ip.leaf = instLeaf[id];
        ip.proof = _merkleProof(treeLeaves, _hashInstrumentLeaf(ip.leaf));
    }

    /* QUOTES */

    /// @notice A one-leg quote of `maker` for its first subaccount, takeable by `taker` only.
    function _quote(address maker, address taker, uint32 id, int256 size, uint256 price, uint256 nonce)
        internal
        view
        returns (Quote memory q)
    {
        q.maker = maker;
        q.makerAccount = acctOf[maker];
        q.taker = taker;
        q.legs = new Leg[](1);
        q.legs[0] = Leg(id, size, price);
        q.nonce = nonce;
        q.deadline = uint64(block.timestamp + 600);
    }

    function _signQuote(Quote memory q, uint256 key) internal view returns (bytes memory) {
        return _sign(key, vault.hashQuote(q));
    }

    function _legProofs(Quote memory q) internal view returns (InstrumentProof[] memory ips) {
        ips = new InstrumentProof[](q.legs.length);
        for (uint256 i; i < q.legs.length; ++i) {
            ips[i] = _ip(q.legs[i].instrument);
        }
    }

    /// @notice `taker` fills `q` signed by `makerKey` for its first subaccount, with both
    /// subaccounts' last leaves.
    function _fill(Quote memory q, uint256 makerKey, address taker) internal {
        _fillAs(q, makerKey, taker, acctOf[taker]);
    }

    function _fillAs(Quote memory q, uint256 makerKey, address taker, uint256 takerAccount) internal {
        bytes memory sig = _signQuote(q, makerKey);
        InstrumentProof[] memory ips = _legProofs(q);
        MarginProof memory mpMaker = _mpOf(q.makerAccount);
        MarginProof memory mpTaker = _mpOf(takerAccount);
        vm.prank(taker);
        vault.executeQuote(q, sig, ips, mpMaker, takerAccount, mpTaker);
    }

    /* READS */

    function _cash(address who) internal view returns (int256) {
        return _cashOf(acctOf[who]);
    }

    function _cashOf(uint256 account) internal view returns (int256 cash) {
        (cash,,,,,,,) = vault.accountState(account);
    }

    function _cum(address who) internal view returns (int256, int256) {
        return _cumOf(acctOf[who]);
    }

    function _cumOf(uint256 account) internal view returns (int256 lo, int256 hi) {
        (,, lo, hi,,,,) = vault.accountState(account);
    }

    function _nonce(address who) internal view returns (uint64 n) {
        (, n,,,,,,) = vault.accountState(acctOf[who]);
    }

    function _size(address who, uint32 id) internal view returns (int256) {
        return _sizeOf(acctOf[who], id);
    }

    function _sizeOf(uint256 account, uint32 id) internal view returns (int256 s) {
        (s,) = vault.position(account, id);
    }

    function _emptyProof() internal pure returns (MarginProof memory mp) {}
}
