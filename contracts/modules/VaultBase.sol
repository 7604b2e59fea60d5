// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

import {
    AccountLeaf,
    Instrument,
    InstrumentKind,
    InstrumentLeaf,
    InstrumentProof,
    MarginProof,
    TokenPrice,
    LiquidationQuote
} from "../interfaces/IMarginVault.sol";
import {PendingWithdrawal} from "../interfaces/IFinality.sol";
import {FixedPoint} from "../libraries/FixedPoint.sol";
import {MarginBounds} from "../libraries/MarginBounds.sol";
import {Leaves} from "../libraries/Leaves.sol";
import {LiquidationLib} from "../libraries/LiquidationLib.sol";
import {StateChain} from "../libraries/StateChain.sol";
import {Errors} from "../interfaces/Errors.sol";
import {Events} from "../interfaces/Events.sol";

/// @title VaultBase
/// @notice The vault's storage and the internal steps that more than one entry point uses
/// (lookups, the running bounds, the IM gate, leaf checks, positions and funding).
/// @dev `MarginVault` and its modules all inherit exactly this contract and declare no other
/// storage, so a module delegatecalled by the vault reads and writes the vault's state. Add
/// state only here, only at the end.
abstract contract VaultBase is Ownable2Step, ReentrancyGuard, EIP712, Errors, Events {
    using FixedPoint for uint256;

    /* CONSTANTS */

    uint256 internal constant MAX_TOKENS = 16;
    uint256 internal constant MAX_POSITIONS = 64;
    uint256 internal constant MAX_SIGNERS = 32;
    uint256 internal constant MAX_LEGS = 8;
    /// @dev Roots kept for disputes; a post whose slot still holds a root inside its window
    /// reverts `EpochHistoryFull` (docs/protocol.md §10).
    uint256 internal constant EPOCH_HISTORY = 8192;

    /* STORAGE TYPES */

    struct TokenConfig {
        bool registered;
        uint8 index;
        uint8 decimals;
    }

    struct Position {
        int256 size; // WAD units
        int256 fundingIndex; // perps: cumulative funding index at the last update
        uint8 slot; // 1-based index in Account.instruments, 0 when closed
    }

    /// @dev One per subaccount id. A transfer changes only `_ownerOf`, never this.
    struct Account {
        int256 cash; // WAD USD
        int256 cumLo; // running lower bound, docs/protocol.md §5
        int256 cumHi; // running upper bound
        uint64 stateNonce; // part of every leaf; a liquidation keeps it (the portfolio stays)
        uint64 boundBlock; // block of the last bound change (docs/protocol.md §5)
        uint64 boundEpoch; // the epoch current at that change: whose prices it used
        uint64 taintedEpoch; // an epoch whose leaf misses a change priced by an older epoch
        uint32[] instruments; // open positions, at most MAX_POSITIONS
        mapping(uint32 => Position) positions;
        mapping(address => uint256) collateral; // token's own decimals
        /// @dev The state chain (docs/protocol.md §9): high 24 bytes a hash chain over every
        /// change of cash, positions and collateral, low 8 bytes the number of changes. In the
        /// struct (its own slot, at the end) rather than a mapping at the end of VaultBase: the
        /// account's base slot is already computed, so no second keccak for the location.
        bytes32 stateChain;
    }

    /// @dev A token's price and shocks of the current epoch in one slot (docs/protocol.md §4);
    /// the token is implied by the index in `_tokens`. postEpoch rejects values that do not fit.
    struct PackedPrice {
        uint128 price; // WAD USD per whole token
        uint64 downShock; // WAD fraction, <= 1e18
        uint64 upShock; // WAD fraction
    }

    /// @dev A posted root kept for its challenge window (docs/protocol.md §10), in a ring of
    /// `EPOCH_HISTORY` slots by epoch number. Written only while the window is not 0.
    struct EpochRecord {
        bytes32 root;
        uint64 epoch;
        uint64 postedAt; // block.timestamp of the postEpoch
        uint64 timestamp; // the header's: an option with expiry <= it had expired (§11)
        bytes32 inputsHash; // the header's commitment to the engine's inputs (§11)
        bytes32 fundingHash; // keccak256(abi.encode(header.funding)): what perp leaves' indices must be (§11)
    }

    struct InstrumentState {
        int256 cumFunding; // perps: latest attested cumulative funding index
        uint256 settlementPrice; // options: final once set
        bool settled;
    }

    /* STATE */

    uint64 internal _maxAge;
    uint64 internal _futureTolerance;
    uint256 internal _liquidationPenalty; // WAD fraction of MM
    uint256 internal _insuranceShare; // WAD fraction of the penalty
    uint256 internal _insuranceFund; // WAD USD, backed by settlement tokens held
    uint256 internal _badDebt; // WAD USD, cumulative shortfall the fund could not cover

    address[] internal _signers;
    mapping(address => bool) internal _isSigner;
    uint8 internal _quorum;
    uint64 internal _configVersion;

    uint64 internal _epoch;
    uint64 internal _snapshotBlock;
    uint64 internal _timestamp;
    bytes32 internal _root;

    address[] internal _tokens;
    mapping(address => TokenConfig) internal _tokenConfig;
    PackedPrice[] internal _prices; // current epoch's table, in registration order

    uint32 internal _instrumentCount;
    mapping(uint32 => Instrument) internal _instruments;
    mapping(uint32 => InstrumentState) internal _instrumentState;

    mapping(uint256 => Account) internal _accounts; // by subaccount id
    mapping(address => mapping(uint256 => bool)) internal _nonceUsed; // by signing address

    uint256 internal _subaccountCount; // ids run from 1 to this
    mapping(uint256 => address) internal _ownerOf; // 0: no such subaccount
    mapping(address => mapping(address => bool)) internal _isOperator; // owner => operator
    mapping(address => uint256) internal _payouts; // WAD USD claimable by a liquidated owner

    /// @dev keccak256(abi.encode(kind, underlying, strike, expiry)) => id (0: not registered),
    /// so that one contract is listed once (docs/protocol.md §2).
    mapping(bytes32 => uint32) internal _instrumentIdByKey;

    /// @dev The `PriceReferences` contract that checks each posted epoch's token prices (0: none, no
    /// check). The one word postEpoch reads when none is set (docs/gas.md).
    address internal _priceReferences;

    /* FINALITY AND DISPUTES (docs/protocol.md §10) */

    /// @dev 0: disputes off, every root final when posted, withdrawals paid at once. One slot
    /// with the fraud state, so that postEpoch reads them with one SLOAD.
    uint64 internal _challengeWindow;
    uint64 internal _fraudEpoch; // != 0: safe mode since a dispute proved this epoch wrong
    uint64 internal _disputedThrough; // epochs <= this were judged: no dispute of them any more
    uint256 internal _bond; // WAD USD of settlement tokens held for the signer set
    uint256 internal _minBond; // WAD USD; postEpoch needs `_bond >= _minBond` while the window is not 0
    mapping(uint256 => EpochRecord) internal _epochHistory; // by epoch % EPOCH_HISTORY
    uint64[] internal _fraudTimes; // block.timestamp of every fraud declaration, ascending
    address[] internal _fraudSigners; // the signer set at the last declaration
    uint256 internal _pendingCount; // ids run from 1 to this
    mapping(uint256 => PendingWithdrawal) internal _pending;

    constructor(address owner_) Ownable(owner_) EIP712("PortfolioMarginVault", "1") {}

    /* LOOKUPS */

    function _isSafeMode() internal view returns (bool) {
        return _epoch == 0 || _fraudEpoch != 0 || block.timestamp > uint256(_timestamp) + _maxAge;
    }

    function _requireNotSafeMode() internal view {
        if (_isSafeMode()) revert Errors.SafeMode();
    }

    function _requireToken(address token) internal view returns (TokenConfig memory c) {
        c = _tokenConfig[token];
        if (!c.registered) revert Errors.UnknownToken(token);
    }

    function _requireInstrument(uint32 id) internal view returns (Instrument storage) {
        if (id == 0 || id > _instrumentCount) revert Errors.UnknownInstrument(id);
        return _instruments[id];
    }

    function _liquidationParams(uint256 cashScale) internal view returns (LiquidationLib.Params memory) {
        return LiquidationLib.Params(_liquidationPenalty, _insuranceShare, _insuranceFund, cashScale);
    }

    /// @dev The current epoch's price of the token at `index` (< `_prices.length`).
    function _tokenPrice(uint256 index) internal view returns (TokenPrice memory) {
        PackedPrice memory p = _prices[index];
        return TokenPrice(_tokens[index], p.price, p.downShock, p.upShock);
    }

    /* SUBACCOUNTS */

    function _requireOwner(uint256 account) internal view returns (address owner) {
        owner = _ownerOf[account];
        if (owner == address(0)) revert Errors.UnknownSubaccount(account);
    }

    /// @dev The authority of every action that names a subaccount (docs/security.md): its
    /// owner, or an operator the owner approved. Returns the owner (withdrawals pay it).
    function _requireAuthorized(uint256 account, address sender) internal view returns (address owner) {
        owner = _requireOwner(account);
        if (sender != owner && !_isOperator[owner][sender]) revert Errors.NotAuthorized(account, sender);
    }

    /* BOUNDS AND THE IM GATE */

    /// @dev Also records when the change happened. A change priced by an older epoch but mined
    /// after the current epoch's snapshot (the snapshot-to-post window) is missing from the
    /// current leaf, which `imSurplusLo` would then combine with old-price bounds: the account's
    /// leaf-based value-out actions wait for the next epoch (`taintedEpoch`; docs/security.md,
    /// finding 3).
    function _addBounds(uint256 account, Account storage a, int256 lo, int256 hi) internal {
        if (a.boundEpoch < _epoch && a.boundBlock > _snapshotBlock) a.taintedEpoch = _epoch;
        a.boundBlock = uint64(block.number);
        a.boundEpoch = _epoch;
        if (lo != 0 || hi != 0) {
            (int256 oldLo, int256 oldHi) = (a.cumLo, a.cumHi);
            a.cumLo = oldLo + lo;
            a.cumHi = oldHi + hi;
            _commitBounds(a, oldLo, oldHi);
        }
        _emitAccount(account, a);
    }

    /// @dev Whether the current leaf misses a bound change priced by an older epoch: recorded
    /// (`taintedEpoch`), or the last change itself (not yet recorded, as `_addBounds` records
    /// it only at the next change). For an action that reads the leaf without changing bounds.
    function _boundsFromPreviousPrices(Account storage a) internal view returns (bool) {
        return a.taintedEpoch == _epoch || (a.boundEpoch < _epoch && a.boundBlock > _snapshotBlock);
    }

    /// @dev Without a fresh price (safe mode, or a token registered after the current epoch)
    /// a deposit adds (0, UNBOUNDED) and a withdrawal (-UNBOUNDED, 0): always valid, since a
    /// token's haircut is at most its value (downShock <= 1).
    function _collateralBounds(TokenConfig memory c, uint256 amount, bool isDeposit)
        internal
        view
        returns (int256 lo, int256 hi)
    {
        if (_isSafeMode() || c.index >= _prices.length) {
            return isDeposit ? (int256(0), MarginBounds.UNBOUNDED) : (-MarginBounds.UNBOUNDED, int256(0));
        }
        TokenPrice memory p = _tokenPrice(c.index);
        if (isDeposit) {
            return (MarginBounds.depositLo(amount, p, c.decimals), MarginBounds.depositHi(amount, p, c.decimals));
        }
        return (MarginBounds.withdrawLo(amount, p, c.decimals), MarginBounds.withdrawHi(amount, p, c.decimals));
    }

    function _emitAccount(uint256 account, Account storage a) internal {
        emit Events.AccountUpdated(account, a.cash, a.cumLo, a.cumHi, a.stateNonce);
    }

    /// @dev The IM gate of withdrawals and trades (docs/protocol.md §5).
    function _requireImSurplus(uint256 account, Account storage a, MarginProof calldata mp) internal view {
        // No position and no debt: the account owns everything it holds, nothing to secure.
        if (a.instruments.length == 0 && a.cash >= 0) return;
        _requireNotSafeMode();
        // Old-price bounds carried onto the current leaf can overstate the surplus
        // (docs/security.md, finding 3).
        if (a.instruments.length != 0 && a.taintedEpoch == _epoch) {
            revert Errors.BoundsFromPreviousPrices(account, _epoch + 1);
        }
        int256 s = _imSurplusLo(account, a, mp);
        if (s < 0) revert Errors.InsufficientMargin(account, s);
    }

    function _imSurplusLo(uint256 account, Account storage a, MarginProof calldata mp) internal view returns (int256) {
        if (a.instruments.length == 0) return _onChainSurplusLo(a);
        _requireAccountLeaf(account, a, mp);
        return MarginBounds.imSurplusLo(mp.leaf, a.cumLo);
    }

    /// @dev cash + sum(haircut collateral): a lower bound of the IM surplus of an account with
    /// no positions (subadditivity). A token the current epoch does not price counts nothing.
    function _onChainSurplusLo(Account storage a) internal view returns (int256 s) {
        s = a.cash;
        for (uint256 i; i < _prices.length; ++i) {
            address token = _tokens[i];
            uint256 balance = a.collateral[token];
            if (balance == 0) continue;
            s += FixedPoint.toInt(MarginBounds.haircutValueDown(balance, _tokenPrice(i), _tokenConfig[token].decimals));
        }
    }

    function _requireAccountLeaf(uint256 account, Account storage a, MarginProof calldata mp) internal view {
        if (mp.leaf.account != account) revert Errors.LeafAccountMismatch(account, mp.leaf.account);
        // A liquidated account's older leaves describe a portfolio it no longer holds.
        if (mp.leaf.stateNonce != a.stateNonce) {
            revert Errors.StaleStateNonce(account, a.stateNonce, mp.leaf.stateNonce);
        }
        _requireAccountIn(_root, mp.leaf, mp.proof);
    }

    function _requireInstrumentLeaf(InstrumentProof calldata ip, uint32 id) internal view {
        if (ip.leaf.instrument != id) revert Errors.InstrumentLeafMismatch(id, ip.leaf.instrument);
        _requireInstrumentIn(_root, ip.leaf, ip.proof);
    }

    /// @dev `leaf` is in the tree of `root` (the current root, or a recorded epoch's for a
    /// dispute); else `InvalidAccountProof`.
    function _requireAccountIn(bytes32 root, AccountLeaf calldata leaf, bytes32[] calldata proof) internal pure {
        if (!MerkleProof.verifyCalldata(proof, root, Leaves.hashAccount(leaf))) {
            revert Errors.InvalidAccountProof(leaf.account);
        }
    }

    /// @dev `leaf` is in the tree of `root`; else `InvalidInstrumentProof`.
    function _requireInstrumentIn(bytes32 root, InstrumentLeaf calldata leaf, bytes32[] calldata proof)
        internal
        pure
    {
        if (!MerkleProof.verifyCalldata(proof, root, Leaves.hashInstrument(leaf))) {
            revert Errors.InvalidInstrumentProof(leaf.instrument);
        }
    }

    /// @dev Option `id`'s payoff per unit at its settlement price (USD WAD), as `settle` pays it
    /// and a dispute values an option that had expired at the epoch; `SettlementPriceNotSet`
    /// before the price is posted.
    function _payoff(Instrument storage ins, uint32 id) internal view returns (uint256) {
        InstrumentState storage st = _instrumentState[id];
        if (!st.settled) revert Errors.SettlementPriceNotSet(id);
        int256 s = FixedPoint.toInt(st.settlementPrice);
        int256 k = FixedPoint.toInt(ins.strike);
        return FixedPoint.positivePart(ins.kind == InstrumentKind.CALL ? s - k : k - s);
    }

    /* DISPUTES (docs/protocol.md §10, §11): shared by the finality and dispute modules */

    /// @dev The record of `epoch`, if it may still be disputed: recorded (posted while the window
    /// was not 0, and not overwritten in the ring), not judged by an earlier declaration, and
    /// inside its window.
    function _disputableRecord(uint64 epoch) internal view returns (EpochRecord storage r) {
        r = _epochHistory[epoch % EPOCH_HISTORY];
        if (epoch == 0 || r.epoch != epoch) revert Errors.EpochNotDisputable(epoch);
        if (epoch <= _disputedThrough) revert Errors.EpochAlreadyJudged(epoch, _disputedThrough);
        uint256 closesAt = uint256(r.postedAt) + _challengeWindow;
        if (block.timestamp > closesAt) revert Errors.ChallengeWindowOver(epoch, closesAt);
    }

    /// @dev A proven fraud: safe mode until an epoch signed by a rotated signer set (the old
    /// set's members fewer than the new quorum, checked by postEpoch); every epoch posted so
    /// far is judged (none can be disputed again, nor posted in between: the quorum is out);
    /// every withdrawal whose window is open now is void (`returnWithdrawal`); the bond is
    /// slashed, half to the disputer's claimable payout (`claimPayout`), half to the insurance
    /// fund.
    function _declareFraud(uint64 epoch) internal {
        _fraudEpoch = epoch;
        _disputedThrough = _epoch;
        _fraudTimes.push(uint64(block.timestamp));
        delete _fraudSigners;
        for (uint256 i; i < _signers.length; ++i) {
            _fraudSigners.push(_signers[i]);
        }
        uint256 bond = _bond;
        uint256 reward = bond / 2;
        _bond = 0;
        _payouts[msg.sender] += reward;
        _insuranceFund += bond - reward;
        emit Events.FraudProven(epoch, msg.sender, reward, bond - reward);
    }

    /* STATE CHAIN */

    /// @dev Folds one delta into the account's state chain (docs/protocol.md §9). Called at
    /// every change of cash, a position or a collateral balance, in the order of the events
    /// that show the change, so that the keeper rebuilds the same chain from the log.
    function _commit(Account storage a, uint8 kind, uint256 key, int256 oldA, int256 oldB, int256 newA, int256 newB)
        internal
    {
        a.stateChain = StateChain.step(a.stateChain, kind, key, oldA, oldB, newA, newB);
    }

    function _commitCash(Account storage a, int256 oldCash) internal {
        _commit(a, StateChain.CASH, 0, oldCash, 0, a.cash, 0);
    }

    function _commitCollateral(Account storage a, address token, uint256 oldBalance, uint256 newBalance) internal {
        _commit(a, StateChain.COLLATERAL, uint160(token), int256(oldBalance), 0, int256(newBalance), 0);
    }

    /// @dev After a change of cumLo/cumHi. Shown by the AccountUpdated that follows (after the
    /// cash delta it shows), or by FundingApplied (the 1-wei rounding, after its cash delta).
    function _commitBounds(Account storage a, int256 oldLo, int256 oldHi) internal {
        _commit(a, StateChain.BOUNDS, 0, oldLo, oldHi, a.cumLo, a.cumHi);
    }

    /* POSITIONS AND FUNDING */

    /// @dev Keeps `instruments` equal to the set of non-zero positions (swap and pop).
    function _setSize(uint256 account, Account storage a, uint32 id, int256 newSize) internal {
        Position storage p = a.positions[id];
        int256 oldSize = p.size;
        if (p.slot == 0 && newSize != 0) {
            if (a.instruments.length >= MAX_POSITIONS) revert Errors.TooManyPositions(account, MAX_POSITIONS);
            a.instruments.push(id);
            p.slot = uint8(a.instruments.length);
        } else if (p.slot != 0 && newSize == 0) {
            uint32 last = a.instruments[a.instruments.length - 1];
            a.instruments[p.slot - 1] = last;
            a.positions[last].slot = p.slot;
            a.instruments.pop();
            p.slot = 0;
        }
        p.size = newSize;
        // A closed position is (0, 0) in the state: its stale index is not part of it.
        int256 f = p.fundingIndex;
        _commit(a, StateChain.POSITION, id, oldSize, oldSize == 0 ? int256(0) : f, newSize, newSize == 0 ? int256(0) : f);
        emit Events.PositionUpdated(account, id, newSize, f);
    }

    /// @dev Charges `size * (F_now - F_last)` rounded against the account, then moves the
    /// position's index to F_now (also for a fresh position, which pays nothing). The leaf
    /// already counts pending funding: only the 1-wei rounding goes into cumLo.
    function _applyFunding(uint256 account, Account storage a, uint32 id) internal {
        if (_instruments[id].kind != InstrumentKind.PERP) return;
        Position storage p = a.positions[id];
        int256 f = _instrumentState[id].cumFunding;
        int256 last = p.fundingIndex;
        if (last == f) return;
        p.fundingIndex = f;
        if (p.size == 0) return;
        int256 payment = FixedPoint.mulWadCeil(p.size, f - last);
        int256 cash0 = a.cash;
        a.cash = cash0 - payment;
        int256 lo0 = a.cumLo;
        a.cumLo = lo0 + MarginBounds.roundingLo();
        // A fresh position (size 0 above) changes no state: its index is not part of it.
        _commitCash(a, cash0);
        _commitBounds(a, lo0, a.cumHi);
        _commit(a, StateChain.POSITION, id, p.size, last, p.size, f);
        emit Events.FundingApplied(account, id, payment, f);
        emit Events.PositionUpdated(account, id, p.size, f);
    }

    function _applyAllFunding(uint256 account, Account storage a) internal {
        for (uint256 i; i < a.instruments.length; ++i) {
            _applyFunding(account, a, a.instruments[i]);
        }
    }
}

/// @title VaultModule
/// @notice Base of the code that `MarginVault` delegatecalls to stay under the EIP-170 size
/// limit (as Euler's modules). Called directly, a module would only touch its own empty
/// storage; `onlyDelegated` refuses it anyway so that nobody mistakes it for the vault.
abstract contract VaultModule is VaultBase {
    address private immutable _self = address(this);

    constructor() VaultBase(msg.sender) {}

    modifier onlyDelegated() {
        if (address(this) == _self) revert Errors.NotDelegated();
        _;
    }

    /// @dev A module's fallback: runs the whole call in module `m` on the same storage and
    /// returns or reverts with its data (the finality module forwards to the dispute module,
    /// that one to the instrument dispute module).
    function _forward(address m) internal {
        assembly ("memory-safe") {
            let p := mload(0x40)
            calldatacopy(p, 0, calldatasize())
            let ok := delegatecall(gas(), m, p, calldatasize(), 0, 0)
            returndatacopy(p, 0, returndatasize())
            if iszero(ok) { revert(p, returndatasize()) }
            return(p, returndatasize())
        }
    }
}
