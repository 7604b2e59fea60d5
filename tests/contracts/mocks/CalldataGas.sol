// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @notice The calldata cost of a transaction's data (EIP-2028: 4 gas per zero byte, 16 per
/// other), for the gas tests' transaction estimates (docs/gas.md).
library CalldataGas {
    function cost(bytes memory data) internal pure returns (uint256 gas) {
        for (uint256 i; i < data.length; ++i) {
            gas += data[i] == 0 ? 4 : 16;
        }
    }
}
