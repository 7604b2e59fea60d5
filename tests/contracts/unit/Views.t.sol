// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

import {BaseTest} from "./BaseTest.sol";
import {MarginVault} from "../../../contracts/MarginVault.sol";
import {ReentrantERC20} from "../mocks/ReentrantERC20.sol";
import {Errors} from "../../../contracts/interfaces/Errors.sol";
import {AccountState, TokenPrice, MarginProof} from "../../../contracts/interfaces/IMarginVault.sol";

/// @notice Views (accountState(s), token table, domain) and the reentrancy lock.
contract ViewsTest is BaseTest {
    function test_accountStates_batchesAccounts() public {
        _depositCash(alice, 100_000e6);
        _depositCash(bob, 100_000e6);
        _deposit(alice, wbtc, 2e8);
        _post2(_leaf(alice, 100_000e18, 0, 0), _leaf(bob, 100_000e18, 0, 0));
        _fill(_quote(alice, bob, ethPerp, -2e18, 3000e18, 1), aliceKey, bob);
        uint256[] memory who = new uint256[](3);
        who[0] = aliceAcct;
        who[1] = bobAcct;
        who[2] = carolAcct;
        AccountState[] memory s = vault.accountStates(who);
        assertEq(s.length, 3);
        assertEq(s[0].cash, 106_000e18);
        assertEq(s[0].instruments.length, 1);
        assertEq(s[0].instruments[0], ethPerp);
        assertEq(s[0].sizes[0], -2e18);
        assertEq(s[0].fundingIndexAtLastUpdate[0], 0);
        assertEq(s[0].collateralBalances[1], 2e8);
        assertEq(s[1].sizes[0], 2e18);
        assertEq(s[2].cash, 0);
        assertEq(s[2].instruments.length, 0);
        assertEq(s[2].collateralBalances.length, 3);
        (int256 cash,, int256 lo, int256 hi,,,,) = vault.accountState(aliceAcct);
        assertEq(cash, s[0].cash);
        assertEq(lo, s[0].cumLo);
        assertEq(hi, s[0].cumHi);
    }

    function test_tokenInfo_showsCurrentPrice() public {
        _post();
        (bool registered, uint8 index, uint8 decimals, TokenPrice memory p) = vault.tokenInfo(address(gov));
        assertTrue(registered);
        assertEq(index, 2);
        assertEq(decimals, 18);
        assertEq(p.token, address(gov));
        assertEq(p.price, 1e18);
        assertEq(p.downShock, 0.5e18);
        (registered,,,) = vault.tokenInfo(address(usdc));
        assertFalse(registered);
    }

    function test_domainSeparator_isBoundToChainAndVault() public {
        bytes32 expected = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("PortfolioMarginVault"),
                keccak256("1"),
                block.chainid,
                address(vault)
            )
        );
        assertEq(vault.domainSeparator(), expected);
        vm.chainId(10);
        assertTrue(vault.domainSeparator() != expected);
        MarginVault other = newVault(owner, address(usdc), MAX_AGE, FUTURE_TOLERANCE);
        assertTrue(other.domainSeparator() != vault.domainSeparator());
    }

    function test_imSurplusLo_onChainValuationForAccountWithoutPositions() public {
        _post();
        _depositCash(alice, 100e6);
        _deposit(alice, weth, 1e18); // 2400 after haircut
        _deposit(alice, wbtc, 1e8); // 51000 after haircut
        _deposit(alice, gov, 1000e18); // 500 after haircut
        assertEq(vault.imSurplusLo(aliceAcct, _emptyProof()), 100e18 + 2400e18 + 51_000e18 + 500e18);
    }

    /// The fixture's tree builder (used by every test and the invariant suite) gives the same
    /// roots and proofs as the keeper's (tests/vectors/merkle.json).
    function test_merkleHelper_matchesSharedVectors() public view {
        string memory json = vm.readFile("tests/vectors/merkle.json");
        uint256 cases = vm.parseJsonUint(json, ".nCases");
        for (uint256 c; c < cases; ++c) {
            string memory p = string.concat(".cases[", vm.toString(c), "]");
            bytes32[] memory leaves = vm.parseJsonBytes32Array(json, string.concat(p, ".leaves"));
            assertEq(_merkleRoot(leaves), vm.parseJsonBytes32(json, string.concat(p, ".root")), p);
            for (uint256 i; i < leaves.length; ++i) {
                bytes32[] memory want =
                    vm.parseJsonBytes32Array(json, string.concat(p, ".proofs[", vm.toString(i), "]"));
                bytes32[] memory got = _merkleProof(leaves, leaves[i]);
                assertEq(got.length, want.length, p);
                for (uint256 k; k < got.length; ++k) {
                    assertEq(got[k], want[k], p);
                }
            }
        }
    }

    /* REENTRANCY */

    function test_deposit_revertsWhenTokenReenters() public {
        ReentrantERC20 evil = new ReentrantERC20();
        vault.registerToken(address(evil));
        prices.push(TokenPrice(address(evil), 1e18, 0.5e18, 0.5e18));
        _depositCash(alice, 1000e6);
        evil.mint(alice, 100e18);
        vm.prank(alice);
        evil.approve(address(vault), type(uint256).max);
        // During deposit's transferFrom the token calls back into the vault: any entry point
        // behind the lock is refused while the deposit holds it.
        evil.arm(address(vault), abi.encodeCall(vault.depositCash, (aliceAcct, 0)));
        vm.prank(alice);
        vm.expectRevert(ReentrancyGuard.ReentrancyGuardReentrantCall.selector);
        vault.deposit(aliceAcct, address(evil), 1e18);
        // And during a withdrawal's transfer, re-entering the exchange module is refused too.
        evil.disarm();
        vm.prank(alice);
        vault.deposit(aliceAcct, address(evil), 1e18); // disarmed: works
        MarginProof memory none;
        evil.arm(address(vault), abi.encodeCall(vault.liquidate, (bobAcct, none, 0, 0)));
        vm.prank(alice);
        vm.expectRevert(ReentrancyGuard.ReentrancyGuardReentrantCall.selector);
        vault.withdraw(aliceAcct, address(evil), 1e18, none);
        assertEq(vault.collateralBalance(aliceAcct, address(evil)), 1e18);
    }
}
