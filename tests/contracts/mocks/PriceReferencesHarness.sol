// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {PriceReferences} from "../../../contracts/PriceReferences.sol";

/// @notice Exposes the deviation check of one price, for the boundary fuzz test.
contract PriceReferencesHarness is PriceReferences {
    constructor(address vault_, address owner_) PriceReferences(vault_, owner_) {}

    function exposedCheck(address token, uint256 price) external {
        _check(1, token, price, _references[token]);
    }
}
