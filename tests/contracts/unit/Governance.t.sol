// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

import {BaseTest} from "./BaseTest.sol";
import {MarginVault} from "../../../contracts/MarginVault.sol";
import {ExchangeModule} from "../../../contracts/modules/ExchangeModule.sol";
import {MockERC20} from "../../../contracts/mocks/MockERC20.sol";
import {Errors} from "../../../contracts/interfaces/Errors.sol";
import {Events} from "../../../contracts/interfaces/Events.sol";
import {Instrument, InstrumentKind, TokenPrice} from "../../../contracts/interfaces/IMarginVault.sol";

/// @notice constructor and owner actions: registration, signer set, risk config, insurance
/// withdrawal (the only owner action that moves tokens), two-step ownership.
contract GovernanceTest is BaseTest {
    /* CONSTRUCTOR */

    function test_constructor_setsConfig() public view {
        assertEq(vault.owner(), owner);
        assertEq(vault.settlementToken(), address(usdc));
        assertEq(vault.maxAge(), MAX_AGE);
        assertEq(vault.futureTolerance(), FUTURE_TOLERANCE);
        assertEq(vault.liquidationPenalty(), 0.3e18);
        assertEq(vault.insuranceShare(), 0.5e18);
        assertTrue(vault.epochModule() != address(0));
        assertTrue(vault.exchangeModule() != address(0));
    }

    function test_constructor_revertsWhenSettlementTokenInvalid() public {
        (address em, address xm, address fm) = modulesFor(address(usdc));
        vm.expectRevert(Errors.ZeroAddress.selector);
        new MarginVault(owner, address(0), MAX_AGE, FUTURE_TOLERANCE, em, xm, fm);
        MockERC20 odd = new MockERC20("X", "X", 19);
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidToken.selector, address(odd)));
        new MarginVault(owner, address(odd), MAX_AGE, FUTURE_TOLERANCE, em, xm, fm);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableInvalidOwner.selector, address(0)));
        new MarginVault(address(0), address(usdc), MAX_AGE, FUTURE_TOLERANCE, em, xm, fm);
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidRiskConfig.selector, 0, 0.3e18, 0.5e18));
        new MarginVault(owner, address(usdc), 0, FUTURE_TOLERANCE, em, xm, fm);
    }

    function test_constructor_revertsOnModulesItCannotUse() public {
        (address em, address xm, address fm) = modulesFor(address(usdc));
        // no code: a delegatecall there would succeed and do nothing
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidModule.selector, alice));
        new MarginVault(owner, address(usdc), MAX_AGE, FUTURE_TOLERANCE, alice, xm, fm);
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidModule.selector, alice));
        new MarginVault(owner, address(usdc), MAX_AGE, FUTURE_TOLERANCE, em, alice, fm);
        // an exchange module built for another settlement token, or another cash scale
        (, address forWeth, address fmWeth) = modulesFor(address(weth));
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidModule.selector, forWeth));
        new MarginVault(owner, address(usdc), MAX_AGE, FUTURE_TOLERANCE, em, forWeth, fm);
        MockERC20 usd18 = new MockERC20("USD 18", "USD18", 18);
        (, address scale1, address fm18) = modulesFor(address(usd18));
        address wrongScale = address(new ExchangeModule(address(usdc), 1));
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidModule.selector, wrongScale));
        new MarginVault(owner, address(usdc), MAX_AGE, FUTURE_TOLERANCE, em, wrongScale, fm);
        // the right pair deploys, and the vault delegates to exactly those
        // a finality module for another settlement token, or none
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidModule.selector, fmWeth));
        new MarginVault(owner, address(usdc), MAX_AGE, FUTURE_TOLERANCE, em, xm, fmWeth);
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidModule.selector, alice));
        new MarginVault(owner, address(usdc), MAX_AGE, FUTURE_TOLERANCE, em, xm, alice);
        MarginVault v = new MarginVault(owner, address(usd18), MAX_AGE, FUTURE_TOLERANCE, em, scale1, fm18);
        assertEq(v.epochModule(), em);
        assertEq(v.exchangeModule(), scale1);
        assertEq(v.finalityModule(), fm18);
    }

    /* TOKENS */

    function test_registerToken_recordsOrderAndDecimals() public {
        address[] memory t = vault.tokens();
        assertEq(t.length, 3);
        assertEq(t[1], address(wbtc));
        (bool registered, uint8 index, uint8 decimals, TokenPrice memory p) = vault.tokenInfo(address(wbtc));
        assertTrue(registered);
        assertEq(index, 1);
        assertEq(decimals, 8);
        assertEq(p.price, 0); // no epoch yet
        MockERC20 sol = new MockERC20("SOL", "SOL", 9);
        vm.expectEmit(address(vault));
        emit Events.TokenRegistered(address(sol), 3, 9);
        vault.registerToken(address(sol));
    }

    function test_registerToken_revertsWhenInvalid() public {
        vm.expectRevert(Errors.ZeroAddress.selector);
        vault.registerToken(address(0));
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidToken.selector, address(usdc)));
        vault.registerToken(address(usdc));
        vm.expectRevert(abi.encodeWithSelector(Errors.TokenAlreadyRegistered.selector, address(weth)));
        vault.registerToken(address(weth));
        MockERC20 huge = new MockERC20("H", "H", 37);
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidToken.selector, address(huge)));
        vault.registerToken(address(huge));
    }

    function test_registerToken_revertsWhenMoreThan16() public {
        for (uint256 i = 3; i < 16; ++i) {
            vault.registerToken(address(new MockERC20("T", "T", 18)));
        }
        address extra = address(new MockERC20("T", "T", 18));
        vm.expectRevert(abi.encodeWithSelector(Errors.TooManyTokens.selector, 16));
        vault.registerToken(extra);
    }

    function test_registerToken_revertsWhenNotOwner() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        vault.registerToken(address(0x1234));
    }

    /* INSTRUMENTS */

    function test_registerInstrument_numbersFromOne() public {
        assertEq(btcPerp, 1);
        assertEq(btcPut, 4);
        assertEq(vault.instrumentCount(), 4);
        Instrument memory c = vault.instrument(btcCall);
        assertEq(uint8(c.kind), uint8(InstrumentKind.CALL));
        assertEq(c.underlying, bytes32("BTC"));
        assertEq(c.strike, 60_000e18);
        assertEq(c.expiry, EXPIRY);
        vm.expectEmit(address(vault));
        emit Events.InstrumentRegistered(5, InstrumentKind.PERP, bytes32("SOL"), 0, 0);
        assertEq(vault.registerInstrument(0, "SOL", 0, 0), 5);
    }

    function test_registerInstrument_revertsWhenInvalid() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidInstrument.selector, 0, 1, 0));
        vault.registerInstrument(0, "BTC", 1, 0); // perp with a strike
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidInstrument.selector, 1, 1e18, block.timestamp));
        vault.registerInstrument(1, "BTC", 1e18, uint64(block.timestamp)); // already expired
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidInstrument.selector, 2, 0, EXPIRY));
        vault.registerInstrument(2, "BTC", 0, EXPIRY); // zero strike
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidInstrument.selector, 3, 1e18, EXPIRY));
        vault.registerInstrument(3, "BTC", 1e18, EXPIRY); // unknown kind
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidInstrument.selector, 0, 0, 0));
        vault.registerInstrument(0, bytes32(0), 0, 0);
        vm.expectRevert(abi.encodeWithSelector(Errors.UnknownInstrument.selector, 5));
        vault.instrument(5);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        vault.registerInstrument(0, "SOL", 0, 0);
    }

    /// @dev Two ids for one contract: long 10 of one and short 10 of the other is no exposure,
    /// yet each leg would carry its own IM.
    function test_registerInstrument_revertsWhenDuplicateNamingTheExistingId() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.DuplicateInstrument.selector, btcPerp));
        vault.registerInstrument(0, "BTC", 0, 0); // a second perp on the same underlying
        vm.expectRevert(abi.encodeWithSelector(Errors.DuplicateInstrument.selector, ethPerp));
        vault.registerInstrument(0, "ETH", 0, 0);
        vm.expectRevert(abi.encodeWithSelector(Errors.DuplicateInstrument.selector, btcCall));
        vault.registerInstrument(1, "BTC", 60_000e18, EXPIRY);
        vm.expectRevert(abi.encodeWithSelector(Errors.DuplicateInstrument.selector, btcPut));
        vault.registerInstrument(2, "BTC", 60_000e18, EXPIRY);
        assertEq(vault.instrumentCount(), 4);
    }

    function test_registerInstrument_acceptsWhenOneFieldDiffers() public {
        assertEq(vault.registerInstrument(0, "SOL", 0, 0), 5); // perp, another underlying
        assertEq(vault.registerInstrument(1, "ETH", 60_000e18, EXPIRY), 6); // underlying
        assertEq(vault.registerInstrument(1, "BTC", 60_001e18, EXPIRY), 7); // strike
        assertEq(vault.registerInstrument(1, "BTC", 60_000e18, EXPIRY + 1), 8); // expiry
        assertEq(vault.registerInstrument(2, "BTC", 60_001e18, EXPIRY), 9); // kind (call 7 exists)
        vm.expectRevert(abi.encodeWithSelector(Errors.DuplicateInstrument.selector, 9));
        vault.registerInstrument(2, "BTC", 60_001e18, EXPIRY);
    }

    function testFuzz_registerInstrument_refusesExactlyARepeat(
        uint8 kindSeed,
        bytes32 underlying,
        uint256 strike,
        uint64 expiry,
        uint8 field
    ) public {
        uint8 kind = uint8(bound(kindSeed, 0, 2));
        // setUp lists BTC and ETH instruments: a fresh underlying starts with none.
        vm.assume(underlying != bytes32(0) && underlying != "BTC" && underlying != "ETH");
        if (kind == uint8(InstrumentKind.PERP)) {
            (strike, expiry, field) = (0, 0, 0); // only the underlying can differ
        } else {
            strike = bound(strike, 1, type(uint128).max);
            expiry = uint64(bound(expiry, block.timestamp + 1, type(uint64).max - 1));
            field = uint8(bound(field, 0, 3));
        }
        uint32 id = vault.registerInstrument(kind, underlying, strike, expiry);
        vm.expectRevert(abi.encodeWithSelector(Errors.DuplicateInstrument.selector, id));
        vault.registerInstrument(kind, underlying, strike, expiry);

        if (field == 0) underlying = keccak256(abi.encode(underlying));
        else if (field == 1) kind = 3 - kind; // CALL <-> PUT
        else if (field == 2) strike += 1;
        else expiry += 1;
        assertEq(vault.registerInstrument(kind, underlying, strike, expiry), id + 1);
        vm.expectRevert(abi.encodeWithSelector(Errors.DuplicateInstrument.selector, id + 1));
        vault.registerInstrument(kind, underlying, strike, expiry);
    }

    /* SIGNERS */

    function test_setSigners_replacesSetAndBumpsVersion() public {
        assertEq(vault.configVersion(), 1);
        assertEq(vault.quorum(), 2);
        assertTrue(vault.isSigner(signerAddrs[0]));
        address[] memory s = new address[](1);
        s[0] = alice;
        vm.expectEmit(address(vault));
        emit Events.SignersSet(s, 1, 2);
        vault.setSigners(s, 1);
        assertEq(vault.configVersion(), 2);
        assertEq(vault.quorum(), 1);
        assertTrue(vault.isSigner(alice));
        assertFalse(vault.isSigner(signerAddrs[0]));
        assertEq(vault.signers().length, 1);
    }

    function test_setSigners_revertsWhenInvalid() public {
        address[] memory s = new address[](2);
        s[0] = alice;
        s[1] = bob;
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidQuorum.selector, 0, 2));
        vault.setSigners(s, 0);
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidQuorum.selector, 3, 2));
        vault.setSigners(s, 3);
        s[1] = alice;
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidSignerSet.selector, alice));
        vault.setSigners(s, 1);
        s[1] = address(0);
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidSignerSet.selector, address(0)));
        vault.setSigners(s, 1);
        address[] memory many = new address[](33);
        for (uint256 i; i < 33; ++i) {
            many[i] = address(uint160(i + 1));
        }
        vm.expectRevert(abi.encodeWithSelector(Errors.TooManySigners.selector, 33, 32));
        vault.setSigners(many, 1);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        vault.setSigners(s, 1);
    }

    /* RISK CONFIG */

    function test_setRiskConfig_storesValues() public {
        vm.expectEmit(address(vault));
        emit Events.RiskConfigSet(600, 5, 0.5e18, 1e18);
        vault.setRiskConfig(600, 5, 0.5e18, 1e18);
        assertEq(vault.maxAge(), 600);
        assertEq(vault.futureTolerance(), 5);
        assertEq(vault.liquidationPenalty(), 0.5e18);
        assertEq(vault.insuranceShare(), 1e18);
    }

    function test_setRiskConfig_revertsWhenInvalid() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidRiskConfig.selector, 0, 0, 0));
        vault.setRiskConfig(0, 5, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidRiskConfig.selector, 1, 1e18 + 1, 0));
        vault.setRiskConfig(1, 5, 1e18 + 1, 0);
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidRiskConfig.selector, 1, 0, 1e18 + 1));
        vault.setRiskConfig(1, 5, 0, 1e18 + 1);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        vault.setRiskConfig(600, 5, 0, 0);
    }

    function test_setRiskConfig_revertsWhenOutOfBounds() public {
        vault.setRiskConfig(1 days, 5 minutes, 0, 0); // both at their bounds
        assertEq(vault.maxAge(), 1 days);
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidRiskConfig.selector, 1 days + 1, 0, 0));
        vault.setRiskConfig(1 days + 1, 60, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidFutureTolerance.selector, 5 minutes + 1, 5 minutes));
        vault.setRiskConfig(1 days, 5 minutes + 1, 0, 0);
        // never more ahead than an epoch may be old
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidFutureTolerance.selector, 61, 60));
        vault.setRiskConfig(60, 61, 0, 0);
        (address em, address xm, address fm) = modulesFor(address(usdc));
        vm.expectRevert(abi.encodeWithSelector(Errors.InvalidFutureTolerance.selector, 5 minutes + 1, 5 minutes));
        new MarginVault(owner, address(usdc), MAX_AGE, 5 minutes + 1, em, xm, fm);
        assertEq(vault.futureTolerance(), 5 minutes);
    }

    /* INSURANCE */

    function test_withdrawInsurance_movesOnlyTheFund() public {
        vm.prank(alice);
        vault.depositInsurance(1000e6);
        _depositCash(bob, 5000e6); // user cash: the owner cannot touch it
        vm.expectRevert(abi.encodeWithSelector(Errors.InsufficientInsurance.selector, 1000e18, 1000e18 + 1e12));
        vault.withdrawInsurance(1000e6 + 1, carol);
        vm.expectEmit(address(vault));
        emit Events.InsuranceWithdrawn(carol, 400e6, 600e18);
        vault.withdrawInsurance(400e6, carol);
        assertEq(usdc.balanceOf(carol), 10_000_000e6 + 400e6);
        assertEq(vault.insuranceFund(), 600e18);
        assertEq(usdc.balanceOf(address(vault)), 5600e6);
        vm.expectRevert(Errors.ZeroAddress.selector);
        vault.withdrawInsurance(1, address(0));
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        vault.withdrawInsurance(1, alice);
    }

    /* OWNERSHIP */

    function test_renounceOwnership_reverts() public {
        vm.expectRevert(Errors.RenounceOwnershipDisabled.selector);
        vault.renounceOwnership();
        assertEq(vault.owner(), owner);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        vault.renounceOwnership();
    }

    function test_transferOwnership_isTwoStep() public {
        vault.transferOwnership(alice);
        assertEq(vault.owner(), owner);
        assertEq(vault.pendingOwner(), alice);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, bob));
        vault.acceptOwnership();
        vm.prank(alice);
        vault.acceptOwnership();
        assertEq(vault.owner(), alice);
    }
}
