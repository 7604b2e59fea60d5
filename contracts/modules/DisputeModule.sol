// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;


import {
    AccountLeaf, CommittedState, Instrument, InstrumentKind, InstrumentLeaf, StateDelta, StatePosition
} from "../interfaces/IMarginVault.sol";
import {AccountClaim, IDispute} from "../interfaces/IDispute.sol";
import {AccountDispute, Verdict} from "../libraries/AccountDispute.sol";
import {FixedPoint} from "../libraries/FixedPoint.sol";
import {StateChain} from "../libraries/StateChain.sol";
import {Errors} from "../interfaces/Errors.sol";
import {Events} from "../interfaces/Events.sol";
import {VaultModule} from "./VaultBase.sol";

/// @title DisputeModule
/// @notice The fraud proofs against one ACCOUNT leaf (docs/protocol.md §11): its numbers do not
/// follow from the state it commits (`disputeAccount`), or the state it commits is not the
/// account's (`disputeAccountState`). Delegatecalled by the finality module's fallback, itself
/// delegatecalled by the vault's: the vault's storage, msg.sender the disputer. Its fallback
/// reaches the instrument dispute (InstrumentDisputeModule).
contract DisputeModule is IDispute, VaultModule {
    /// @dev `AccountLeafDisproven.reason`.
    uint8 internal constant REASON_STATE = 0;
    uint8 internal constant REASON_BOUNDS = 1;
    uint8 internal constant REASON_NUMBERS = 2;

    /// @notice The INSTRUMENT leaf dispute (`IInstrumentDispute`), too large to live here: this
    /// module's fallback delegates to it, on the vault's storage (docs/protocol.md §11).
    address public immutable instrumentDisputeModule;

    constructor(address instrumentDisputeModule_) {
        if (instrumentDisputeModule_.code.length == 0) revert Errors.InvalidModule(instrumentDisputeModule_);
        instrumentDisputeModule = instrumentDisputeModule_;
    }

    /// @dev Every selector this module does not declare runs in the instrument dispute module; one
    /// it does not declare either reverts there, with no data.
    fallback() external onlyDelegated {
        _forward(instrumentDisputeModule);
    }

    /// @inheritdoc IDispute
    function disputeAccount(AccountClaim calldata c) external onlyDelegated nonReentrant {
        EpochRecord storage r = _disputableRecord(c.epoch);
        bytes32 root = r.root;
        uint256 account = c.leaf.account;
        _requireAccountIn(root, c.leaf, c.proof);
        // The state the leaf commits, proven against the live storage: a word that is not in
        // the account's history cannot be proven here (disputeAccountState disproves it).
        StateChain.prove(
            _live(account), uint64(uint256(c.leaf.stateWord)), bytes24(c.leaf.stateWord), c.state, c.deltas
        );
        if (c.state.cumLo != c.leaf.cumLo || c.state.cumHi != c.leaf.cumHi) {
            emit Events.AccountLeafDisproven(c.epoch, account, REASON_BOUNDS);
            _declareFraud(c.epoch);
            return;
        }
        bytes32 inputs = keccak256(
            abi.encode(
                AccountDispute.hashParams(c.params), keccak256(abi.encodePacked(c.tokenVectorHashes)), c.marketHash
            )
        );
        if (inputs != r.inputsHash) revert Errors.InputsMismatch(c.epoch, r.inputsHash, inputs);
        _checkEngineInputs(c, root, r.timestamp);
        Verdict memory v = AccountDispute.judge(c.cash, c.sizes, c.vectors, c.params, c.leaf.equity, c.leaf.im, c.leaf.mm);
        if (!AccountDispute.anyWrong(v)) revert Errors.LeafIsHonest(account, v.equity, v.im, v.mm, v.tolerance);
        emit Events.AccountLeafRecomputed(c.epoch, account, v.equity, v.im, v.mm, v.tolerance);
        emit Events.AccountLeafDisproven(c.epoch, account, REASON_NUMBERS);
        _declareFraud(c.epoch);
    }

    /// @inheritdoc IDispute
    function disputeAccountState(
        uint64 epoch,
        AccountLeaf calldata leaf,
        bytes32[] calldata proof,
        bytes24 chainAtSeq,
        CommittedState calldata state,
        StateDelta[] calldata deltas
    ) external onlyDelegated nonReentrant {
        bytes32 root = _disputableRecord(epoch).root;
        uint256 account = leaf.account;
        _requireAccountIn(root, leaf, proof);
        uint64 seq = uint64(uint256(leaf.stateWord));
        if (seq <= uint64(uint256(_accounts[account].stateChain))) {
            StateChain.prove(_live(account), seq, chainAtSeq, state, deltas);
            if (chainAtSeq == bytes24(leaf.stateWord)) revert Errors.StateWordIsReal(account, leaf.stateWord);
        } // else: a sequence number the account has not reached, then or since
        emit Events.AccountLeafDisproven(epoch, account, REASON_STATE);
        _declareFraud(epoch);
    }

    /// @dev The engine's inputs of `c` against the proven state and the epoch's commitments:
    /// one INSTRUMENT leaf in the root per position of an instrument live at the epoch
    /// (`expiry > timestamp` or a perp), carrying the hash of its vector and, for a perp, the
    /// funding index the epoch posted; the token vectors against the header's list; the sizes
    /// are the state's (a balance as its SPOT size); the cash is the state's after the pending
    /// funding (rounded against the account) and the payoffs of options expired at the epoch
    /// (rounded down), as `keeper/epoch_build.py:account_cash` and the vault's `settle`.
    function _checkEngineInputs(AccountClaim calldata c, bytes32 root, uint64 timestamp) internal view {
        if (c.vectors.length != c.sizes.length) revert Errors.ClaimShapeMismatch(c.sizes.length, c.vectors.length);
        int256 cash = c.state.cash;
        uint256 k;
        for (uint256 i; i < c.state.positions.length; ++i) {
            StatePosition calldata p = c.state.positions[i];
            Instrument storage ins = _instruments[p.instrument];
            if (ins.kind != InstrumentKind.PERP && ins.expiry <= timestamp) {
                cash += FixedPoint.mulWadFloor(p.size, FixedPoint.toInt(_payoff(ins, p.instrument)));
                continue;
            }
            if (k >= c.instruments.length || k >= c.sizes.length) {
                revert Errors.ClaimShapeMismatch(c.sizes.length, c.vectors.length);
            }
            InstrumentLeaf calldata il = c.instruments[k];
            if (il.instrument != p.instrument) revert Errors.InstrumentLeafMismatch(p.instrument, il.instrument);
            _requireInstrumentIn(root, il, c.instrumentProofs[k]);
            if (AccountDispute.hashVector(c.vectors[k]) != il.vectorHash) revert Errors.VectorMismatch(k);
            if (c.sizes[k] != p.size) revert Errors.SizeMismatch(k, p.size, c.sizes[k]);
            if (ins.kind == InstrumentKind.PERP) cash -= FixedPoint.mulWadCeil(p.size, il.fundingIndex - p.fundingIndex);
            ++k;
        }
        if (k != c.instruments.length) revert Errors.ClaimShapeMismatch(c.sizes.length, c.vectors.length);
        if (c.tokenVectorHashes.length != _tokens.length) {
            revert Errors.ClaimShapeMismatch(c.tokenVectorHashes.length, _tokens.length);
        }
        for (uint256 j; j < c.state.collateral.length; ++j) {
            if (k >= c.sizes.length) revert Errors.ClaimShapeMismatch(c.sizes.length, c.vectors.length);
            address token = c.state.collateral[j].token;
            TokenConfig storage t = _tokenConfig[token];
            if (AccountDispute.hashVector(c.vectors[k]) != c.tokenVectorHashes[t.index]) {
                revert Errors.VectorMismatch(k);
            }
            int256 size = AccountDispute.tokenSize(c.state.collateral[j].amount, t.decimals);
            if (c.sizes[k] != size) revert Errors.SizeMismatch(k, size, c.sizes[k]);
            ++k;
        }
        if (k != c.sizes.length) revert Errors.ClaimShapeMismatch(c.sizes.length, c.vectors.length);
        if (cash != c.cash) revert Errors.EngineCashMismatch(cash, c.cash);
    }

    /// @dev The account's live state, as `StateChain.prove` compares it.
    function _live(uint256 account) internal view returns (StateChain.Live memory live) {
        Account storage a = _accounts[account];
        live.word = a.stateChain;
        (live.cash, live.cumLo, live.cumHi) = (a.cash, a.cumLo, a.cumHi);
        uint256 n = a.instruments.length;
        live.instruments = new uint32[](n);
        live.sizes = new int256[](n);
        live.fundingIndices = new int256[](n);
        for (uint256 i; i < n; ++i) {
            uint32 id = a.instruments[i];
            live.instruments[i] = id;
            live.sizes[i] = a.positions[id].size;
            live.fundingIndices[i] = a.positions[id].fundingIndex;
        }
        uint256 m = _tokens.length;
        live.tokens = new address[](m);
        live.balances = new uint256[](m);
        for (uint256 i; i < m; ++i) {
            live.tokens[i] = _tokens[i];
            live.balances[i] = a.collateral[_tokens[i]];
        }
    }
}
