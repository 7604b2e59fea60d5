// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Vm} from "forge-std/Vm.sol";

import {BaseTest} from "../unit/BaseTest.sol";
import {StateChainGhost} from "../mocks/StateChainGhost.sol";
import {StateLens} from "../../../contracts/StateLens.sol";
import {MarginVault} from "../../../contracts/MarginVault.sol";
import {MockERC20} from "../../../contracts/mocks/MockERC20.sol";
import {WAD} from "../../../contracts/libraries/FixedPoint.sol";
import {
    AccountLeaf,
    AccountState,
    Epoch,
    FundingUpdate,
    Instrument,
    InstrumentKind,
    InstrumentLeaf,
    InstrumentProof,
    MarginProof,
    Quote,
    Settlement
} from "../../../contracts/interfaces/IMarginVault.sol";

/// @title VaultModel
/// @notice The invariant suite's world: the deployed vault (BaseTest's fixture), five actors
/// with keys and two subaccounts each (ten accounts, whose owners change by transfer and by
/// liquidation), a market, a simple linear risk model that gives the TRUE numbers of every
/// account, the epoch poster (whose leaves are those true numbers), and the ghost ledgers
/// that the invariants of docs/invariants.md compare the vault against.
/// @dev The linear model (docs/invariants.md, "The model"): under the current prices,
///   equity = cash - pending funding + sum(collateral * price) + sum(size * mark)
///   IM     = sum(|size| * loss(side)) + sum(collateral value * downShock)
///   MM     = IM / 2 (per term)
/// A requirement that is a sum of |size| * per-unit loss is convex and positively homogeneous,
/// hence subadditive, and the INSTRUMENT leaf posts exactly that per-unit loss, so the model
/// meets the engine's contract of docs/protocol.md §5. Prices, funding and settlement prices
/// move ONLY together with a posted epoch: between two epochs the vault's attested market is
/// the true market, and every ghost check compares against it.
contract VaultModel is BaseTest {
    uint256 public constant N_ACTORS = 5;
    uint256 public constant N_ACCOUNTS = 10; // two subaccounts per actor
    uint256 internal constant MM_FRACTION = 0.5e18; // MM per term = IM per term / 2
    /// @notice Wei of rounding the posted leaf may cost an account (one per rounded term,
    /// rounded against the account, docs/protocol.md §1); ghost checks allow it, no more.
    int256 public constant DUST = 100;
    uint256 internal constant SHORT_EXPIRY_DELAY = 1 hours;

    address[] internal _actors;
    uint256[] internal _accountIds; // every subaccount, in creation order
    mapping(address => uint256) public keyOf;
    MockERC20[] internal _collateral; // weth, wbtc, gov (registration order)

    /// @notice A BTC call that expires within a run, so that settlement is exercised.
    uint32 public shortCall;

    /* MARKET (the truth; posted with every epoch) */

    uint256 public btcSpot; // WAD USD
    uint256 public ethSpot;
    uint256 public govSpot;
    mapping(uint32 => int256) public modelFunding; // cumulative index, WAD USD per unit
    mapping(uint32 => bool) public modelSettled;
    mapping(uint32 => uint256) public modelSettlementPrice;

    /* GHOSTS */

    /// @notice Settlement-token units that entered minus left the vault, x 1e12 (WAD):
    /// cash deposits - cash withdrawals + insurance deposits - insurance withdrawals +
    /// liquidation deposits - payout claims.
    int256 public ghostNetCash;
    mapping(address => uint256) public ghostNetCollateral; // per token, own decimals
    /// @notice The insurance fund as the named flows make it: deposits + fees - covered.
    uint256 public ghostInsurance;
    uint256 public ghostBadDebt;
    /// @notice Sizes of an option that left the books through `settle` (turned into cash).
    mapping(uint32 => int256) public ghostSettledSize;
    /// @notice Upper bound of the rounding operations that may each destroy one wei of cash.
    uint256 public ghostRoundingOps;
    bytes32 public ghostRoot;
    uint64 public ghostEpoch;
    mapping(address => uint256) public nextNonce;
    mapping(bytes32 => uint256) public calls;
    uint256[] internal _scale; // 10**decimals of each collateral token
    /// @dev Registered once in setUp; cached so that the per-call checks stay cheap.
    mapping(uint32 => Instrument) internal _instrumentCache;
    mapping(uint256 => bytes32[]) internal _accountProof;
    mapping(uint32 => bytes32[]) internal _instrumentProof;
    /// @notice The first ghost check that failed, empty while none has (INV-6 .. INV-9).
    string public violation;

    /// @notice The keeper's state chain rebuilt from the vault's logs (INV-16, INV-17), and
    /// the lens that proves its checkpoints.
    StateChainGhost public stateGhost;
    StateLens public stateLens;
    /// @dev A checkpoint moves to the state now once this many deltas follow it, so that every
    /// check proves a window of up to this many deltas (plus one call's).
    uint256 internal constant STATE_WINDOW = 8;

    function setUp() public override {
        super.setUp();
        stateGhost = new StateChainGhost(vault);
        stateLens = new StateLens(address(vault));
        vm.recordLogs();
        _actors.push(alice);
        _actors.push(bob);
        _actors.push(carol);
        keyOf[alice] = aliceKey;
        keyOf[bob] = bobKey;
        keyOf[carol] = carolKey;
        string[2] memory extra = ["dave", "erin"];
        for (uint256 i; i < extra.length; ++i) {
            (address a, uint256 k) = makeAddrAndKey(extra[i]);
            _fund(a);
            _actors.push(a);
            keyOf[a] = k;
        }
        _collateral.push(weth);
        _collateral.push(wbtc);
        _collateral.push(gov);
        for (uint256 k; k < _collateral.length; ++k) {
            _scale.push(10 ** _collateral[k].decimals());
        }

        shortCall = vault.registerInstrument(1, "BTC", 60_000e18, START_TIME + uint64(SHORT_EXPIRY_DELAY));
        for (uint32 id = 1; id <= shortCall; ++id) {
            _instrumentCache[id] = vault.instrument(id);
        }
        btcSpot = 60_000e18;
        ethSpot = 3000e18;
        govSpot = 1e18;

        // Two subaccounts per actor (the first made by `_fund`), each starting with $200k of
        // cash so that the first trades have room.
        // ids 1..5: the actors' first subaccounts (account(i) is actor(i)'s), 6..10: their second
        for (uint256 i; i < _actors.length; ++i) {
            _accountIds.push(acctOf[_actors[i]]);
        }
        for (uint256 i; i < _actors.length; ++i) {
            vm.prank(_actors[i]);
            _accountIds.push(vault.createSubaccount());
        }
        for (uint256 i; i < _accountIds.length; ++i) {
            vm.prank(vault.ownerOf(_accountIds[i]));
            vault.depositCash(_accountIds[i], 200_000e6);
            ghostNetCash += 200_000e18;
        }
        postTruthfulEpoch();
        observeLogs(vm.getRecordedLogs());
        for (uint256 i; i < _accountIds.length; ++i) {
            stateGhost.checkpoint(_accountIds[i]);
        }
    }

    /// @notice The handlers pass the logs of their successful vault calls (INV-16).
    function observeLogs(Vm.Log[] memory logs) public {
        stateGhost.ingest(logs);
        for (uint256 i; i < _accountIds.length; ++i) {
            if (stateGhost.pending(_accountIds[i]) >= STATE_WINDOW) stateGhost.checkpoint(_accountIds[i]);
        }
    }

    /* ACCESSORS FOR THE HANDLERS AND THE SUITE */

    function getVault() external view returns (MarginVault) {
        return vault;
    }

    function usdcToken() external view returns (MockERC20) {
        return usdc;
    }

    function actors() external view returns (address[] memory) {
        return _actors;
    }

    function actor(uint256 seed) external view returns (address) {
        return _actors[seed % _actors.length];
    }

    /// @notice Index of `who` in `actors()`.
    function actorIndex(address who) external view returns (uint256 i) {
        while (_actors[i] != who) ++i;
    }

    function accounts() external view returns (uint256[] memory) {
        return _accountIds;
    }

    function accountAt(uint256 seed) external view returns (uint256) {
        return _accountIds[seed % _accountIds.length];
    }

    function collateralTokens() external view returns (MockERC20[] memory) {
        return _collateral;
    }

    /// @notice `account`'s leaf in the last posted tree with its proof (empty if not in it).
    /// Proofs are computed once per epoch (BaseTest's builder) and cached: the suite asks for
    /// them after every call.
    function mp(uint256 account) external view returns (MarginProof memory m) {
        if (!inTree[account]) return m;
        m.leaf = lastAccountLeaf[account];
        m.proof = _accountProof[account];
    }

    function ip(uint32 id) external view returns (InstrumentProof memory p) {
        p.leaf = instLeaf[id];
        p.proof = _instrumentProof[id];
    }

    function instrumentLeaf(uint32 id) external view returns (InstrumentLeaf memory) {
        return instLeaf[id];
    }

    /// @notice The leaf of `account` in the last posted tree (zero if none).
    function postedLeaf(uint256 account) external view returns (AccountLeaf memory) {
        return lastAccountLeaf[account];
    }

    function signQuote(Quote memory q) external view returns (bytes memory) {
        return _signQuote(q, keyOf[q.maker]);
    }

    function takeNonce(address maker) external returns (uint256) {
        return nextNonce[maker]++;
    }

    /* GHOST LEDGER ENTRIES (called by the handlers after a successful action) */

    function recordCash(int256 wad) external {
        ghostNetCash += wad;
    }

    function recordCollateral(address token, int256 amount) external {
        ghostNetCollateral[token] = uint256(int256(ghostNetCollateral[token]) + amount);
    }

    function recordInsurance(uint256 plus, uint256 minus) external {
        ghostInsurance = ghostInsurance + plus - minus;
    }

    function recordPayoutClaimed(uint256 amount6) external {
        ghostNetCash -= int256(amount6 * 1e12);
    }

    function recordBadDebt(uint256 amount) external {
        ghostBadDebt += amount;
    }

    function recordSettled(uint32 id, int256 size) external {
        ghostSettledSize[id] += size;
    }

    function recordRounding(uint256 ops) external {
        ghostRoundingOps += ops;
    }

    /// @notice A ghost check failed (the first failure is kept): handlers record instead of
    /// reverting, since a reverting handler call is discarded by the fuzzer.
    function flag(string calldata reason) external {
        if (bytes(violation).length == 0) violation = reason;
    }

    function count(bytes32 what) external {
        ++calls[what];
    }

    /* MARKET MOVES AND EPOCHS */

    /// @notice Moves the market by the given factors (WAD) and funding deltas, settles the
    /// options that have expired, and posts the epoch whose leaves are the model's truth.
    function moveMarket(uint256 btcFactor, uint256 ethFactor, uint256 govFactor, int256 btcFunding, int256 ethFunding)
        external
    {
        btcSpot = _clamp(btcSpot * btcFactor / WAD, 10_000e18, 300_000e18);
        ethSpot = _clamp(ethSpot * ethFactor / WAD, 500e18, 15_000e18);
        govSpot = _clamp(govSpot * govFactor / WAD, 0.05e18, 20e18);
        modelFunding[btcPerp] += btcFunding;
        modelFunding[ethPerp] += ethFunding;
        postTruthfulEpoch();
    }

    /// @notice Posts an epoch with the model's true numbers for every subaccount.
    function postTruthfulEpoch() public returns (Epoch memory e) {
        return _postWithLie(0, 0, 0);
    }

    /// @notice TEST HOOK: posts an epoch in which subaccount `liar`'s leaf overstates its
    /// equity by `equityLie` and its MM by `mmLie` (the handlers never call it). The ghost-check
    /// tests use it to show that the checks do fail when the posted numbers are not the truth.
    function postEpochWithLie(uint256 liar, int256 equityLie, int256 mmLie) external returns (Epoch memory) {
        return _postWithLie(liar, equityLie, mmLie);
    }

    function _postWithLie(uint256 liar, int256 equityLie, int256 mmLie) internal returns (Epoch memory e) {
        vm.roll(block.number + 1);
        Settlement[] memory settlements = _newSettlements();
        _refreshMarket();
        AccountLeaf[] memory leaves = new AccountLeaf[](_accountIds.length);
        for (uint256 i; i < _accountIds.length; ++i) {
            (int256 eq, uint256 im, uint256 mm) = _truth(_accountIds[i], false);
            if (_accountIds[i] == liar) {
                eq += equityLie;
                mm = uint256(int256(mm) + mmLie);
            }
            leaves[i] = _leafOf(_accountIds[i], eq, im, mm);
        }
        e = _buildEpoch(leaves);
        e.funding = new FundingUpdate[](2);
        e.funding[0] = FundingUpdate(btcPerp, modelFunding[btcPerp]);
        e.funding[1] = FundingUpdate(ethPerp, modelFunding[ethPerp]);
        e.settlements = settlements;
        _postHeader(e);
        // Accounts act in later blocks than the post: a change mined in the posting block could
        // precede the post, and the vault then treats it as priced by the previous epoch.
        vm.roll(block.number + 1);
        _cacheProofs();
        ghostRoot = e.root;
        ghostEpoch = e.epoch;
    }

    function _cacheProofs() internal {
        for (uint256 i; i < _accountIds.length; ++i) {
            _accountProof[_accountIds[i]] = _mpOf(_accountIds[i]).proof;
        }
        uint32 n = vault.instrumentCount();
        for (uint32 id = 1; id <= n; ++id) {
            _instrumentProof[id] = _ip(id).proof;
        }
    }

    /// @dev Options that expired by now and have no settlement price settle at the spot.
    function _newSettlements() internal returns (Settlement[] memory s) {
        uint32 n = vault.instrumentCount();
        Settlement[] memory buf = new Settlement[](n);
        uint256 k;
        for (uint32 id = 1; id <= n; ++id) {
            Instrument memory ins = _instrumentCache[id];
            if (ins.kind == InstrumentKind.PERP || modelSettled[id] || ins.expiry > block.timestamp) continue;
            modelSettled[id] = true;
            modelSettlementPrice[id] = btcSpot;
            buf[k++] = Settlement(id, btcSpot);
        }
        s = new Settlement[](k);
        for (uint256 i; i < k; ++i) {
            s[i] = buf[i];
        }
    }

    /// @dev Token table and INSTRUMENT leaves from the current spots.
    function _refreshMarket() internal {
        prices[0].price = ethSpot;
        prices[1].price = btcSpot;
        prices[2].price = govSpot;
        uint32 n = vault.instrumentCount();
        for (uint32 id = 1; id <= n; ++id) {
            instLeaf[id] = _instrumentTruth(id);
        }
    }

    /// @notice The model's mark and per-unit losses of `id` under the current spots.
    /// Perp: mark = spot, loss = 10% (BTC) / 12% (ETH) of spot either side. Option: mark =
    /// intrinsic + 2% of spot; a long loses at most its mark, a short 15% of spot. A settled
    /// option is worth its payoff and carries no risk.
    function _instrumentTruth(uint32 id) internal view returns (InstrumentLeaf memory l) {
        Instrument memory ins = _instrumentCache[id];
        l.instrument = id;
        uint256 s = ins.underlying == bytes32("BTC") ? btcSpot : ethSpot;
        if (ins.kind == InstrumentKind.PERP) {
            uint256 loss = s * (ins.underlying == bytes32("BTC") ? 10 : 12) / 100;
            return InstrumentLeaf(id, s, loss, loss, 0, bytes32(0));
        }
        if (modelSettled[id]) {
            return InstrumentLeaf(id, _payoff(ins, modelSettlementPrice[id]), 0, 0, 0, bytes32(0));
        }
        l.mark = _payoff(ins, s) + s / 50;
        l.lossPerUnitLong = l.mark;
        l.lossPerUnitShort = s * 15 / 100;
    }

    function _payoff(Instrument memory ins, uint256 s) internal pure returns (uint256) {
        if (ins.kind == InstrumentKind.CALL) return s > ins.strike ? s - ins.strike : 0;
        return ins.strike > s ? ins.strike - s : 0;
    }

    function _clamp(uint256 x, uint256 lo, uint256 hi) internal pure returns (uint256) {
        return x < lo ? lo : x > hi ? hi : x;
    }

    /* THE TRUTH */

    /// @notice The model's equity, IM and MM of subaccount `account` now, at the attested
    /// market. With `generous = false` rounded as a leaf is (equity down, requirements up): a
    /// lower bound of the exact surplus; with `generous = true` the other way: an upper bound.
    function truth(uint256 account, bool generous) external view returns (int256 equity, uint256 im, uint256 mm) {
        return _truth(account, generous);
    }

    /// @notice True IM surplus (equity - IM), rounded as `truth`.
    function imSurplus(uint256 account, bool generous) external view returns (int256) {
        (int256 eq, uint256 im,) = _truth(account, generous);
        return eq - int256(im);
    }

    /// @notice True MM surplus (equity - MM), rounded as `truth`.
    function mmSurplus(uint256 account, bool generous) external view returns (int256) {
        (int256 eq,, uint256 mm) = _truth(account, generous);
        return eq - int256(mm);
    }

    function _truth(uint256 account, bool up) internal view returns (int256 equity, uint256 im, uint256 mm) {
        uint256[] memory one = new uint256[](1);
        one[0] = account;
        return _truthOf(vault.accountStates(one)[0], up);
    }

    function _truthOf(AccountState memory st, bool up) internal view returns (int256 equity, uint256 im, uint256 mm) {
        equity = st.cash;
        for (uint256 i; i < st.instruments.length; ++i) {
            (int256 v, uint256 req) = _positionTerms(st.instruments[i], st.sizes[i], st.fundingIndexAtLastUpdate[i], up);
            equity += v;
            im += req;
            mm += _mulWadU(req, MM_FRACTION, !up);
        }
        for (uint256 k; k < st.collateralBalances.length; ++k) {
            if (st.collateralBalances[k] == 0) continue;
            (uint256 v, uint256 haircut) = _collateralTerms(k, st.collateralBalances[k], up);
            equity += int256(v);
            im += haircut;
            mm += _mulWadU(haircut, MM_FRACTION, !up);
        }
    }

    /// @dev Value (size * mark - pending funding) and IM (|size| * loss of its side) of a position.
    function _positionTerms(uint32 id, int256 size, int256 fIdx, bool up)
        internal
        view
        returns (int256 value, uint256 req)
    {
        InstrumentLeaf memory l = instLeaf[id];
        value = _mulWad(size, int256(l.mark), up);
        if (_instrumentCache[id].kind == InstrumentKind.PERP) {
            // the vault charges ceil(size * dF): the generous side counts the floor
            value -= _mulWad(size, modelFunding[id] - fIdx, !up);
        }
        uint256 absSize = size >= 0 ? uint256(size) : uint256(-size);
        req = _mulWadU(absSize, size > 0 ? l.lossPerUnitLong : l.lossPerUnitShort, !up);
    }

    /// @dev Value and haircut (value * downShock) of a collateral balance (token index `k`).
    function _collateralTerms(uint256 k, uint256 bal, bool up) internal view returns (uint256 v, uint256 haircut) {
        uint256 scale = _scale[k];
        v = _divU(bal * prices[k].price, scale, up);
        haircut = _mulWadU(_divU(bal * prices[k].price, scale, !up), prices[k].downShock, !up);
    }

    function _mulWad(int256 x, int256 y, bool up) internal pure returns (int256) {
        int256 p = x * y;
        int256 q = p / int256(WAD);
        if (p % int256(WAD) != 0) {
            if (up && p > 0) q += 1;
            if (!up && p < 0) q -= 1;
        }
        return q;
    }

    function _mulWadU(uint256 x, uint256 y, bool up) internal pure returns (uint256) {
        return _divU(x * y, WAD, up);
    }

    function _divU(uint256 x, uint256 d, bool up) internal pure returns (uint256) {
        return up ? (x + d - 1) / d : x / d;
    }

    /* AGGREGATES FOR THE INVARIANTS */

    /// @notice sum(cash) + insurance + claimable payouts - pending funding (as the vault would
    /// charge it) + pending settlement cash (as the vault would pay it): the cash the vault
    /// owes, net.
    function netCashOwed(AccountState[] memory st) public view returns (int256 s) {
        s = int256(vault.insuranceFund());
        for (uint256 i; i < _actors.length; ++i) {
            s += int256(vault.payoutOf(_actors[i]));
        }
        uint32 n = shortCall;
        int256[] memory f = new int256[](n + 1);
        int256[] memory payoff = new int256[](n + 1);
        bool[] memory isSet = new bool[](n + 1);
        for (uint32 id = 1; id <= n; ++id) {
            Instrument memory ins = _instrumentCache[id];
            if (ins.kind == InstrumentKind.PERP) {
                f[id] = vault.cumFunding(id);
            } else {
                uint256 price;
                (price, isSet[id]) = vault.settlementPrice(id);
                payoff[id] = int256(_payoff(ins, price));
            }
        }
        for (uint256 i; i < st.length; ++i) {
            s += st[i].cash;
            for (uint256 j; j < st[i].instruments.length; ++j) {
                uint32 id = st[i].instruments[j];
                if (_instrumentCache[id].kind == InstrumentKind.PERP) {
                    s -= _mulWad(st[i].sizes[j], f[id] - st[i].fundingIndexAtLastUpdate[j], true);
                } else if (isSet[id]) {
                    s += _mulWad(st[i].sizes[j], payoff[id], false);
                }
            }
        }
    }

    /// @notice Whether `account`'s leaf in the current tree still matches its state nonce.
    function leafLive(uint256 account) public view returns (bool) {
        (, uint64 nonce,,,,,,) = vault.accountState(account);
        return inTree[account] && lastAccountLeaf[account].stateNonce == nonce;
    }

    /// @notice What the suite's checks need, gathered in one call (each external call costs
    /// the fuzzer time; the checks run after every call of a campaign).
    struct Ghosts {
        int256 netCash;
        uint256 roundingOps;
        uint256 insurance;
        uint256 badDebt;
        uint256[] netCollateral; // per collateral token
        int256[] settledSize; // per instrument id (index 0 unused)
        bytes32 root;
        uint64 epoch;
        string violation;
    }

    function ghosts() external view returns (Ghosts memory g) {
        g.netCash = ghostNetCash;
        g.roundingOps = ghostRoundingOps;
        g.insurance = ghostInsurance;
        g.badDebt = ghostBadDebt;
        g.netCollateral = new uint256[](_collateral.length);
        for (uint256 k; k < _collateral.length; ++k) {
            g.netCollateral[k] = ghostNetCollateral[address(_collateral[k])];
        }
        g.settledSize = new int256[](shortCall + 1);
        for (uint32 id = 1; id <= shortCall; ++id) {
            g.settledSize[id] = ghostSettledSize[id];
        }
        g.root = ghostRoot;
        g.epoch = ghostEpoch;
        g.violation = violation;
    }

    /// @notice For every subaccount with a live leaf (INV-11): the vault's imSurplusLo and
    /// mmSurplusHi, and the true IM surplus (generous: an upper bound of the exact one) and MM
    /// surplus (leaf rounding: a lower bound).
    struct Sandwich {
        bool live;
        int256 imSurplusLo;
        int256 trueImUp;
        int256 mmSurplusHi;
        int256 trueMmDown;
    }

    function sandwich(AccountState[] memory st) external view returns (Sandwich[] memory r) {
        r = new Sandwich[](st.length);
        for (uint256 i; i < st.length; ++i) {
            uint256 a = _accountIds[i];
            r[i].live = inTree[a] && lastAccountLeaf[a].stateNonce == st[i].stateNonce;
            if (!r[i].live) continue;
            MarginProof memory m = MarginProof(lastAccountLeaf[a], _accountProof[a]);
            r[i].imSurplusLo = vault.imSurplusLo(a, m);
            r[i].mmSurplusHi = vault.mmSurplusHi(a, m);
            (int256 eq, uint256 im,) = _truthOf(st[i], true);
            r[i].trueImUp = eq - int256(im);
            uint256 mm;
            (eq,, mm) = _truthOf(st[i], false);
            r[i].trueMmDown = eq - int256(mm);
        }
    }
}
