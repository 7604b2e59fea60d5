// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Vm} from "forge-std/Vm.sol";

import {MarginVault} from "../../../contracts/MarginVault.sol";
import {Events} from "../../../contracts/interfaces/Events.sol";
import {
    CommittedState, StateDelta, StatePosition, StateCollateral
} from "../../../contracts/interfaces/IMarginVault.sol";
import {StateChain} from "../../../contracts/libraries/StateChain.sol";

/// @notice The keeper's rule (docs/protocol.md §9, `keeper/state_chain.py`) in Solidity: it
/// rebuilds every subaccount's state chain from the vault's logs alone, old values taken from
/// its own running state, and keeps the state and chain word at a checkpoint plus the deltas
/// since, so that tests can prove the checkpoint state with `StateLens.proveStateAt`.
/// Feed it only the logs of calls that succeeded (a reverted call's logs are recorded too).
contract StateChainGhost {
    MarginVault public immutable vault;

    struct Book {
        bytes32 word;
        int256 cash;
        int256 cumLo;
        int256 cumHi;
        mapping(uint32 => int256[2]) pos; // (size, fundingIndex); (0, 0) when closed
        mapping(address => uint256) col;
    }

    mapping(uint256 => Book) internal _book;
    mapping(uint256 => Book) internal _checkpoint;
    mapping(uint256 => StateDelta[]) internal _since;

    constructor(MarginVault vault_) {
        vault = vault_;
    }

    function word(uint256 account) external view returns (bytes32) {
        return _book[account].word;
    }

    function pending(uint256 account) external view returns (uint256) {
        return _since[account].length;
    }

    function ingest(Vm.Log[] memory logs) external {
        for (uint256 i; i < logs.length; ++i) {
            Vm.Log memory l = logs[i];
            if (l.emitter != address(vault) || l.topics.length < 2) continue;
            bytes32 t = l.topics[0];
            uint256 account = uint256(l.topics[1]);
            Book storage b = _book[account];
            if (t == Events.AccountUpdated.selector) {
                (int256 cash, int256 lo, int256 hi,) = abi.decode(l.data, (int256, int256, int256, uint64));
                if (cash != b.cash) _delta(account, StateDelta(StateChain.CASH, 0, b.cash, 0, cash, 0));
                if (lo != b.cumLo || hi != b.cumHi) {
                    _delta(account, StateDelta(StateChain.BOUNDS, 0, b.cumLo, b.cumHi, lo, hi));
                }
            } else if (t == Events.FundingApplied.selector) {
                (int256 payment,) = abi.decode(l.data, (int256, int256));
                _delta(account, StateDelta(StateChain.CASH, 0, b.cash, 0, b.cash - payment, 0));
                // the vault's 1-wei rounding of cumLo (MarginBounds.roundingLo)
                _delta(account, StateDelta(StateChain.BOUNDS, 0, b.cumLo, b.cumHi, b.cumLo - 1, b.cumHi));
            } else if (t == Events.PositionUpdated.selector) {
                uint32 id = uint32(uint256(l.topics[2]));
                (int256 size, int256 f) = abi.decode(l.data, (int256, int256));
                int256[2] memory o = b.pos[id];
                _delta(account, StateDelta(StateChain.POSITION, id, o[0], o[1], size, size == 0 ? int256(0) : f));
            } else if (t == Events.CollateralUpdated.selector) {
                address token = address(uint160(uint256(l.topics[2])));
                uint256 balance = abi.decode(l.data, (uint256));
                _delta(
                    account,
                    StateDelta(StateChain.COLLATERAL, uint160(token), int256(b.col[token]), 0, int256(balance), 0)
                );
            }
        }
    }

    function _delta(uint256 account, StateDelta memory d) internal {
        Book storage b = _book[account];
        b.word = StateChain.stepDelta(b.word, d);
        _since[account].push(d);
        if (d.kind == StateChain.CASH) b.cash = d.newA;
        else if (d.kind == StateChain.BOUNDS) (b.cumLo, b.cumHi) = (d.newA, d.newB);
        else if (d.kind == StateChain.POSITION) b.pos[uint32(d.key)] = [d.newA, d.newB];
        else b.col[address(uint160(d.key))] = uint256(d.newA);
    }

    /// @notice Moves `account`'s checkpoint to its state now (no deltas since).
    function checkpoint(uint256 account) external {
        Book storage b = _book[account];
        Book storage c = _checkpoint[account];
        c.word = b.word;
        c.cash = b.cash;
        (c.cumLo, c.cumHi) = (b.cumLo, b.cumHi);
        uint32 n = vault.instrumentCount();
        for (uint32 id = 1; id <= n; ++id) {
            c.pos[id] = b.pos[id];
        }
        address[] memory toks = vault.tokens();
        for (uint256 k; k < toks.length; ++k) {
            c.col[toks[k]] = b.col[toks[k]];
        }
        delete _since[account];
    }

    /// @notice The checkpoint: its sequence number, chain, canonical state, and the deltas since.
    function proofInput(uint256 account)
        external
        view
        returns (uint64 seq, bytes24 chain, CommittedState memory s, StateDelta[] memory deltas)
    {
        Book storage c = _checkpoint[account];
        seq = uint64(uint256(c.word));
        chain = bytes24(c.word);
        s = _canonical(c);
        deltas = _since[account];
    }

    /// @notice The ghost's state now, canonical.
    function stateNow(uint256 account) external view returns (CommittedState memory) {
        return _canonical(_book[account]);
    }

    function _canonical(Book storage b) internal view returns (CommittedState memory s) {
        (s.cash, s.cumLo, s.cumHi) = (b.cash, b.cumLo, b.cumHi);
        uint32 n = vault.instrumentCount();
        uint256 p;
        for (uint32 id = 1; id <= n; ++id) {
            if (b.pos[id][0] != 0) ++p;
        }
        s.positions = new StatePosition[](p);
        p = 0;
        for (uint32 id = 1; id <= n; ++id) {
            if (b.pos[id][0] != 0) s.positions[p++] = StatePosition(id, b.pos[id][0], b.pos[id][1]);
        }
        address[] memory toks = _sorted(vault.tokens());
        uint256 k;
        for (uint256 i; i < toks.length; ++i) {
            if (b.col[toks[i]] != 0) ++k;
        }
        s.collateral = new StateCollateral[](k);
        k = 0;
        for (uint256 i; i < toks.length; ++i) {
            if (b.col[toks[i]] != 0) s.collateral[k++] = StateCollateral(toks[i], b.col[toks[i]]);
        }
    }

    function _sorted(address[] memory a) internal pure returns (address[] memory) {
        for (uint256 i = 1; i < a.length; ++i) {
            address x = a[i];
            uint256 j = i;
            while (j > 0 && a[j - 1] > x) {
                a[j] = a[j - 1];
                --j;
            }
            a[j] = x;
        }
        return a;
    }
}
