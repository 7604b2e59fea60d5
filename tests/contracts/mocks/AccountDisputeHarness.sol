// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccountDispute, Verdict} from "../../../contracts/libraries/AccountDispute.sol";
import {AggregationParams, RiskVector} from "../../../contracts/libraries/AccountMargin.sol";

/// @notice External entry points over AccountDispute: the vectors arrive in calldata, as in a
/// dispute, and each call runs in its own memory (the vector test makes thousands; docs/gas.md).
contract AccountDisputeHarness {
    function judge(
        int256 cash,
        int256[] calldata sizes,
        RiskVector[] calldata vectors,
        AggregationParams calldata p,
        int256 equity,
        uint256 im,
        uint256 mm
    ) external pure returns (Verdict memory) {
        return AccountDispute.judge(cash, sizes, vectors, p, equity, im, mm);
    }

    /// @notice What a dispute adds to the judge: the hash of every vector and of the parameters,
    /// to check against the committed ones (docs/gas.md measures this call).
    function judgeHashed(
        int256 cash,
        int256[] calldata sizes,
        RiskVector[] calldata vectors,
        AggregationParams calldata p,
        int256 equity,
        uint256 im,
        uint256 mm
    ) external pure returns (Verdict memory v, bytes32[] memory vectorHashes, bytes32 paramsHash) {
        vectorHashes = new bytes32[](vectors.length);
        for (uint256 j; j < vectors.length; ++j) {
            vectorHashes[j] = AccountDispute.hashVector(vectors[j]);
        }
        paramsHash = AccountDispute.hashParams(p);
        v = AccountDispute.judge(cash, sizes, vectors, p, equity, im, mm);
    }

    function recompute(
        int256 cash,
        int256[] calldata sizes,
        RiskVector[] calldata vectors,
        AggregationParams calldata p
    ) external pure returns (Verdict memory) {
        return AccountDispute.recompute(cash, sizes, vectors, p);
    }

    function compare(Verdict calldata recomputed, int256 equity, uint256 im, uint256 mm)
        external
        pure
        returns (Verdict memory)
    {
        return AccountDispute.compare(recomputed, equity, im, mm);
    }

    function hashVector(RiskVector calldata v) external pure returns (bytes32) {
        return AccountDispute.hashVector(v);
    }

    function hashParams(AggregationParams calldata p) external pure returns (bytes32) {
        return AccountDispute.hashParams(p);
    }

    function anyWrong(Verdict calldata v) external pure returns (bool) {
        return AccountDispute.anyWrong(v);
    }

    function tolerance(uint256 grossNotionalUp, int256 cash) external pure returns (uint256) {
        return AccountDispute.tolerance(grossNotionalUp, cash);
    }

    function tokenSize(uint256 amount, uint8 decimals) external pure returns (int256) {
        return AccountDispute.tokenSize(amount, decimals);
    }
}
