// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Test} from "forge-std/Test.sol";
import {MarginBounds} from "../../../contracts/libraries/MarginBounds.sol";
import {LiquidationLib} from "../../../contracts/libraries/LiquidationLib.sol";
import {WAD} from "../../../contracts/libraries/FixedPoint.sol";
import {
    AccountLeaf,
    InstrumentLeaf,
    TokenPrice,
    LiquidationQuote
} from "../../../contracts/interfaces/IMarginVault.sol";

/// @notice MarginBounds (docs/protocol.md §5) and LiquidationLib (§6): each bound brackets the
/// exact value it bounds, rounded the safe way; the liquidation amounts keep their promises.
contract MarginBoundsTest is Test {
    function _price(uint256 price, uint256 down, uint256 up) internal pure returns (TokenPrice memory) {
        return TokenPrice(address(1), price, down, up);
    }

    /* TOKENS */

    function testFuzz_depositBounds_bracketTheShockedValue(
        uint256 amount,
        uint256 price,
        uint256 down,
        uint256 up,
        uint8 dec
    ) public pure {
        amount = bound(amount, 0, 1e24);
        price = bound(price, 1, 1e24);
        down = bound(down, 0, 1e18);
        up = bound(up, 0, 10e18);
        dec = uint8(bound(dec, 0, 18));
        TokenPrice memory p = _price(price, down, up);
        int256 lo = MarginBounds.depositLo(amount, p, dec);
        int256 hi = MarginBounds.depositHi(amount, p, dec);
        uint256 scale = 10 ** dec;
        // lo <= amount*price*(1-down)/10^dec/1e18 <= amount*price/10^dec <= ... <= hi
        assertLe(uint256(lo) * scale * 1e18, amount * price * (1e18 - down));
        assertGe(uint256(hi) * scale * 1e18, amount * price * (1e18 + up));
        assertLe(lo, hi);
        assertGe(lo, 0);
        // withdrawals mirror deposits
        assertEq(MarginBounds.withdrawLo(amount, p, dec), -hi);
        assertEq(MarginBounds.withdrawHi(amount, p, dec), -lo);
    }

    function test_depositBounds_examples() public pure {
        TokenPrice memory weth = _price(3000e18, 0.2e18, 0.25e18);
        assertEq(MarginBounds.depositLo(1e18, weth, 18), 2400e18);
        assertEq(MarginBounds.depositHi(1e18, weth, 18), 3750e18);
        TokenPrice memory wbtc = _price(60_000e18, 0.15e18, 0.2e18);
        assertEq(MarginBounds.depositLo(1, wbtc, 8), 0.00051e18); // 1 sat = $0.0006, haircut
        assertEq(MarginBounds.haircutValueDown(1e8, wbtc, 8), 51_000e18);
        TokenPrice memory worthless = _price(1, 1e18, 0);
        assertEq(MarginBounds.depositLo(1e30, worthless, 18), 0); // a 100% haircut counts nothing
    }

    function test_cashBound_isExact() public pure {
        assertEq(MarginBounds.cashBound(-5), -5);
        assertEq(MarginBounds.cashBound(7e18), 7e18);
        assertEq(MarginBounds.roundingLo(), -1);
    }

    /* TRADE LEGS */

    function testFuzz_legBounds_bracketTheEquityChange(
        int256 q,
        uint256 mark,
        uint256 price,
        uint256 lossLong,
        uint256 lossShort
    ) public pure {
        q = bound(q, -1e30, 1e30);
        vm.assume(q != 0);
        mark = bound(mark, 0, 1e30);
        price = bound(price, 0, 1e30);
        lossLong = bound(lossLong, 0, 1e30);
        lossShort = bound(lossShort, 0, 1e30);
        InstrumentLeaf memory l = InstrumentLeaf(1, mark, lossLong, lossShort, 0, bytes32(0));
        uint256 absQ = uint256(q > 0 ? q : -q);
        // cash as the vault rounds it: the buyer pays mulWadUp(|q|, p), the seller receives it.
        int256 amount = int256((absQ * price + 1e18 - 1) / 1e18);
        int256 cashDelta = q > 0 ? -amount : amount;
        int256 lo = MarginBounds.legLo(q, cashDelta, l);
        int256 hi = MarginBounds.legHi(q, cashDelta, l);
        int256 exactWad = q * int256(mark) + cashDelta * int256(WAD); // Δequity at mark, times 1e18
        int256 side = int256(q > 0 ? lossLong : lossShort);
        int256 opposite = int256(q > 0 ? lossShort : lossLong);
        assertLe(lo * int256(WAD), exactWad - side * int256(absQ), "lo above the worst change");
        assertGe(hi * int256(WAD), exactWad + opposite * int256(absQ), "hi below the best change");
        assertLe(lo, hi);
    }

    function test_legBounds_example() public pure {
        InstrumentLeaf memory l = InstrumentLeaf(1, 60_000e18, 6000e18, 5000e18, 0, bytes32(0));
        // buy 1 at 61k: cash -61k; lo = 60k - 61k - 6k, hi = 60k - 61k + 5k
        assertEq(MarginBounds.legLo(1e18, -61_000e18, l), -7000e18);
        assertEq(MarginBounds.legHi(1e18, -61_000e18, l), 4000e18);
        // sell 1 at 61k: lo = -60k + 61k - 5k, hi = -60k + 61k + 6k
        assertEq(MarginBounds.legLo(-1e18, 61_000e18, l), -4000e18);
        assertEq(MarginBounds.legHi(-1e18, 61_000e18, l), 7000e18);
    }

    /* SURPLUS FROM A LEAF */

    function testFuzz_surplusBounds_followTheFormula(
        int128 equity,
        uint128 im,
        uint128 mm,
        int128 leafLo,
        int128 leafHi,
        int128 dLo,
        int128 dHi
    ) public pure {
        AccountLeaf memory leaf = AccountLeaf(1, 0, leafLo, leafHi, equity, im, mm, bytes32(0));
        int256 cumLo = int256(leafLo) + dLo;
        int256 cumHi = int256(leafHi) + dHi;
        assertEq(MarginBounds.imSurplusLo(leaf, cumLo), int256(equity) - int256(uint256(im)) + dLo);
        assertEq(MarginBounds.mmSurplusHi(leaf, cumHi), int256(equity) - int256(uint256(mm)) + dHi);
        assertEq(MarginBounds.equityLo(leaf, cumLo), int256(equity) + dLo);
        assertEq(MarginBounds.equityHi(leaf, cumHi), int256(equity) + dHi);
    }

    /* LIQUIDATION AMOUNTS */

    function testFuzz_liquidationQuote_keepsItsPromises(
        int128 equity,
        uint128 im,
        uint128 mm,
        int128 dLo,
        int128 dHi,
        uint256 penalty,
        uint256 share,
        uint128 fund
    ) public pure {
        penalty = bound(penalty, 0, 1e18);
        share = bound(share, 0, 1e18);
        vm.assume(dLo <= dHi);
        AccountLeaf memory leaf = AccountLeaf(1, 0, 0, 0, equity, im, mm, bytes32(0));
        LiquidationQuote memory r =
            LiquidationLib.quote(leaf, dLo, dHi, LiquidationLib.Params(penalty, share, fund, 1e12));
        assertEq(r.liquidatable, r.mmSurplusHi < 0);
        // The account is paid at most its surest equity, the fund gets at most the penalty.
        assertLe(int256(r.pay + r.fee), r.equityLo > 0 ? r.equityLo : int256(0));
        assertLe(r.fee, r.penalty);
        // Bad debt is split between the fund and the record, never lost.
        uint256 shortfall = r.equityHi < 0 ? uint256(-r.equityHi) : 0;
        assertEq(r.covered + r.uncovered, shortfall);
        assertLe(r.covered, fund);
        assertEq(r.netCashPaid, int256(r.pay) + int256(r.fee) - int256(r.covered));
        // The least deposit (whole 1e-6 units) that brings the subaccount to IM, and no less.
        int256 need = r.netCashPaid - r.imSurplusLo;
        if (need <= 0) {
            assertEq(r.minDeposit6, 0);
        } else {
            assertGe(int256(r.minDeposit6 * 1e12), need);
            assertLt(int256((r.minDeposit6 - 1) * 1e12), need);
        }
    }

    function test_liquidationQuote_example() public pure {
        AccountLeaf memory leaf = AccountLeaf(1, 0, 0, 0, 4000e18, 6000e18, 4800e18, bytes32(0));
        LiquidationQuote memory r = LiquidationLib.quote(leaf, 0, 0, LiquidationLib.Params(0.3e18, 0.5e18, 0, 1e12));
        assertTrue(r.liquidatable);
        assertEq(r.penalty, 1440e18);
        assertEq(r.pay, 2560e18);
        assertEq(r.fee, 720e18);
        assertEq(r.netCashPaid, 3280e18);
        assertEq(r.imSurplusLo, -2000e18);
        // IM deficit 2000 + pay 2560 + fee 720 - covered 0, in USDC units
        assertEq(r.minDeposit6, 5280e6);
    }
}
