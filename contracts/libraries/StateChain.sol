// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {CommittedState, StateDelta, StatePosition, StateCollateral} from "../interfaces/IMarginVault.sol";
import {Errors} from "../interfaces/Errors.sol";

/// @title StateChain
/// @notice The vault's commitment to every subaccount's state at every state sequence number
/// (docs/protocol.md §9), exactly as `keeper/state_chain.py`:
/// - `step`: the vault folds each state delta into the subaccount's chain word (one storage
///   word: a 192-bit hash chain in the high bytes, the sequence number in the low 8 bytes);
/// - `hashState`: the canonical hash H(S) of a state, which an ACCOUNT leaf will commit;
/// - `prove`: H(S_m) of the state at an older sequence number m, checked against the live
///   storage by replaying the deltas m+1..n, with no per-sequence history stored.
library StateChain {
    uint8 internal constant CASH = 1; // key 0, value (cash, 0)
    uint8 internal constant POSITION = 2; // key instrument id, value (size, fundingIndex); (0, 0) when closed
    uint8 internal constant COLLATERAL = 3; // key uint160(token), value (balance, 0)
    uint8 internal constant BOUNDS = 4; // key 0, value (cumLo, cumHi)

    uint256 private constant SEQ_MASK = 0xffffffffffffffff; // the low 64 bits of a chain word

    /// @notice The account's state as the vault holds it now, for `prove`.
    /// @dev `tokens` every registered token; `balances` the account's balance of each.
    struct Live {
        bytes32 word;
        int256 cash;
        int256 cumLo;
        int256 cumHi;
        uint32[] instruments;
        int256[] sizes;
        int256[] fundingIndices;
        address[] tokens;
        uint256[] balances;
    }

    /// @notice The chain word after one delta: `keccak256(word, kind, key, oldA, oldB, newA,
    /// newB)` (seven 32-byte words), its low 64 bits replaced by `seq(word) + 1`.
    /// @dev The previous word carries the previous sequence number, so the hash binds the
    /// position of the delta in the chain. 192 bits of hash: a collision costs ~2^96 hashes.
    function step(bytes32 word, uint8 kind, uint256 key, int256 oldA, int256 oldB, int256 newA, int256 newB)
        internal
        pure
        returns (bytes32 next)
    {
        assembly ("memory-safe") {
            let m := mload(0x40) // scratch above the free memory pointer, not allocated
            mstore(m, word)
            mstore(add(m, 0x20), and(kind, 0xff))
            mstore(add(m, 0x40), key)
            mstore(add(m, 0x60), oldA)
            mstore(add(m, 0x80), oldB)
            mstore(add(m, 0xa0), newA)
            mstore(add(m, 0xc0), newB)
            next := or(and(keccak256(m, 0xe0), not(SEQ_MASK)), add(and(word, SEQ_MASK), 1))
        }
    }

    function stepDelta(bytes32 word, StateDelta memory d) internal pure returns (bytes32) {
        return step(word, d.kind, d.key, d.oldA, d.oldB, d.newA, d.newB);
    }

    /// @notice H(S) = keccak256(cash, cumLo, cumHi, P, (instrument, size, fundingIndex) x P, K,
    /// (token, amount) x K), each a 32-byte word (docs/protocol.md §9). `s` must be canonical.
    function hashState(CommittedState memory s) internal pure returns (bytes32 h) {
        uint256 p = s.positions.length;
        uint256 k = s.collateral.length;
        bytes memory buf = new bytes(32 * (5 + 3 * p + 2 * k));
        uint256 o = 32;
        o = _put(buf, o, uint256(s.cash));
        o = _put(buf, o, uint256(s.cumLo));
        o = _put(buf, o, uint256(s.cumHi));
        o = _put(buf, o, p);
        for (uint256 i; i < p; ++i) {
            StatePosition memory x = s.positions[i];
            o = _put(buf, o, x.instrument);
            o = _put(buf, o, uint256(x.size));
            o = _put(buf, o, uint256(x.fundingIndex));
        }
        o = _put(buf, o, k);
        for (uint256 i; i < k; ++i) {
            o = _put(buf, o, uint160(s.collateral[i].token));
            o = _put(buf, o, s.collateral[i].amount);
        }
        h = keccak256(buf);
    }

    function _put(bytes memory buf, uint256 o, uint256 w) private pure returns (uint256) {
        assembly ("memory-safe") {
            mstore(add(buf, o), w)
        }
        return o + 32;
    }

    /// @notice Checks that `s` is the account's state at sequence number `seq` and returns
    /// H(s). `chain` is the high 192 bits of the account's chain word at `seq`; `deltas` are
    /// the deltas `seq + 1 .. n` as the vault committed them (n the live sequence number).
    /// @dev Why this pins `s`: the chain from (chain, seq) through `deltas` must reach the
    /// live word, so (collision resistance) `deltas` are the vault's real deltas; each delta's
    /// old value must equal the running value, so every entry of `s` that a delta touches is
    /// the real one at `seq`, and the result of the replay must equal the live state, so every
    /// entry no delta touches is too (absent entries included: the counts must match).
    function prove(Live memory live, uint64 seq, bytes24 chain, CommittedState memory s, StateDelta[] memory deltas)
        internal
        pure
        returns (bytes32)
    {
        _requireCanonical(s);
        bytes32 word = bytes32(chain) | bytes32(uint256(seq));
        for (uint256 i; i < deltas.length; ++i) {
            word = stepDelta(word, deltas[i]);
        }
        if (word != live.word) revert Errors.StateChainMismatch(live.word, word);
        _requireReplayEqualsLive(live, s, deltas);
        return hashState(s);
    }

    /// @dev Positions strictly ascending by instrument, none of size 0; collateral strictly
    /// ascending by token, none of amount 0: one encoding per state, so one H(S).
    function _requireCanonical(CommittedState memory s) private pure {
        uint256 p = s.positions.length;
        for (uint256 i; i < p; ++i) {
            StatePosition memory x = s.positions[i];
            if (x.size == 0 || (i > 0 && x.instrument <= s.positions[i - 1].instrument)) {
                revert Errors.NonCanonicalState(i);
            }
        }
        for (uint256 i; i < s.collateral.length; ++i) {
            StateCollateral memory c = s.collateral[i];
            if (c.amount == 0 || (i > 0 && c.token <= s.collateral[i - 1].token)) {
                revert Errors.NonCanonicalState(p + i);
            }
        }
    }

    /// @dev The running state: positions and collateral as unordered lists with room for
    /// every delta to add an entry; an entry whose value becomes 0 is swapped out.
    struct Running {
        int256 cash;
        int256 cumLo;
        int256 cumHi;
        uint256[] posKeys;
        int256[] sizes;
        int256[] fIdx;
        uint256 posCount;
        uint256[] colKeys;
        uint256[] amounts;
        uint256 colCount;
    }

    function _requireReplayEqualsLive(Live memory live, CommittedState memory s, StateDelta[] memory deltas)
        private
        pure
    {
        Running memory r = _running(s, deltas.length);
        for (uint256 i; i < deltas.length; ++i) {
            StateDelta memory d = deltas[i];
            bool ok;
            if (d.kind == CASH) {
                ok = d.oldA == r.cash;
                r.cash = d.newA;
            } else if (d.kind == POSITION) {
                ok = _applyPosition(r, d);
            } else if (d.kind == COLLATERAL) {
                ok = _applyCollateral(r, d);
            } else if (d.kind == BOUNDS) {
                ok = d.key == 0 && d.oldA == r.cumLo && d.oldB == r.cumHi;
                (r.cumLo, r.cumHi) = (d.newA, d.newB);
            }
            if (!ok) revert Errors.StateDeltaMismatch(i);
        }
        if (!_equalsLive(r, live)) revert Errors.StateMismatch();
    }

    function _running(CommittedState memory s, uint256 extra) private pure returns (Running memory r) {
        uint256 p = s.positions.length;
        uint256 k = s.collateral.length;
        (r.cash, r.cumLo, r.cumHi) = (s.cash, s.cumLo, s.cumHi);
        r.posKeys = new uint256[](p + extra);
        r.sizes = new int256[](p + extra);
        r.fIdx = new int256[](p + extra);
        r.posCount = p;
        for (uint256 i; i < p; ++i) {
            r.posKeys[i] = s.positions[i].instrument;
            r.sizes[i] = s.positions[i].size;
            r.fIdx[i] = s.positions[i].fundingIndex;
        }
        r.colKeys = new uint256[](k + extra);
        r.amounts = new uint256[](k + extra);
        r.colCount = k;
        for (uint256 i; i < k; ++i) {
            r.colKeys[i] = uint160(s.collateral[i].token);
            r.amounts[i] = s.collateral[i].amount;
        }
    }

    function _find(uint256[] memory keys, uint256 count, uint256 key) private pure returns (uint256) {
        for (uint256 i; i < count; ++i) {
            if (keys[i] == key) return i;
        }
        return type(uint256).max;
    }

    /// @dev A closed position is (0, 0): the vault keeps the stale index of a closed position
    /// in storage, but it is not part of the state (docs/protocol.md §9).
    function _applyPosition(Running memory r, StateDelta memory d) private pure returns (bool ok) {
        uint256 j = _find(r.posKeys, r.posCount, d.key);
        bool open = j != type(uint256).max;
        ok = open ? (d.oldA == r.sizes[j] && d.oldB == r.fIdx[j]) : (d.oldA == 0 && d.oldB == 0);
        if (d.newA == 0) {
            if (d.newB != 0) return false; // a closed position is (0, 0)
            if (open) {
                uint256 last = --r.posCount;
                (r.posKeys[j], r.sizes[j], r.fIdx[j]) = (r.posKeys[last], r.sizes[last], r.fIdx[last]);
            }
        } else {
            if (!open) j = r.posCount++;
            (r.posKeys[j], r.sizes[j], r.fIdx[j]) = (d.key, d.newA, d.newB);
        }
    }

    function _applyCollateral(Running memory r, StateDelta memory d) private pure returns (bool ok) {
        uint256 j = _find(r.colKeys, r.colCount, d.key);
        bool held = j != type(uint256).max;
        ok = d.oldB == 0 && d.newB == 0 && uint256(d.oldA) == (held ? r.amounts[j] : 0);
        if (d.newA == 0) {
            if (held) {
                uint256 last = --r.colCount;
                (r.colKeys[j], r.amounts[j]) = (r.colKeys[last], r.amounts[last]);
            }
        } else {
            if (!held) j = r.colCount++;
            (r.colKeys[j], r.amounts[j]) = (d.key, uint256(d.newA));
        }
    }

    /// @dev Every live entry equals the running one and the counts agree, so the two sets
    /// are equal (running keys are distinct by construction, live instruments by the vault's).
    function _equalsLive(Running memory r, Live memory live) private pure returns (bool) {
        if (r.cash != live.cash || r.cumLo != live.cumLo || r.cumHi != live.cumHi) return false;
        if (r.posCount != live.instruments.length) return false;
        for (uint256 i; i < live.instruments.length; ++i) {
            uint256 j = _find(r.posKeys, r.posCount, live.instruments[i]);
            if (j == type(uint256).max || r.sizes[j] != live.sizes[i] || r.fIdx[j] != live.fundingIndices[i]) {
                return false;
            }
        }
        uint256 held;
        for (uint256 i; i < live.tokens.length; ++i) {
            uint256 b = live.balances[i];
            if (b == 0) continue;
            ++held;
            uint256 j = _find(r.colKeys, r.colCount, uint160(live.tokens[i]));
            if (j == type(uint256).max || r.amounts[j] != b) return false;
        }
        return held == r.colCount;
    }
}
