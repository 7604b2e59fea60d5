// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccountLeaf, InstrumentLeaf} from "../interfaces/IMarginVault.sol";

/// @title Leaves
/// @notice Leaf hashing of the attested Merkle tree, exactly as docs/protocol.md §3 and the
/// keeper (`keeper/attestation.py`): typed (first word = leaf type) and double-hashed, as
/// OpenZeppelin's StandardMerkleTree, so that no leaf can be read as an inner node.
library Leaves {
    uint8 internal constant ACCOUNT = 1;
    uint8 internal constant INSTRUMENT = 2;

    function hashAccount(AccountLeaf memory l) internal pure returns (bytes32) {
        return keccak256(
            bytes.concat(
                keccak256(
                    abi.encode(ACCOUNT, l.account, l.stateNonce, l.cumLo, l.cumHi, l.equity, l.im, l.mm, l.stateWord)
                )
            )
        );
    }

    function hashInstrument(InstrumentLeaf memory l) internal pure returns (bytes32) {
        return keccak256(
            bytes.concat(
                keccak256(
                    abi.encode(
                        INSTRUMENT, l.instrument, l.mark, l.lossPerUnitLong, l.lossPerUnitShort, l.fundingIndex, l.vectorHash
                    )
                )
            )
        );
    }
}
