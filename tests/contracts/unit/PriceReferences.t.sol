// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

import {BaseTest} from "./BaseTest.sol";
import {PriceReferences} from "../../../contracts/PriceReferences.sol";
import {Errors} from "../../../contracts/interfaces/Errors.sol";
import {Events} from "../../../contracts/interfaces/Events.sol";
import {AccountLeaf, Epoch} from "../../../contracts/interfaces/IMarginVault.sol";
import {MockAggregatorV3} from "../../../contracts/mocks/MockAggregatorV3.sol";
import {PriceReferencesHarness} from "../mocks/PriceReferencesHarness.sol";

/// @notice Reference prices (docs/protocol.md §4, "Reference prices"): the configuration,
/// the check postEpoch runs, and what a feed that cannot be read does (docs/security.md §1).
contract PriceReferencesTest is BaseTest {
    uint64 internal constant MAX_DEV = 0.05e18; // 5%
    uint32 internal constant MAX_STALE = 1 hours;

    PriceReferences internal refs;
    MockAggregatorV3 internal ethUsd; // 8 decimals, as Chainlink's ETH / USD

    function setUp() public override {
        super.setUp();
        refs = new PriceReferences(address(vault), owner);
        ethUsd = new MockAggregatorV3(8, 3000e8); // prices[0] is WETH at 3,000
        vault.setPriceReferences(address(refs));
        refs.setPriceReference(address(weth), address(ethUsd), MAX_DEV, MAX_STALE);
    }

    /// @dev A signed epoch pricing WETH at `price` (the other tokens as in BaseTest).
    function _epochWethAt(uint256 price) internal returns (Epoch memory e, bytes[] memory sigs) {
        prices[0].price = price;
        vm.roll(block.number + 1);
        e = _buildEpoch(new AccountLeaf[](0));
        sigs = _signEpoch(e, _quorumKeys());
    }

    function _postWethAt(uint256 price) internal {
        (Epoch memory e, bytes[] memory sigs) = _epochWethAt(price);
        vault.postEpoch(e, sigs);
        nextEpoch = e.epoch + 1;
    }

    function _expectDeviation(uint256 price, uint256 ref, uint256 deviation) internal {
        (Epoch memory e, bytes[] memory sigs) = _epochWethAt(price);
        vm.expectRevert(
            abi.encodeWithSelector(
                Errors.PriceDeviatesFromReference.selector, address(weth), price, ref, deviation, MAX_DEV
            )
        );
        vault.postEpoch(e, sigs);
    }

    /* CONFIGURATION */

    function test_setPriceReference_storesAndEmits() public {
        MockAggregatorV3 btcUsd = new MockAggregatorV3(8, 60_000e8);
        vm.expectEmit(address(refs));
        emit Events.PriceReferenceSet(address(wbtc), address(btcUsd), 0.1e18, 2 hours, 8);
        refs.setPriceReference(address(wbtc), address(btcUsd), 0.1e18, 2 hours);
        (address agg, uint64 dev, uint32 stale, uint8 dec) = refs.priceReference(address(wbtc));
        assertEq(agg, address(btcUsd));
        assertEq(dev, 0.1e18);
        assertEq(stale, 2 hours);
        assertEq(dec, 8);
        assertEq(refs.referencedTokens().length, 2);
    }

    function test_setPriceReference_replacesWithoutListingTwice() public {
        MockAggregatorV3 other = new MockAggregatorV3(18, 3000e18);
        refs.setPriceReference(address(weth), address(other), 0.02e18, 10 minutes);
        assertEq(refs.referencedTokens().length, 1);
        (address agg,,, uint8 dec) = refs.priceReference(address(weth));
        assertEq(agg, address(other));
        assertEq(dec, 18);
    }

    function test_setPriceReference_zeroAggregatorRemoves() public {
        vm.expectEmit(address(refs));
        emit Events.PriceReferenceSet(address(weth), address(0), 0, 0, 0);
        refs.setPriceReference(address(weth), address(0), 0, 0);
        (address agg, uint64 dev,,) = refs.priceReference(address(weth));
        assertEq(agg, address(0));
        assertEq(dev, 0);
        assertEq(refs.referencedTokens().length, 0);
        _postWethAt(10_000e18); // no longer checked
    }

    function test_setPriceReference_revertsWhenNotOwner() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        refs.setPriceReference(address(weth), address(ethUsd), MAX_DEV, MAX_STALE);
    }

    function test_setPriceReference_revertsWhenTokenUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.UnknownToken.selector, address(usdc)));
        refs.setPriceReference(address(usdc), address(ethUsd), MAX_DEV, MAX_STALE);
    }

    function _expectInvalid(address agg, uint64 dev, uint32 stale) internal {
        vm.expectRevert(
            abi.encodeWithSelector(Errors.InvalidPriceReference.selector, address(weth), agg, dev, stale)
        );
        refs.setPriceReference(address(weth), agg, dev, stale);
    }

    function test_setPriceReference_revertsWhenOutOfRange() public {
        _expectInvalid(address(ethUsd), 0, MAX_STALE); // a zero deviation refuses every price
        _expectInvalid(address(ethUsd), 1e18 + 1, MAX_STALE); // above 100%
        _expectInvalid(address(ethUsd), MAX_DEV, 0);
        _expectInvalid(address(ethUsd), MAX_DEV, 3 days + 1);
        _expectInvalid(alice, MAX_DEV, MAX_STALE); // no code
        _expectInvalid(address(new MockAggregatorV3(19, 1)), MAX_DEV, MAX_STALE);
        refs.setPriceReference(address(weth), address(ethUsd), 1e18, 3 days); // the limits pass
    }

    function test_renounceOwnership_reverts() public {
        vm.expectRevert(Errors.RenounceOwnershipDisabled.selector);
        refs.renounceOwnership();
    }

    function test_setPriceReferences_revertsWhenBoundToAnotherVault() public {
        PriceReferences foreign = new PriceReferences(address(usdc), owner);
        vm.expectRevert(
            abi.encodeWithSelector(Errors.PriceReferencesForAnotherVault.selector, address(foreign), address(usdc))
        );
        vault.setPriceReferences(address(foreign));
    }

    function test_setPriceReferences_revertsWhenNotOwner() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        vault.setPriceReferences(address(0));
    }

    function test_setPriceReferences_zeroDisablesTheCheck() public {
        vm.expectEmit(address(vault));
        emit Events.PriceReferencesSet(address(0));
        vault.setPriceReferences(address(0));
        assertEq(vault.priceReferences(), address(0));
        _postWethAt(10_000e18);
    }

    /* THE CHECK IN postEpoch */

    function test_postEpoch_passesWithinDeviation() public {
        _postWethAt(3150e18); // +5% exactly
        _postWethAt(2850e18); // -5% exactly
        (,,, bytes32 root) = vault.currentEpoch();
        assertTrue(root != bytes32(0));
        assertEq(vault.tokenPrices()[0].price, 2850e18);
    }

    function test_postEpoch_revertsWhenAboveReference() public {
        _expectDeviation(3150e18 + 1, 3000e18, 0.05e18 + 1); // 1 wei beyond, deviation rounded up
        _expectDeviation(3300e18, 3000e18, 0.1e18);
    }

    function test_postEpoch_revertsWhenBelowReference() public {
        _expectDeviation(2850e18 - 1, 3000e18, 0.05e18 + 1);
        _expectDeviation(1e18, 3000e18, 0.999666666666666667e18);
    }

    function test_postEpoch_checksEveryReferencedToken() public {
        MockAggregatorV3 btcUsd = new MockAggregatorV3(8, 60_000e8);
        refs.setPriceReference(address(wbtc), address(btcUsd), MAX_DEV, MAX_STALE);
        btcUsd.setAnswer(50_000e8);
        (Epoch memory e, bytes[] memory sigs) = _epochWethAt(3000e18);
        vm.expectRevert(
            abi.encodeWithSelector(
                Errors.PriceDeviatesFromReference.selector, address(wbtc), 60_000e18, 50_000e18, 0.2e18, MAX_DEV
            )
        );
        vault.postEpoch(e, sigs);
    }

    function test_postEpoch_skipsStaleReference() public {
        uint256 updatedAt = block.timestamp;
        vm.warp(block.timestamp + MAX_STALE + 1);
        (Epoch memory e, bytes[] memory sigs) = _epochWethAt(10_000e18);
        vm.expectEmit(address(refs));
        emit Events.PriceReferenceSkipped(e.epoch, address(weth), 3, 3000e8, updatedAt);
        vault.postEpoch(e, sigs);
        assertEq(vault.tokenPrices()[0].price, 10_000e18);
    }

    function test_postEpoch_checksReferenceAtMaxStaleness() public {
        vm.warp(block.timestamp + MAX_STALE); // exactly maxStaleness old: still a reference
        _expectDeviation(10_000e18, 3000e18, 2.333333333333333334e18);
    }

    function test_postEpoch_checksAnswerStampedInTheFuture() public {
        ethUsd.setRound(7, 3000e8, block.timestamp + 1 days);
        _expectDeviation(10_000e18, 3000e18, 2.333333333333333334e18);
    }

    function test_postEpoch_skipsZeroAnswer() public {
        ethUsd.setRound(2, 0, block.timestamp);
        (Epoch memory e, bytes[] memory sigs) = _epochWethAt(3000e18);
        vm.expectEmit(address(refs));
        emit Events.PriceReferenceSkipped(e.epoch, address(weth), 2, 0, block.timestamp);
        vault.postEpoch(e, sigs);
    }

    function test_postEpoch_skipsNegativeAnswer() public {
        ethUsd.setRound(2, -1, block.timestamp);
        (Epoch memory e, bytes[] memory sigs) = _epochWethAt(3000e18);
        vm.expectEmit(address(refs));
        emit Events.PriceReferenceSkipped(e.epoch, address(weth), 2, -1, block.timestamp);
        vault.postEpoch(e, sigs);
    }

    function test_postEpoch_skipsAnswerTooLargeForTheTable() public {
        int256 huge = int256(uint256(type(uint128).max)) + 1;
        ethUsd.setRound(2, huge, block.timestamp);
        (Epoch memory e, bytes[] memory sigs) = _epochWethAt(3000e18);
        vm.expectEmit(address(refs));
        emit Events.PriceReferenceSkipped(e.epoch, address(weth), 2, huge, block.timestamp);
        vault.postEpoch(e, sigs);
    }

    function test_postEpoch_skipsRevertingReference() public {
        ethUsd.setReverts(true);
        (Epoch memory e, bytes[] memory sigs) = _epochWethAt(10_000e18);
        vm.expectEmit(address(refs));
        emit Events.PriceReferenceSkipped(e.epoch, address(weth), 1, 0, 0);
        vault.postEpoch(e, sigs);
        assertEq(vault.tokenPrices()[0].price, 10_000e18);
    }

    function test_checkPrices_anyoneRechecksTheCurrentEpoch() public {
        _postWethAt(3000e18);
        ethUsd.setAnswer(2000e8);
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(
                Errors.PriceDeviatesFromReference.selector, address(weth), 3000e18, 2000e18, 0.5e18, MAX_DEV
            )
        );
        refs.checkPrices();
    }

    function test_constructor_revertsWhenVaultZero() public {
        vm.expectRevert(Errors.ZeroAddress.selector);
        new PriceReferences(address(0), owner);
    }
}

