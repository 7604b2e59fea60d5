// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";

import {AggregatorV3Interface} from "./interfaces/AggregatorV3Interface.sol";
import {IMarginVault, TokenPrice} from "./interfaces/IMarginVault.sol";
import {IPriceReferences} from "./interfaces/IPriceReferences.sol";
import {WAD} from "./libraries/FixedPoint.sol";
import {Errors} from "./interfaces/Errors.sol";
import {Events} from "./interfaces/Events.sol";

/// @title PriceReferences
/// @notice Market sanity on chain (docs/protocol.md §4, "Reference prices"): per collateral
/// token of one vault, a Chainlink feed and a maximum deviation; the vault's `postEpoch` calls
/// `checkPrices`, which refuses the epoch when an attested spot price is further than that
/// from the feed's answer. See `IPriceReferences` for the natspec.
/// @dev Its own contract, deployed beside the vault and set with `setPriceReferences`: the
/// vault deploys its modules in its constructor and its init code is at the EIP-3860 limit
/// (docs/gas.md). Called, not delegatecalled: it reads the vault through views only.
contract PriceReferences is IPriceReferences, Ownable2Step, Errors, Events {
    /// @dev Reasons of `PriceReferenceSkipped`.
    uint8 internal constant REFERENCE_REVERTED = 1; // the feed reverted
    uint8 internal constant REFERENCE_INVALID_ANSWER = 2; // answer <= 0 or >= 2^128
    uint8 internal constant REFERENCE_STALE = 3; // older than maxStaleness
    /// @dev Longer than any Chainlink heartbeat (a day at most) with a margin: an older
    /// answer is no reference.
    uint32 internal constant MAX_STALENESS = 3 days;
    /// @dev Up to 18 decimals the answer scales to WAD exactly.
    uint8 internal constant MAX_DECIMALS = 18;

    /// @dev One slot per token.
    struct Reference {
        address aggregator; // AggregatorV3Interface, USD per whole token
        uint64 maxDeviation; // WAD fraction of the reference price, <= 1e18
        uint24 maxStaleness; // seconds, <= 3 days
        uint8 decimals; // of the feed's answer, <= 18, read once
    }

    /// @inheritdoc IPriceReferences
    address public immutable vault;

    address[] internal _referenced; // tokens with a reference, at most the vault's 16
    mapping(address => Reference) internal _references; // by token

    constructor(address vault_, address owner_) Ownable(owner_) {
        if (vault_ == address(0)) revert Errors.ZeroAddress();
        vault = vault_;
    }

    /* CONFIGURATION */

    /// @inheritdoc IPriceReferences
    function setPriceReference(address token, address aggregator, uint64 maxDeviation, uint32 maxStaleness)
        external
        onlyOwner
    {
        (bool registered,,,) = IMarginVault(vault).tokenInfo(token);
        if (!registered) revert Errors.UnknownToken(token);
        bool had = _references[token].aggregator != address(0);
        if (aggregator == address(0)) {
            if (had) _removeFromList(token);
            delete _references[token];
            emit Events.PriceReferenceSet(token, address(0), 0, 0, 0);
            return;
        }
        uint8 dec = _feedDecimals(aggregator);
        // Above 100% any price down to zero would pass.
        if (
            maxDeviation == 0 || maxDeviation > WAD || maxStaleness == 0 || maxStaleness > MAX_STALENESS
                || dec > MAX_DECIMALS
        ) revert Errors.InvalidPriceReference(token, aggregator, maxDeviation, maxStaleness);
        if (!had) _referenced.push(token);
        _references[token] = Reference(aggregator, maxDeviation, uint24(maxStaleness), dec);
        emit Events.PriceReferenceSet(token, aggregator, maxDeviation, maxStaleness, dec);
    }

    /// @dev Disabled: without an owner a broken feed could never be removed, and a feed that
    /// reverts is skipped but one that answers wrong refuses every epoch.
    function renounceOwnership() public view override onlyOwner {
        revert Errors.RenounceOwnershipDisabled();
    }

    /* THE CHECK */

    /// @inheritdoc IPriceReferences
    function checkPrices() external {
        (uint64 epoch,,,) = IMarginVault(vault).currentEpoch();
        for (uint256 i; i < _referenced.length; ++i) {
            address token = _referenced[i];
            (,,, TokenPrice memory p) = IMarginVault(vault).tokenInfo(token);
            _check(epoch, token, p.price, _references[token]);
        }
    }

    /// @dev `price` 0 (the vault's current epoch does not price the token yet) only a direct
    /// call can see: postEpoch has stored a non-zero price for every token.
    function _check(uint64 epoch, address token, uint256 price, Reference memory r) internal {
        (uint8 skipped, uint256 ref, int256 answer, uint256 updatedAt) = _read(r);
        if (skipped != 0) {
            emit Events.PriceReferenceSkipped(epoch, token, skipped, answer, updatedAt);
            return;
        }
        uint256 diff = price > ref ? price - ref : ref - price;
        // diff / ref > maxDeviation, exactly: both sides times ref * WAD (each < 2^250)
        if (diff * WAD > uint256(r.maxDeviation) * ref) {
            uint256 deviation = (diff * WAD - 1) / ref + 1; // rounded up
            revert Errors.PriceDeviatesFromReference(token, price, ref, deviation, r.maxDeviation);
        }
    }

    /// @dev The reference price in WAD USD per whole token, or why there is none
    /// (`skipped` != 0). A feed that reverts is skipped (try/catch): it does not stop the
    /// epochs (docs/security.md §1 says why).
    function _read(Reference memory r)
        internal
        view
        returns (uint8 skipped, uint256 ref, int256 answer, uint256 updatedAt)
    {
        try AggregatorV3Interface(r.aggregator).latestRoundData() returns (
            uint80, int256 a, uint256, uint256 u, uint80
        ) {
            (answer, updatedAt) = (a, u);
        } catch {
            return (REFERENCE_REVERTED, 0, 0, 0);
        }
        // < 2^128: a price the vault's token table can hold, and no overflow below.
        if (answer <= 0 || uint256(answer) > type(uint128).max) return (REFERENCE_INVALID_ANSWER, 0, answer, updatedAt);
        // An answer stamped ahead of the chain counts as fresh (Chainlink's never is).
        if (block.timestamp > updatedAt && block.timestamp - updatedAt > r.maxStaleness) {
            return (REFERENCE_STALE, 0, answer, updatedAt);
        }
        return (0, uint256(answer) * 10 ** (MAX_DECIMALS - r.decimals), answer, updatedAt);
    }

    /// @dev 255 (refused) for an address without code, whose answers could not be decoded.
    function _feedDecimals(address aggregator) internal view returns (uint8) {
        if (aggregator.code.length == 0) return type(uint8).max;
        return AggregatorV3Interface(aggregator).decimals();
    }

    function _removeFromList(address token) internal {
        uint256 n = _referenced.length;
        for (uint256 i; i < n; ++i) {
            if (_referenced[i] == token) {
                _referenced[i] = _referenced[n - 1];
                _referenced.pop();
                return;
            }
        }
    }

    /* VIEWS */

    /// @inheritdoc IPriceReferences
    function priceReference(address token) external view returns (address, uint64, uint32, uint8) {
        Reference memory r = _references[token];
        return (r.aggregator, r.maxDeviation, r.maxStaleness, r.decimals);
    }

    /// @inheritdoc IPriceReferences
    function referencedTokens() external view returns (address[] memory) {
        return _referenced;
    }
}
