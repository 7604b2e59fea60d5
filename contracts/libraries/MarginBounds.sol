// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccountLeaf, InstrumentLeaf, TokenPrice} from "../interfaces/IMarginVault.sol";
import {FixedPoint, WAD} from "./FixedPoint.sol";

/// @title MarginBounds
/// @notice The running bounds of docs/protocol.md §5: for each action, a lower bound `lo`
/// (rounded toward -inf) and an upper bound `hi` (rounded toward +inf) of the change it causes
/// in (equity - requirement), and the surplus bounds built from an ACCOUNT leaf. One function
/// per row of the table, so a reviewer can check each against the doc.
/// @dev The bounds are sound only if the attested losses per unit and shocks respect the
/// engine's subadditivity contract (docs/protocol.md §5); the vault trusts the signers for that.
library MarginBounds {
    using FixedPoint for uint256;

    /// @notice A trivially valid bound ($1e18): "cannot be liquidated on this leaf".
    int256 internal constant UNBOUNDED = 1e36;

    /* TOKEN VALUES */

    /// @notice `amount * price / 10**decimals`, rounded down (WAD USD).
    function tokenValueDown(uint256 amount, uint256 price, uint8 decimals) internal pure returns (uint256) {
        return FixedPoint.mulDivDown(amount, price, 10 ** decimals);
    }

    /// @notice `amount * price / 10**decimals`, rounded up (WAD USD).
    function tokenValueUp(uint256 amount, uint256 price, uint8 decimals) internal pure returns (uint256) {
        return FixedPoint.mulDivUp(amount, price, 10 ** decimals);
    }

    /// @notice `v * (1 - downShock)`, rounded down: what `amount` of the token is surely worth
    /// toward the requirement.
    function haircutValueDown(uint256 amount, TokenPrice memory p, uint8 decimals) internal pure returns (uint256) {
        return tokenValueDown(amount, p.price, decimals).mulWadDown(WAD - p.downShock);
    }

    /// @notice `v * (1 + upShock)`, rounded up.
    function shockedValueUp(uint256 amount, TokenPrice memory p, uint8 decimals) internal pure returns (uint256) {
        return tokenValueUp(amount, p.price, decimals).mulWadUp(WAD + p.upShock);
    }

    /* ONE FUNCTION PER ROW OF THE TABLE */

    /// @notice deposit `amount` of a priced token: lo = v*(1-down).
    function depositLo(uint256 amount, TokenPrice memory p, uint8 decimals) internal pure returns (int256) {
        return FixedPoint.toInt(haircutValueDown(amount, p, decimals));
    }

    /// @notice deposit `amount` of a priced token: hi = v*(1+up).
    function depositHi(uint256 amount, TokenPrice memory p, uint8 decimals) internal pure returns (int256) {
        return FixedPoint.toInt(shockedValueUp(amount, p, decimals));
    }

    /// @notice withdraw `amount` of a priced token: lo = -v*(1+up).
    function withdrawLo(uint256 amount, TokenPrice memory p, uint8 decimals) internal pure returns (int256) {
        return -depositHi(amount, p, decimals);
    }

    /// @notice withdraw `amount` of a priced token: hi = -v*(1-down).
    function withdrawHi(uint256 amount, TokenPrice memory p, uint8 decimals) internal pure returns (int256) {
        return -depositLo(amount, p, decimals);
    }

    /// @notice deposit (+) or withdraw (-) of cash `c`: lo = hi = c, exact.
    function cashBound(int256 c) internal pure returns (int256) {
        return c;
    }

    /// @notice Trade leg: the account gets `q` units with cash change `cashDelta` (already
    /// rounded against the buyer). lo = q*mark + cashDelta - loss(side of q)*|q|.
    function legLo(int256 q, int256 cashDelta, InstrumentLeaf memory l) internal pure returns (int256) {
        uint256 loss = q > 0 ? l.lossPerUnitLong : l.lossPerUnitShort;
        return FixedPoint.mulWadFloor(q, FixedPoint.toInt(l.mark)) + cashDelta
            - FixedPoint.toInt(FixedPoint.abs(q).mulWadUp(loss));
    }

    /// @notice Trade leg: hi = q*mark + cashDelta + loss(opposite side)*|q|.
    function legHi(int256 q, int256 cashDelta, InstrumentLeaf memory l) internal pure returns (int256) {
        uint256 loss = q > 0 ? l.lossPerUnitShort : l.lossPerUnitLong;
        return FixedPoint.mulWadCeil(q, FixedPoint.toInt(l.mark)) + cashDelta
            + FixedPoint.toInt(FixedPoint.abs(q).mulWadUp(loss));
    }

    /// @notice Funding applied or option settled: the leaf already counts it; lo = -1 wei for
    /// the on-chain rounding, hi = 0.
    function roundingLo() internal pure returns (int256) {
        return -1;
    }

    /* SURPLUS BOUNDS FROM A LEAF */

    /// @notice (leaf.equity - leaf.im) + (cumLoNow - leaf.cumLo).
    function imSurplusLo(AccountLeaf memory leaf, int256 cumLoNow) internal pure returns (int256) {
        return (leaf.equity - FixedPoint.toInt(leaf.im)) + (cumLoNow - leaf.cumLo);
    }

    /// @notice (leaf.equity - leaf.mm) + (cumHiNow - leaf.cumHi).
    function mmSurplusHi(AccountLeaf memory leaf, int256 cumHiNow) internal pure returns (int256) {
        return (leaf.equity - FixedPoint.toInt(leaf.mm)) + (cumHiNow - leaf.cumHi);
    }

    /// @notice leaf.equity + (cumLoNow - leaf.cumLo): a lower bound of the equity now.
    function equityLo(AccountLeaf memory leaf, int256 cumLoNow) internal pure returns (int256) {
        return leaf.equity + (cumLoNow - leaf.cumLo);
    }

    /// @notice leaf.equity + (cumHiNow - leaf.cumHi): an upper bound of the equity now.
    function equityHi(AccountLeaf memory leaf, int256 cumHiNow) internal pure returns (int256) {
        return leaf.equity + (cumHiNow - leaf.cumHi);
    }
}