/// @notice The deviation arithmetic at its boundary: exactly maxDeviation passes, one wei
/// beyond fails, on both sides, for feeds of 6, 8 and 18 decimals.
contract PriceReferencesBoundaryTest is BaseTest {
    PriceReferencesHarness internal refs;

    function setUp() public override {
        super.setUp();
        refs = new PriceReferencesHarness(address(vault), owner);
    }

    function testFuzz_check_boundary(uint256 decIndex, uint256 answer, uint64 maxDev) public {
        uint8[3] memory decs = [6, 8, 18];
        uint8 dec = decs[decIndex % 3];
        answer = bound(answer, 1, type(uint128).max / 10 ** (18 - dec) / 2); // ref + band < 2^128
        maxDev = uint64(bound(maxDev, 1, 1e18));
        MockAggregatorV3 feed = new MockAggregatorV3(dec, int256(answer));
        refs.setPriceReference(address(weth), address(feed), maxDev, 1 hours);
        uint256 ref = answer * 10 ** (18 - dec);
        uint256 band = ref * maxDev / 1e18; // the largest |p - ref| with |p - ref| * 1e18 <= maxDev * ref
        refs.exposedCheck(address(weth), ref + band);
        vm.expectPartialRevert(Errors.PriceDeviatesFromReference.selector);
        refs.exposedCheck(address(weth), ref + band + 1);
        if (band < ref) refs.exposedCheck(address(weth), ref - band);
        if (band + 1 < ref) {
            vm.expectPartialRevert(Errors.PriceDeviatesFromReference.selector);
            refs.exposedCheck(address(weth), ref - band - 1);
        }
    }

    function testFuzz_check_reportedDeviationIsRoundedUp(uint256 answer, uint256 price) public {
        answer = bound(answer, 1, 1e30);
        price = bound(price, 1, type(uint128).max);
        MockAggregatorV3 feed = new MockAggregatorV3(18, int256(answer));
        refs.setPriceReference(address(weth), address(feed), 1, 1 hours);
        uint256 diff = price > answer ? price - answer : answer - price;
        if (diff == 0) return refs.exposedCheck(address(weth), price);
        uint256 up = (diff * 1e18 + answer - 1) / answer;
        vm.expectRevert(
            abi.encodeWithSelector(Errors.PriceDeviatesFromReference.selector, address(weth), price, answer, up, 1)
        );
        refs.exposedCheck(address(weth), price);
    }
}
