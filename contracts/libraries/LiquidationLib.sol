// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccountLeaf, LiquidationQuote} from "../interfaces/IMarginVault.sol";
import {FixedPoint} from "./FixedPoint.sol";
import {MarginBounds} from "./MarginBounds.sol";

/// @title LiquidationLib
/// @notice The amounts of a liquidation by transfer (docs/protocol.md §6), as a pure
/// function of the account's leaf, its running sums now and the risk parameters, so that the
/// view (`checkLiquidation`) and the action (`liquidate`) cannot disagree.
library LiquidationLib {
    using FixedPoint for uint256;

    struct Params {
        uint256 liquidationPenalty; // WAD fraction of leaf.mm
        uint256 insuranceShare; // WAD fraction of the penalty
        uint256 insuranceFund; // WAD USD available to cover bad debt
        uint256 cashScale; // 10**(18 - settlement token decimals): token units -> WAD
    }

    /// @param leaf the account's verified ACCOUNT leaf.
    /// @param cumLoNow the account's cumLo less 1 wei per open position (the rounding that
    /// applying its pending funding could add; the leaf already counts the funding itself).
    /// @param cumHiNow the account's cumHi (funding rounding never raises it).
    function quote(AccountLeaf memory leaf, int256 cumLoNow, int256 cumHiNow, Params memory p)
        internal
        pure
        returns (LiquidationQuote memory r)
    {
        r.mmSurplusHi = MarginBounds.mmSurplusHi(leaf, cumHiNow);
        r.imSurplusLo = MarginBounds.imSurplusLo(leaf, cumLoNow);
        r.liquidatable = r.mmSurplusHi < 0;
        r.equityLo = MarginBounds.equityLo(leaf, cumLoNow);
        r.equityHi = MarginBounds.equityHi(leaf, cumHiNow);
        r.penalty = leaf.mm.mulWadUp(p.liquidationPenalty);
        // The account receives its surest equity minus the penalty, never less than zero.
        r.pay = FixedPoint.positivePart(r.equityLo - FixedPoint.toInt(r.penalty));
        // The fund's share is taken only from penalty the account's equity can surely pay.
        r.fee = FixedPoint.min(r.penalty, FixedPoint.positivePart(r.equityLo)).mulWadDown(p.insuranceShare);
        // Only equity that is negative even at its upper bound is bad debt.
        uint256 shortfall = FixedPoint.positivePart(-r.equityHi);
        r.covered = FixedPoint.min(shortfall, p.insuranceFund);
        r.uncovered = shortfall - r.covered;
        r.netCashPaid = FixedPoint.toInt(r.pay) + FixedPoint.toInt(r.fee) - FixedPoint.toInt(r.covered);
        // The deposit that brings the subaccount to IM after paying the quote:
        // imSurplusLo + deposit - netCashPaid >= 0, rounded up to whole token units.
        int256 need = r.netCashPaid - r.imSurplusLo;
        if (need > 0) r.minDeposit6 = FixedPoint.mulDivUp(uint256(need), 1, p.cashScale);
    }
}
