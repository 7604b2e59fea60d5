// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Epoch, TokenPrice, FundingUpdate, Settlement, Quote, Leg} from "../interfaces/IMarginVault.sol";

/// @title TypedDataHashing
/// @notice EIP-712 struct hashes of the epoch header and the quote, exactly as
/// docs/protocol.md §4 and §7. An array of structs is encoded as EIP-712 says: the keccak256
/// of the concatenated struct hashes. The caller wraps the result with the domain
/// (`EIP712._hashTypedDataV4`).
library TypedDataHashing {
    bytes32 internal constant TOKEN_PRICE_TYPEHASH =
        keccak256("TokenPrice(address token,uint256 price,uint256 downShock,uint256 upShock)");
    bytes32 internal constant FUNDING_UPDATE_TYPEHASH = keccak256("FundingUpdate(uint32 instrument,int256 cumFunding)");
    bytes32 internal constant SETTLEMENT_TYPEHASH = keccak256("Settlement(uint32 instrument,uint256 price)");
    bytes32 internal constant EPOCH_TYPEHASH = keccak256(
        "Epoch(uint64 epoch,uint64 snapshotBlock,uint64 timestamp,bytes32 root,bytes32 inputsHash,uint64 configVersion,"
        "TokenPrice[] tokens,FundingUpdate[] funding,Settlement[] settlements)"
        "FundingUpdate(uint32 instrument,int256 cumFunding)" "Settlement(uint32 instrument,uint256 price)"
        "TokenPrice(address token,uint256 price,uint256 downShock,uint256 upShock)"
    );
    bytes32 internal constant LEG_TYPEHASH = keccak256("Leg(uint32 instrument,int256 size,uint256 price)");
    bytes32 internal constant QUOTE_TYPEHASH = keccak256(
        "Quote(address maker,uint256 makerAccount,address taker,Leg[] legs,uint256 nonce,uint64 deadline)"
        "Leg(uint32 instrument,int256 size,uint256 price)"
    );

    function hashEpoch(Epoch calldata e) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(
                EPOCH_TYPEHASH,
                e.epoch,
                e.snapshotBlock,
                e.timestamp,
                e.root,
                e.inputsHash,
                e.configVersion,
                _hashTokens(e.tokens),
                _hashFunding(e.funding),
                _hashSettlements(e.settlements)
            )
        );
    }

    function hashQuote(Quote calldata q) internal pure returns (bytes32) {
        return
            keccak256(
                abi.encode(QUOTE_TYPEHASH, q.maker, q.makerAccount, q.taker, _hashLegs(q.legs), q.nonce, q.deadline)
            );
    }

    function _hashTokens(TokenPrice[] calldata a) private pure returns (bytes32) {
        bytes32[] memory h = new bytes32[](a.length);
        for (uint256 i; i < a.length; ++i) {
            h[i] = keccak256(abi.encode(TOKEN_PRICE_TYPEHASH, a[i].token, a[i].price, a[i].downShock, a[i].upShock));
        }
        return keccak256(abi.encodePacked(h));
    }

    function _hashFunding(FundingUpdate[] calldata a) private pure returns (bytes32) {
        bytes32[] memory h = new bytes32[](a.length);
        for (uint256 i; i < a.length; ++i) {
            h[i] = keccak256(abi.encode(FUNDING_UPDATE_TYPEHASH, a[i].instrument, a[i].cumFunding));
        }
        return keccak256(abi.encodePacked(h));
    }

    function _hashSettlements(Settlement[] calldata a) private pure returns (bytes32) {
        bytes32[] memory h = new bytes32[](a.length);
        for (uint256 i; i < a.length; ++i) {
            h[i] = keccak256(abi.encode(SETTLEMENT_TYPEHASH, a[i].instrument, a[i].price));
        }
        return keccak256(abi.encodePacked(h));
    }

    function _hashLegs(Leg[] calldata a) private pure returns (bytes32) {
        bytes32[] memory h = new bytes32[](a.length);
        for (uint256 i; i < a.length; ++i) {
            h[i] = keccak256(abi.encode(LEG_TYPEHASH, a[i].instrument, a[i].size, a[i].price));
        }
        return keccak256(abi.encodePacked(h));
    }
}
