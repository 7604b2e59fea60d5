// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccountMargin, AggregationParams, Requirements, RiskVector} from "./AccountMargin.sol";

/// @notice What AccountDispute.judge decides of one posted ACCOUNT leaf (USD WAD). A posted number
/// is wrong when it lies farther than `tolerance` from its recomputation, on either side.
struct Verdict {
    int256 equity; // recomputed, rounded down (AccountMargin.equityDown)
    uint256 im; // recomputed, rounded up (AccountMargin.requirementsUp)
    uint256 mm; // recomputed, rounded up
    uint256 tolerance; // the farthest an honest posted number lies from its recomputation
    bool equityWrong; // |posted equity - equity| > tolerance
    bool imWrong; // |posted im - im| > tolerance
    bool mmWrong; // |posted mm - mm| > tolerance
}

/// @title AccountDispute
/// @notice The judge of an ACCOUNT leaf (docs/margin-method.md §10, "The judge"): recomputes the
/// account's equity, IM and MM with AccountMargin and says which posted number lies beyond the
/// tolerance an honest leaf keeps; the commitments of the inputs (`hashVector` for an INSTRUMENT
/// leaf, `hashParams` for the epoch header); and the SPOT size of a collateral token balance.
/// @dev Warning: the caller must check the sizes, cash, vectors and parameters against the epoch's
/// commitments (the account's state, the INSTRUMENT leaves' vector hashes, the header's params
/// hash) before it calls `judge`; this library trusts them, as AccountMargin does.
library AccountDispute {
    /// @dev Declared here, not in Errors (the vault's ABI), until the vault calls this library.
    error TokenDecimalsTooLarge(uint8 decimals, uint8 maxDecimals);
    error TokenBalanceTooLarge(uint256 amount, uint8 decimals);

    /// @dev 10**77 is the largest power of ten below 2**256.
    uint8 internal constant MAX_TOKEN_DECIMALS = 77;
    /// @dev The tolerance's relative part, 2e-12 of the scale, is the scale divided by 5e11.
    uint256 internal constant TOLERANCE_DIVISOR = 5e11;
    /// @dev 1e-14 USD (the engine-vs-chain floor) plus 1 wei (the leaf's own WAD rounding).
    uint256 internal constant TOLERANCE_WEI = 1e4 + 1;

    /// @notice The commitment to an instrument's risk vector that its INSTRUMENT leaf will carry:
    /// `keccak256(abi.encode(v))` (keeper/dispute_encoding.py:hash_vector).
    function hashVector(RiskVector calldata v) internal pure returns (bytes32) {
        return keccak256(abi.encode(v));
    }

    /// @notice The commitment to the epoch's aggregation parameters that the epoch header will
    /// carry: `keccak256(abi.encode(p))` (keeper/dispute_encoding.py:hash_params).
    function hashParams(AggregationParams calldata p) internal pure returns (bytes32) {
        return keccak256(abi.encode(p));
    }

    /// @notice Judges a posted ACCOUNT leaf's equity, IM and MM against their recomputation.
    /// @dev The tolerance is docs/margin-method.md §10's for a posted leaf,
    /// `2e-12 x (gross notional + |cash|) + 1e-14 USD + 1 wei`: the engine's number lies within
    /// `1e-12 x` the scale `+ 1e-14 USD` of the recomputation, the keeper widens it by its pad
    /// `ACCOUNT_PAD_REL = 1e-12 x` the scale, and the leaf's WAD rounding adds at most 1 wei. It is
    /// `ceil((grossNotionalUp + |cash|) / 5e11) + 10,001` wei (see `tolerance`): every rounding
    /// makes it larger, in the leaf's favour, so that an honest leaf is not judged wrong.
    /// @param cash the account's cash (USD WAD)
    /// @param sizes signed sizes (WAD units), one per vector, as AccountMargin takes them
    /// @param equity the posted equity (USD WAD)
    /// @param im the posted IM (USD WAD)
    /// @param mm the posted MM (USD WAD)
    function judge(
        int256 cash,
        int256[] calldata sizes,
        RiskVector[] calldata vectors,
        AggregationParams calldata p,
        int256 equity,
        uint256 im,
        uint256 mm
    ) internal pure returns (Verdict memory) {
        return compare(recompute(cash, sizes, vectors, p), equity, im, mm);
    }

    /// @notice The recomputed equity, IM and MM of an account and the tolerance of its leaf
    /// (`judge` without the posted numbers: every flag false).
    function recompute(
        int256 cash,
        int256[] calldata sizes,
        RiskVector[] calldata vectors,
        AggregationParams calldata p
    ) internal pure returns (Verdict memory v) {
        v.equity = AccountMargin.equityDown(cash, sizes, vectors);
        Requirements memory r = AccountMargin.requirementsUp(sizes, vectors, p);
        v.im = r.imUp;
        v.mm = r.mmUp;
        v.tolerance = tolerance(r.grossNotionalUp, cash);
    }

    /// @notice `recomputed` with each flag set where the posted number lies farther than the
    /// tolerance from it, on either side (a copy: `recomputed` is not modified).
    function compare(Verdict memory recomputed, int256 equity, uint256 im, uint256 mm)
        internal
        pure
        returns (Verdict memory v)
    {
        v = Verdict({
            equity: recomputed.equity,
            im: recomputed.im,
            mm: recomputed.mm,
            tolerance: recomputed.tolerance,
            equityWrong: _distance(equity, recomputed.equity) > recomputed.tolerance,
            imWrong: _distance(im, recomputed.im) > recomputed.tolerance,
            mmWrong: _distance(mm, recomputed.mm) > recomputed.tolerance
        });
    }

    /// @notice True when the verdict finds any posted number wrong.
    function anyWrong(Verdict memory v) internal pure returns (bool) {
        return v.equityWrong || v.imWrong || v.mmWrong;
    }

    /// @notice `ceil(2e-12 x (grossNotionalUp + |cash|)) + 1e-14 USD + 1 wei` (USD WAD).
    /// @dev `grossNotionalUp` is AccountMargin's (each product rounded up), the ceiling rounds
    /// up, and a scale beyond uint256 (above 1e59 USD) saturates: each can only widen the
    /// tolerance, in the posted leaf's favour. Never reverts.
    function tolerance(uint256 grossNotionalUp, int256 cash) internal pure returns (uint256) {
        uint256 c = _abs(cash);
        uint256 scale;
        unchecked {
            scale = grossNotionalUp + c;
            if (scale < c) scale = type(uint256).max; // wrapped
        }
        uint256 relative = scale / TOLERANCE_DIVISOR;
        if (relative * TOLERANCE_DIVISOR != scale) ++relative; // ceil; relative < 2**256 / 5e11
        return relative + TOLERANCE_WEI;
    }

    /// @notice A collateral balance as the size of its SPOT position (WAD units of whole tokens),
    /// as the engine holds it (keeper/engine_input.py: `balance / 10**decimals`).
    /// @dev Exact up to 18 decimals. Beyond, rounded down (toward zero: a balance is a long
    /// size): a smaller long size gives less equity, and less requirement by less (a token's
    /// scenario loss and charges per unit are below its price), so the rounding is against the
    /// account. It moves the size by under 1 wei from the engine's float, so a number by at most
    /// about `2 x spot x 1e-18 USD`: inside the tolerance's relative part when the balance is
    /// above 2e-6 tokens, and inside its 1e-14 USD for a token below 5,000 USD. (A dust balance of
    /// a dearer token with more than 18 decimals is the one case it does not cover.)
    function tokenSize(uint256 amount, uint8 decimals) internal pure returns (int256) {
        if (decimals > MAX_TOKEN_DECIMALS) revert TokenDecimalsTooLarge(decimals, MAX_TOKEN_DECIMALS);
        // forge-lint: disable-next-line(unsafe-typecast)
        if (decimals > 18) return int256(amount / 10 ** (decimals - 18)); // < 2**256 / 10 fits
        uint256 scale = 10 ** (18 - decimals);
        // the product must fit int256, not only uint256: a size is signed
        if (amount > uint256(type(int256).max) / scale) revert TokenBalanceTooLarge(amount, decimals);
        // forge-lint: disable-next-line(unsafe-typecast)
        return int256(amount * scale); // <= type(int256).max, checked above
    }

    /// @dev |a - b| without overflow: the true difference of two int256 fits uint256, and the
    /// wrapped subtraction of their two's complements is that difference.
    function _distance(int256 a, int256 b) private pure returns (uint256) {
        unchecked {
            // forge-lint: disable-next-line(unsafe-typecast)
            return a >= b ? uint256(a) - uint256(b) : uint256(b) - uint256(a);
        }
    }

    function _distance(uint256 a, uint256 b) private pure returns (uint256) {
        return a >= b ? a - b : b - a;
    }

    /// @dev |x| for every int256, type(int256).min included (2**255 fits uint256).
    function _abs(int256 x) private pure returns (uint256) {
        unchecked {
            // forge-lint: disable-next-line(unsafe-typecast)
            return x >= 0 ? uint256(x) : uint256(-(x + 1)) + 1;
        }
    }
}
