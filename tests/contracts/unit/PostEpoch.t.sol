// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {BaseTest} from "./BaseTest.sol";
import {MarginVault} from "../../../contracts/MarginVault.sol";
import {Errors} from "../../../contracts/interfaces/Errors.sol";
import {Events} from "../../../contracts/interfaces/Events.sol";
import {
    AccountLeaf,
    Epoch,
    FundingUpdate,
    Settlement,
    TokenPrice
} from "../../../contracts/interfaces/IMarginVault.sol";
import {MockERC20} from "../../../contracts/mocks/MockERC20.sol";

/// @notice postEpoch: every rejection of docs/protocol.md §4 and of the replay protection of
/// docs/security.md §5.
contract PostEpochTest is BaseTest {
    function _fresh() internal returns (Epoch memory e) {
        vm.roll(block.number + 1);
        e = _buildEpoch(new AccountLeaf[](0));
    }

    function _keys(uint256 a, uint256 b) internal view returns (uint256[] memory k) {
        k = new uint256[](2);
        k[0] = signerKeys[a];
        k[1] = signerKeys[b];
    }

    function test_postEpoch_storesHeaderAndLeavesSafeMode() public {
        assertTrue(vault.isSafeMode());
        Epoch memory e = _fresh();
        vm.expectEmit(address(vault));
        emit Events.EpochPosted(1, e.snapshotBlock, e.timestamp, e.root, 1);
        _postHeader(e);
        (uint64 ep, uint64 sb, uint64 ts, bytes32 root) = vault.currentEpoch();
        assertEq(ep, 1);
        assertEq(sb, e.snapshotBlock);
        assertEq(ts, e.timestamp);
        assertEq(root, e.root);
        assertFalse(vault.isSafeMode());
        TokenPrice[] memory t = vault.tokenPrices();
        assertEq(t.length, 3);
        assertEq(t[1].price, 60_000e18);
    }

    function test_postEpoch_acceptsAllThreeSigners() public {
        Epoch memory e = _fresh();
        uint256[] memory k = new uint256[](3);
        k[0] = signerKeys[2];
        k[1] = signerKeys[0];
        k[2] = signerKeys[1];
        vault.postEpoch(e, _signEpoch(e, k));
        (uint64 ep,,,) = vault.currentEpoch();
        assertEq(ep, 1);
    }

    function test_postEpoch_revertsWhenBelowQuorum() public {
        Epoch memory e = _fresh();
        uint256[] memory k = new uint256[](1);
        k[0] = signerKeys[0];
        bytes[] memory sigs = _signEpoch(e, k);
        vm.expectRevert(abi.encodeWithSelector(Errors.BelowQuorum.selector, 1, 2));
        vault.postEpoch(e, sigs);
    }

    function test_postEpoch_revertsWhenNoSignerSetYet() public {
        MarginVault v = newVault(owner, address(usdc), MAX_AGE, FUTURE_TOLERANCE);
        Epoch memory e = _fresh();
        e.tokens = new TokenPrice[](0);
        e.configVersion = 0;
        vm.expectRevert(abi.encodeWithSelector(Errors.BelowQuorum.selector, 0, 0));
        v.postEpoch(e, new bytes[](0));
    }

    function test_postEpoch_revertsWhenDuplicateSigner() public {
        Epoch memory e = _fresh();
        bytes[] memory sigs = _signEpoch(e, _keys(0, 0));
        vm.expectRevert(abi.encodeWithSelector(Errors.DuplicateSigner.selector, signerAddrs[0]));
        vault.postEpoch(e, sigs);
    }

    function test_postEpoch_revertsWhenSignersNotSorted() public {
        Epoch memory e = _fresh();
        bytes[] memory sigs = _signEpoch(e, _keys(0, 1));
        (sigs[0], sigs[1]) = (sigs[1], sigs[0]);
        address lo = signerAddrs[0] < signerAddrs[1] ? signerAddrs[0] : signerAddrs[1];
        address hi = signerAddrs[0] < signerAddrs[1] ? signerAddrs[1] : signerAddrs[0];
        vm.expectRevert(abi.encodeWithSelector(Errors.SignersNotSorted.selector, hi, lo));
        vault.postEpoch(e, sigs);
    }

    function test_postEpoch_revertsWhenUnknownSigner() public {
        Epoch memory e = _fresh();
        uint256[] memory k = new uint256[](2);
        k[0] = signerKeys[0];
        k[1] = carolKey; // not a signer
        bytes[] memory sigs = _signEpoch(e, k);
        vm.expectRevert(abi.encodeWithSelector(Errors.UnknownSigner.selector, carol));
        vault.postEpoch(e, sigs);
    }

    function test_postEpoch_revertsWhenSignatureForged() public {
        Epoch memory e = _fresh();
        bytes[] memory sigs = _signEpoch(e, _keys(0, 1));
        // Signed header differs from the posted one: signatures recover to unknown addresses.
        e.root = keccak256("another root");
        vm.expectRevert(); // UnknownSigner(<whatever address the forged digest recovers to>)
        vault.postEpoch(e, sigs);
        // And a malformed signature is refused as such.
        Epoch memory e2 = _fresh();
        bytes[] memory bad = _signEpoch(e2, _keys(0, 1));
        bad[0] = hex"1234";
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidSignature.selector, 0));
        vault.postEpoch(e2, bad);
    }

    function test_postEpoch_revertsWhenSignedForAnotherChain() public {
        Epoch memory e = _fresh();
        vm.chainId(999);
        bytes[] memory sigs = _signEpoch(e, _keys(0, 1)); // digest under chain 999
        vm.chainId(31337);
        vm.expectRevert();
        vault.postEpoch(e, sigs);
        (uint64 ep,,,) = vault.currentEpoch();
        assertEq(ep, 0);
    }

    function test_postEpoch_revertsWhenSignedForAnotherVault() public {
        MarginVault other = newVault(owner, address(usdc), MAX_AGE, FUTURE_TOLERANCE);
        Epoch memory e = _fresh();
        bytes32 digest = other.hashEpoch(e);
        assertTrue(digest != vault.hashEpoch(e));
        bytes[] memory sigs = new bytes[](2);
        uint256[] memory k = _keys(0, 1);
        if (vm.addr(k[0]) > vm.addr(k[1])) (k[0], k[1]) = (k[1], k[0]);
        sigs[0] = _sign(k[0], digest);
        sigs[1] = _sign(k[1], digest);
        vm.expectRevert();
        vault.postEpoch(e, sigs);
    }

    function test_postEpoch_revertsWhenRotatedOutSigners() public {
        Epoch memory e = _fresh();
        bytes[] memory sigs = _signEpoch(e, _keys(0, 1)); // configVersion 1
        address[] memory fresh = new address[](2);
        fresh[0] = signerAddrs[0];
        fresh[1] = signerAddrs[1];
        vault.setSigners(fresh, 2); // same people, version 2
        vm.expectRevert(abi.encodeWithSelector(Errors.WrongConfigVersion.selector, 2, 1));
        vault.postEpoch(e, sigs);
        // Re-signed under the new version, the same signers are accepted.
        e.configVersion = 2;
        vault.postEpoch(e, _signEpoch(e, _keys(0, 1)));
    }

    function test_postEpoch_revertsWhenSignerRemoved() public {
        address[] memory fresh = new address[](2);
        fresh[0] = signerAddrs[1];
        fresh[1] = signerAddrs[2];
        vault.setSigners(fresh, 2);
        Epoch memory e = _fresh();
        bytes[] memory signed1 = _signEpoch(e, _keys(0, 1));
        vm.expectRevert(abi.encodeWithSelector(Errors.UnknownSigner.selector, signerAddrs[0]));
        vault.postEpoch(e, signed1);
    }

    function test_postEpoch_revertsWhenEpochRepeatedOrOld() public {
        Epoch memory e = _fresh();
        bytes[] memory sigs = _signEpoch(e, _keys(0, 1));
        vault.postEpoch(e, sigs);
        vm.roll(block.number + 1);
        vm.expectRevert(abi.encodeWithSelector(Errors.EpochNotIncreasing.selector, 1, 1));
        vault.postEpoch(e, sigs); // replay
        nextEpoch = 5;
        _postHeader(_fresh());
        Epoch memory old = _fresh();
        old.epoch = 4;
        bytes[] memory signed1 = _signEpoch(old, _keys(0, 1));
        vm.expectRevert(abi.encodeWithSelector(Errors.EpochNotIncreasing.selector, 5, 4));
        vault.postEpoch(old, signed1);
    }

    function test_postEpoch_revertsWhenTimestampStale() public {
        Epoch memory e = _fresh();
        vm.warp(block.timestamp + MAX_AGE + 1);
        bytes[] memory sigs = _signEpoch(e, _keys(0, 1));
        vm.expectRevert(abi.encodeWithSelector(Errors.StaleTimestamp.selector, e.timestamp, block.timestamp));
        vault.postEpoch(e, sigs);
    }

    function test_postEpoch_acceptsTimestampExactlyMaxAgeOld() public {
        Epoch memory e = _fresh();
        vm.warp(block.timestamp + MAX_AGE);
        vault.postEpoch(e, _signEpoch(e, _keys(0, 1)));
    }

    function test_postEpoch_revertsWhenTimestampInFuture() public {
        Epoch memory e = _fresh();
        e.timestamp = uint64(block.timestamp + FUTURE_TOLERANCE + 1);
        bytes[] memory sigs = _signEpoch(e, _keys(0, 1));
        vm.expectRevert(abi.encodeWithSelector(Errors.TimestampInFuture.selector, e.timestamp, block.timestamp));
        vault.postEpoch(e, sigs);
        e.timestamp = uint64(block.timestamp + FUTURE_TOLERANCE); // within tolerance
        vault.postEpoch(e, _signEpoch(e, _keys(0, 1)));
    }

    function test_postEpoch_revertsWhenTimestampBeforeLast() public {
        _post();
        vm.warp(block.timestamp + 10);
        Epoch memory e = _fresh();
        e.timestamp = uint64(block.timestamp - 11);
        bytes[] memory signed1 = _signEpoch(e, _keys(0, 1));
        vm.expectRevert(abi.encodeWithSelector(Errors.TimestampBeforeLast.selector, block.timestamp - 10, e.timestamp));
        vault.postEpoch(e, signed1);
    }

    function test_postEpoch_revertsWhenSnapshotBlockInvalid() public {
        Epoch memory e = _fresh();
        e.snapshotBlock = uint64(block.number); // not yet history
        bytes[] memory signed1 = _signEpoch(e, _keys(0, 1));
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidSnapshotBlock.selector, block.number, 0, block.number));
        vault.postEpoch(e, signed1);
        _post(); // snapshot = block.number - 1
        Epoch memory older = _fresh();
        older.snapshotBlock = uint64(block.number - 3);
        bytes[] memory signed2 = _signEpoch(older, _keys(0, 1));
        vm.expectRevert(
            abi.encodeWithSelector(
                Errors.InvalidSnapshotBlock.selector, block.number - 3, block.number - 2, block.number
            )
        );
        vault.postEpoch(older, signed2);
    }

    function test_postEpoch_revertsWhenRootEmpty() public {
        Epoch memory e = _fresh();
        e.root = bytes32(0);
        bytes[] memory signed1 = _signEpoch(e, _keys(0, 1));
        vm.expectRevert(Errors.EmptyRoot.selector);
        vault.postEpoch(e, signed1);
    }

    function test_postEpoch_revertsWhenTokenTableWrong() public {
        Epoch memory e = _fresh();
        TokenPrice[] memory t = new TokenPrice[](2);
        t[0] = prices[0];
        t[1] = prices[1];
        e.tokens = t;
        bytes[] memory signed1 = _signEpoch(e, _keys(0, 1));
        vm.expectRevert(abi.encodeWithSelector(Errors.TokenCountMismatch.selector, 3, 2));
        vault.postEpoch(e, signed1);

        e = _fresh();
        (e.tokens[0], e.tokens[1]) = (e.tokens[1], e.tokens[0]);
        bytes[] memory signed2 = _signEpoch(e, _keys(0, 1));
        vm.expectRevert(abi.encodeWithSelector(Errors.TokenTableMismatch.selector, 0, address(weth), address(wbtc)));
        vault.postEpoch(e, signed2);

        e = _fresh();
        e.tokens[2].price = 0;
        bytes[] memory signed3 = _signEpoch(e, _keys(0, 1));
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidTokenPrice.selector, address(gov), 0, 0.5e18, 1e18));
        vault.postEpoch(e, signed3);

        e = _fresh();
        e.tokens[2].downShock = 1e18 + 1;
        bytes[] memory signed4 = _signEpoch(e, _keys(0, 1));
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidTokenPrice.selector, address(gov), 1e18, 1e18 + 1, 1e18));
        vault.postEpoch(e, signed4);

        // The stored table is one slot per token: a price or an up shock wider than its field
        // is refused, not truncated.
        e = _fresh();
        e.tokens[2].price = uint256(type(uint128).max) + 1;
        bytes[] memory signed5 = _signEpoch(e, _keys(0, 1));
        vm.expectRevert(
            abi.encodeWithSelector(
                Errors.InvalidTokenPrice.selector, address(gov), uint256(type(uint128).max) + 1, 0.5e18, 1e18
            )
        );
        vault.postEpoch(e, signed5);

        e = _fresh();
        e.tokens[2].upShock = uint256(type(uint64).max) + 1;
        bytes[] memory signed6 = _signEpoch(e, _keys(0, 1));
        vm.expectRevert(
            abi.encodeWithSelector(
                Errors.InvalidTokenPrice.selector, address(gov), 1e18, 0.5e18, uint256(type(uint64).max) + 1
            )
        );
        vault.postEpoch(e, signed6);
    }

    function test_postEpoch_storesTheTableAtItsWidestValues() public {
        Epoch memory e = _fresh();
        e.tokens[2] = TokenPrice(address(gov), type(uint128).max, 1e18, type(uint64).max);
        _postHeader(e);
        TokenPrice[] memory t = vault.tokenPrices();
        assertEq(t.length, 3);
        assertEq(t[2].token, address(gov));
        assertEq(t[2].price, type(uint128).max);
        assertEq(t[2].downShock, 1e18);
        assertEq(t[2].upShock, type(uint64).max);
        assertEq(t[0].token, address(weth));
        assertEq(t[0].price, 3000e18);
    }

    function test_postEpoch_setsFundingIndex() public {
        Epoch memory e = _fresh();
        e.funding = new FundingUpdate[](1);
        e.funding[0] = FundingUpdate(btcPerp, -5e18);
        vm.expectEmit(address(vault));
        emit Events.FundingIndexSet(1, btcPerp, -5e18);
        _postHeader(e);
        assertEq(vault.cumFunding(btcPerp), -5e18);
    }

    function test_postEpoch_revertsWhenFundingNamesAnOptionOrUnknown() public {
        Epoch memory e = _fresh();
        e.funding = new FundingUpdate[](1);
        e.funding[0] = FundingUpdate(btcCall, 1);
        bytes[] memory signed1 = _signEpoch(e, _keys(0, 1));
        vm.expectRevert(abi.encodeWithSelector(Errors.NotAPerp.selector, btcCall));
        vault.postEpoch(e, signed1);
        e.funding[0] = FundingUpdate(99, 1);
        bytes[] memory signed2 = _signEpoch(e, _keys(0, 1));
        vm.expectRevert(abi.encodeWithSelector(Errors.UnknownInstrument.selector, 99));
        vault.postEpoch(e, signed2);
    }

    function test_postEpoch_setsSettlementPriceOnceAfterExpiry() public {
        vm.warp(EXPIRY);
        Epoch memory e = _fresh();
        e.settlements = new Settlement[](1);
        e.settlements[0] = Settlement(btcCall, 65_000e18);
        _postHeader(e);
        (uint256 p, bool set) = vault.settlementPrice(btcCall);
        assertEq(p, 65_000e18);
        assertTrue(set);

        Epoch memory again = _fresh();
        again.settlements = new Settlement[](1);
        again.settlements[0] = Settlement(btcCall, 70_000e18);
        bytes[] memory signed1 = _signEpoch(again, _keys(0, 1));
        vm.expectRevert(abi.encodeWithSelector(Errors.SettlementAlreadySet.selector, btcCall));
        vault.postEpoch(again, signed1);
    }

    function test_postEpoch_revertsWhenSettlingBeforeExpiryOrAPerp() public {
        Epoch memory e = _fresh();
        e.settlements = new Settlement[](1);
        e.settlements[0] = Settlement(btcCall, 65_000e18);
        bytes[] memory signed1 = _signEpoch(e, _keys(0, 1));
        vm.expectRevert(abi.encodeWithSelector(Errors.NotExpired.selector, btcCall, EXPIRY, e.timestamp));
        vault.postEpoch(e, signed1);
        e.settlements[0] = Settlement(btcPerp, 65_000e18);
        bytes[] memory signed2 = _signEpoch(e, _keys(0, 1));
        vm.expectRevert(abi.encodeWithSelector(Errors.NotAnOption.selector, btcPerp));
        vault.postEpoch(e, signed2);
    }

    function test_postEpoch_newTokenNeedsAPrice() public {
        MockERC20 sol = new MockERC20("SOL", "SOL", 9);
        vault.registerToken(address(sol));
        Epoch memory e = _fresh();
        bytes[] memory signed1 = _signEpoch(e, _keys(0, 1));
        vm.expectRevert(abi.encodeWithSelector(Errors.TokenCountMismatch.selector, 4, 3));
        vault.postEpoch(e, signed1);
        prices.push(TokenPrice(address(sol), 150e18, 0.3e18, 0.3e18));
        _post();
        assertEq(vault.tokenPrices().length, 4);
    }

    function test_postEpoch_revertsWhenCalledOnModuleDirectly() public {
        Epoch memory e = _fresh();
        (bool ok, bytes memory ret) =
            vault.epochModule().call(abi.encodeCall(vault.postEpoch, (e, _signEpoch(e, _keys(0, 1)))));
        assertFalse(ok);
        assertEq(bytes4(ret), Errors.NotDelegated.selector);
    }
}
