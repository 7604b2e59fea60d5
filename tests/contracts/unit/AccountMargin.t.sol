// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Test} from "forge-std/Test.sol";

import {
    AccountMargin,
    AggregationParams,
    Requirements,
    RiskVector
} from "../../../contracts/libraries/AccountMargin.sol";
import {FixedPoint} from "../../../contracts/libraries/FixedPoint.sol";
import {AccountMarginHarness} from "../mocks/AccountMarginHarness.sol";
import {RiskFixtures} from "./RiskFixtures.sol";

/// @notice AccountMargin on hand-computed books: the worked example of docs/margin-method.md §7
/// (exact in WAD), concentration, the pads of long options, rounding against the account, and
/// every guard.
contract AccountMarginTest is Test, RiskFixtures {
    AccountMarginHarness internal h;

    function setUp() public {
        h = new AccountMarginHarness();
    }

    function _two(int256 a, int256 b) internal pure returns (int256[] memory s) {
        s = new int256[](2);
        s[0] = a;
        s[1] = b;
    }

    function _one(int256 a) internal pure returns (int256[] memory s) {
        s = new int256[](1);
        s[0] = a;
    }

    function _vectors(RiskVector memory a, RiskVector memory b) internal pure returns (RiskVector[] memory v) {
        v = new RiskVector[](2);
        v[0] = a;
        v[1] = b;
    }

    function _vector(RiskVector memory a) internal pure returns (RiskVector[] memory v) {
        v = new RiskVector[](1);
        v[0] = a;
    }

    /// Account A of docs/margin-method.md §7: long 1 BTC perp, short 20 ETH perp, cash 20,000.
    function test_requirementsUp_workedExampleAccountA() public view {
        RiskVector[] memory v = _vectors(_perp(0, 60_000e18, 17e16), _perp(1, 3_000e18, 18e16));
        (int256 equity, Requirements memory r) = h.account(20_000e18, _two(1e18, -20e18), v, _params());
        assertEq(equity, 20_000e18);
        assertEq(r.scanImUp, 7_944e18);
        assertEq(r.scanMmUp, 6_355.2e18);
        assertEq(r.basisUp, 1_200e18);
        assertEq(r.minimumUp, 120e18);
        assertEq(r.shortOptionUp, 0);
        assertEq(r.concentrationUp, 0);
        assertEq(r.imUp, 9_264e18);
        assertEq(r.mmUp, 7_648.8e18);
        assertEq(r.grossNotionalUp, 120_000e18);
    }

    function test_requirementsUp_concentrationBeyondTheThreshold() public view {
        // 100 BTC perps: |D| = 6M, 1M beyond the 5M threshold, at 2 %
        RiskVector[] memory v = _vector(_perp(0, 60_000e18, 17e16));
        (, Requirements memory r) = h.account(0, _one(100e18), v, _params());
        assertEq(r.concentrationUp, 20_000e18);
        (, r) = h.account(0, _one(-100e18), v, _params());
        assertEq(r.concentrationUp, 20_000e18);
    }

    /// A long option adds its pad to every scan column; a short one does not, but pays the short
    /// option minimum.
    function test_requirementsUp_padOfLongOptionsOnly() public view {
        RiskVector memory o = _perp(0, 1_000e18, 17e16);
        o.pad = new uint256[](8);
        o.pad[0] = 7e18; // an MM column
        o.pad[7] = 50e18; // the IM copy of +0.8
        o.shortOptionCharge = 3e18;
        RiskVector[] memory v = _vector(o);
        (, Requirements memory plain) = h.account(0, _one(1e18), _vector(_perp(0, 1_000e18, 17e16)), _params());
        (, Requirements memory long) = h.account(0, _one(1e18), v, _params());
        // the long perp-like loss is worst at -1 (170); the padded columns: 0 + 7 (MM), -136 + 50 (IM)
        assertEq(long.scanImUp, plain.scanImUp);
        assertEq(long.scanMmUp, plain.scanMmUp);
        o.pad[3] = 10e18; // column of -1 (IM only)
        (, long) = h.account(0, _one(1e18), _vector(o), _params());
        // one underlying: its cluster weights sum to 1, so the scan is its worst column
        assertEq(long.scanImUp, plain.scanImUp + 10e18);
        o.pad[1] = 40e18; // column of -0.8 (MM): 136 + 40 > 170 + 10
        (, long) = h.account(0, _one(1e18), _vector(o), _params());
        assertEq(long.scanMmUp, 176e18);
        assertEq(long.scanImUp, 180e18);
        (, Requirements memory short_) = h.account(0, _one(-1e18), _vector(o), _params());
        (, Requirements memory shortPlain) = h.account(0, _one(-1e18), _vector(_perp(0, 1_000e18, 17e16)), _params());
        assertEq(short_.scanImUp, shortPlain.scanImUp);
        assertEq(short_.shortOptionUp, 3e18);
    }

    /// One wei of size on one wei of loss: the exact requirement is 1e-36 USD, charged as 1 wei;
    /// a short of one wei at a mark of one wei costs one wei of equity.
    function test_requirementsUp_roundsAgainstTheAccount() public view {
        RiskVector memory t = _perp(0, 1, 17e16);
        for (uint256 s; s < 7; ++s) {
            t.loss[s] = 1;
        }
        t.basisUp = 1;
        t.minimumCharge = 1;
        (int256 equity, Requirements memory r) = h.account(0, _one(1), _vector(t), _params());
        assertEq(equity, 0);
        assertEq(r.minimumUp, 1);
        assertEq(r.basisUp, 1);
        assertEq(r.scanImUp, 2); // each weighted cluster rounds up: ceil(0.36 wei) + ceil(0.64 wei)
        (equity, r) = h.account(0, _one(-1), _vector(t), _params());
        assertEq(equity, -1);
        assertEq(r.scanImUp, 0); // -1e-36 rounds up to 0 and the cluster maximum is at least 0
    }

    /// The one-multiplication path agrees with FixedPoint's 512-bit one wherever the product fits.
    function testFuzz_equityDown_matchesFullPrecision(int128 size, uint128 mark) public view {
        RiskVector memory t = _perp(0, mark, 17e16);
        (int256 equity,) = h.account(0, _one(size), _vector(t), _params());
        assertEq(equity, FixedPoint.mulWadFloor(size, int256(uint256(mark))));
    }

    /// A product beyond int256 takes the 512-bit path rather than wrapping.
    function test_equityDown_productBeyondInt256() public view {
        int256 size = int256(1 << 200);
        uint256 mark = 1 << 100;
        RiskVector memory t = _perp(0, mark, 0);
        (int256 equity,) = h.account(0, _one(-size), _vector(t), _params());
        assertEq(equity, FixedPoint.mulWadFloor(-size, int256(mark)));
        assertLt(equity, 0);
    }

    function test_requirementsUp_noPositionNoRequirement() public view {
        (int256 equity, Requirements memory r) = h.account(5e18, new int256[](0), new RiskVector[](0), _params());
        assertEq(equity, 5e18);
        assertEq(r.imUp, 0);
        assertEq(r.mmUp, 0);
    }

    function test_account_revertsWhenSizesAndVectorsDiffer() public {
        RiskVector[] memory v = _vector(_perp(0, 1e18, 17e16));
        vm.expectRevert(abi.encodeWithSelector(AccountMargin.PositionCountMismatch.selector, 2, 1));
        h.account(0, _two(1, 1), v, _params());
    }

    function test_requirementsUp_revertsWhenAVectorHasAnotherShape() public {
        RiskVector memory a = _perp(0, 1e18, 17e16);
        RiskVector memory b = _perp(1, 1e18, 17e16);
        b.pad = new uint256[](7); // 8 scan columns: 7 scenarios + 1 IM copy
        vm.expectRevert(abi.encodeWithSelector(AccountMargin.VectorShapeMismatch.selector, 1, 7, 7));
        h.account(0, _two(1, 1), _vectors(a, b), _params());
        b.pad = new uint256[](0);
        b.loss = new int256[](6);
        vm.expectRevert(abi.encodeWithSelector(AccountMargin.VectorShapeMismatch.selector, 1, 6, 0));
        h.account(0, _two(1, 1), _vectors(a, b), _params());
    }

    function test_requirementsUp_revertsWhenTheUnderlyingIsUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(AccountMargin.UnknownUnderlying.selector, 0, 2, 2));
        h.account(0, _one(1), _vector(_perp(2, 1e18, 17e16)), _params());
    }

    function test_requirementsUp_revertsWhenTheTreeIsMisshapen() public {
        AggregationParams memory p = _params();
        p.left = new uint256[](0);
        vm.expectRevert(abi.encodeWithSelector(AccountMargin.TreeShapeMismatch.selector, 3, 0, 1, 2));
        h.account(0, _one(1), _vector(_perp(0, 1e18, 17e16)), p);
        p = _params();
        p.right[0] = 2; // a node merging itself: its columns do not exist yet
        vm.expectRevert(abi.encodeWithSelector(AccountMargin.InvalidTreeNode.selector, 2, 2));
        h.account(0, _one(1), _vector(_perp(0, 1e18, 17e16)), p);
    }

    function test_requirementsUp_revertsWhenAnImCopyIsNotAnMmPoint() public {
        AggregationParams memory p = _params();
        p.imCopies[0] = 3;
        vm.expectRevert(abi.encodeWithSelector(AccountMargin.InvalidImCopy.selector, 0, 3, 3));
        h.account(0, _one(1), _vector(_perp(0, 1e18, 17e16)), p);
    }

    function test_requirementsUp_revertsWhenTheMmGridExceedsTheTemplate() public {
        AggregationParams memory p = _params();
        p.nMm = 8;
        p.imCopies = new uint256[](0);
        vm.expectRevert(abi.encodeWithSelector(AccountMargin.InvalidMmGrid.selector, 8, 7));
        h.account(0, _one(1), _vector(_perp(0, 1e18, 17e16)), p);
    }
}
