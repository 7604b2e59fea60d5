// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {console2} from "forge-std/console2.sol";

import {AccountDispute, Verdict} from "../../../contracts/libraries/AccountDispute.sol";
import {AccountMargin, AggregationParams, RiskVector} from "../../../contracts/libraries/AccountMargin.sol";
import {AccountDisputeHarness} from "../mocks/AccountDisputeHarness.sol";
import {AccountVectors} from "./AccountVectors.sol";

/// @notice The judge of an ACCOUNT leaf (docs/margin-method.md §10, "The judge"). On the shared
/// vectors of tests/vectors/accounts/ (scripts/gen_account_vectors.py): every honest account, the
/// leaf the keeper would post, is judged not wrong, and so are the engine's own numbers; each of
/// equity, IM and MM moved from the recomputation by exactly the tolerance is not wrong, by the
/// tolerance plus one wei (either side) is; and every vector's and parameter set's hash equals
/// the one the Python twin wrote (keeper/dispute_encoding.py). Then the tolerance, the token size
/// and the guards one by one.
contract AccountDisputeTest is AccountVectors {
    /// @dev The boundary moves of every account are compared with its recomputation; those of
    /// every JUDGE_EVERY-th account are also judged from scratch.
    uint256 internal constant JUDGE_EVERY = 25;

    AccountDisputeHarness internal h;

    function setUp() public {
        h = new AccountDisputeHarness();
    }

    /* THE SHARED VECTORS */

    struct Counts {
        uint256 accounts;
        uint256 judged; // calls to judge
        uint256 moves; // posted triples one number beyond the tolerance, two at it
        uint256 hashes; // vector and parameter hashes compared
        uint256 skipped; // a requirement below tolerance + 1 cannot be posted that far below
        uint256 minTolerance;
        uint256 maxTolerance;
    }

    function test_judge_vectors() public {
        // 1,488 judgments of accounts up to 20 option positions exceed a test's gas limit; the
        // gas is in tests/contracts/gas/AccountMarginGas.t.sol
        vm.pauseGasMetering();
        Counts memory all;
        all.minTolerance = type(uint256).max;
        for (uint256 f; f < N_FILES; ++f) {
            Counts memory c = this.checkFile(_file(f));
            all.accounts += c.accounts;
            all.judged += c.judged;
            all.moves += c.moves;
            all.hashes += c.hashes;
            all.skipped += c.skipped;
            if (c.minTolerance < all.minTolerance) all.minTolerance = c.minTolerance;
            if (c.maxTolerance > all.maxTolerance) all.maxTolerance = c.maxTolerance;
        }
        assertEq(all.accounts, 1200);
        console2.log("accounts judged", all.accounts);
        console2.log("calls to judge", all.judged);
        console2.log("boundary moves checked", all.moves);
        console2.log("hashes compared", all.hashes);
        console2.log("boundary moves skipped (requirement below the tolerance)", all.skipped);
        console2.log("smallest tolerance (USD, WAD)", all.minTolerance);
        console2.log("largest tolerance (USD, WAD)", all.maxTolerance);
    }

    /// @notice Every account and hash of one market file (external: its memory is freed after).
    function checkFile(string memory path) external view returns (Counts memory c) {
        string memory json = vm.readFile(path);
        AggregationParams memory p = _params(json);
        RiskVector[] memory vectors = _vectors(_instruments(json));
        _checkHashes(c, json, vectors, p);
        Accounts memory a = _accounts(json);
        c.accounts = a.cash.length;
        c.minTolerance = type(uint256).max;
        for (uint256 i; i < c.accounts; ++i) {
            uint256 free;
            assembly ("memory-safe") {
                free := mload(0x40)
            }
            _checkAccount(c, a, i, vectors, p);
            assembly ("memory-safe") {
                mstore(0x40, free)
            }
        }
    }

    function _checkHashes(Counts memory c, string memory json, RiskVector[] memory vectors, AggregationParams memory p)
        internal
        view
    {
        bytes32[] memory expected = vm.parseJsonBytes32Array(json, ".instruments.hash");
        assertEq(expected.length, vectors.length);
        for (uint256 i; i < vectors.length; ++i) {
            assertEq(h.hashVector(vectors[i]), expected[i], string.concat("vector hash of instrument ", vm.toString(i)));
        }
        assertEq(h.hashParams(p), vm.parseJsonBytes32(json, ".params.hash"), "params hash");
        c.hashes += vectors.length + 1;
    }

    /// @dev One account of a file: its book, the recomputation of its honest leaf, its name.
    struct Case {
        int256 cash;
        int256[] sizes;
        RiskVector[] vectors;
        AggregationParams p;
        Verdict v;
        string what;
    }

    function _checkAccount(
        Counts memory c,
        Accounts memory a,
        uint256 i,
        RiskVector[] memory all,
        AggregationParams memory p
    ) internal view {
        Case memory k;
        (k.sizes, k.vectors) = _book(a, i, all);
        (k.cash, k.p, k.what) = (a.cash[i], p, string.concat("account ", vm.toString(i)));
        // the leaf the keeper would post
        k.v = h.judge(k.cash, k.sizes, k.vectors, p, a.leafEquity[i], a.leafIm[i], a.leafMm[i]);
        assertFalse(h.anyWrong(k.v), string.concat("honest leaf of ", k.what));
        ++c.judged;
        if (k.v.tolerance < c.minTolerance) c.minTolerance = k.v.tolerance;
        if (k.v.tolerance > c.maxTolerance) c.maxTolerance = k.v.tolerance;
        // the engine's unwidened numbers
        assertFalse(h.anyWrong(h.compare(k.v, a.equity[i], a.im[i], a.mm[i])), string.concat("engine, ", k.what));
        _checkMoves(c, k, i % JUDGE_EVERY == 0);
    }

    /// @dev Each number beyond the tolerance on each side with the other two at exactly it:
    /// against the recomputation (compare), and through judge itself when `full` (a judgment
    /// recomputes the account: 25 ms each here).
    function _checkMoves(Counts memory c, Case memory k, bool full) internal view {
        for (uint256 m; m < 6; ++m) {
            Posted memory q = _moved(k.v, m % 3, m < 3);
            if (q.skip) {
                ++c.skipped;
                continue;
            }
            Verdict memory w = h.compare(k.v, q.equity, q.im, q.mm);
            if (full) {
                w = h.judge(k.cash, k.sizes, k.vectors, k.p, q.equity, q.im, q.mm);
                ++c.judged;
            }
            ++c.moves;
            string memory move = string.concat(", move ", vm.toString(m), ", ", k.what);
            assertEq(w.tolerance, k.v.tolerance);
            assertEq(w.equityWrong, m % 3 == 0, string.concat("equity", move));
            assertEq(w.imWrong, m % 3 == 1, string.concat("im", move));
            assertEq(w.mmWrong, m % 3 == 2, string.concat("mm", move));
        }
    }

    struct Posted {
        int256 equity;
        uint256 im;
        uint256 mm;
        bool skip;
    }

    /// @dev The recomputed numbers with number `wrong` (0 equity, 1 IM, 2 MM) moved by tolerance +
    /// 1 wei, up if `up`, and the two others by exactly the tolerance, the other way.
    function _moved(Verdict memory v, uint256 wrong, bool up) internal pure returns (Posted memory q) {
        uint256 t = v.tolerance;
        uint256 te = wrong == 0 ? t + 1 : t;
        uint256 ti = wrong == 1 ? t + 1 : t;
        uint256 tm = wrong == 2 ? t + 1 : t;
        bool upOthers = !up;
        // forge-lint: disable-next-line(unsafe-typecast)
        int256 e = int256(te); // a tolerance of the vectors' accounts, far below 2**255
        q.equity = (wrong == 0 ? up : upOthers) ? v.equity + e : v.equity - e;
        bool imUp = wrong == 1 ? up : upOthers;
        bool mmUp = wrong == 2 ? up : upOthers;
        if ((!imUp && v.im < ti) || (!mmUp && v.mm < tm)) {
            q.skip = true;
        } else {
            q.im = imUp ? v.im + ti : v.im - ti;
            q.mm = mmUp ? v.mm + tm : v.mm - tm;
        }
    }

    /* THE TOLERANCE */

    function test_tolerance_isTwoPerTrillionOfTheScaleRoundedUpPlusFloor() public view {
        // 2e-12 x (1e6 USD + 5e5 USD) = 3e-6 USD = 3e12 wei, exact; + 1e4 + 1
        assertEq(h.tolerance(1_000_000e18, -500_000e18), 3e12 + 10_001);
        assertEq(h.tolerance(1_000_000e18, 500_000e18), 3e12 + 10_001);
        // a scale that 5e11 does not divide rounds up, in the leaf's favour
        assertEq(h.tolerance(5e11 + 1, 0), 2 + 10_001);
        assertEq(h.tolerance(1, 0), 1 + 10_001);
        assertEq(h.tolerance(0, 0), 10_001);
    }

    function test_tolerance_saturatesInsteadOfOverflowing() public view {
        uint256 top = type(uint256).max / 5e11 + 1 + 10_001;
        assertEq(h.tolerance(type(uint256).max, type(int256).min), top);
        assertEq(h.tolerance(type(uint256).max, 0), top);
        // |type(int256).min| = 2**255 has no int256 counterpart, and is taken exactly
        assertEq(h.tolerance(0, type(int256).min), (uint256(1) << 255) / 5e11 + 1 + 10_001);
    }

    /* THE JUDGE ON A SMALL ACCOUNT */

    function _oneOption()
        internal
        pure
        returns (int256[] memory sizes, RiskVector[] memory v, AggregationParams memory p)
    {
        sizes = new int256[](1);
        sizes[0] = -2e18; // short 2
        int256[] memory loss = new int256[](3);
        (loss[0], loss[1], loss[2]) = (100e18, -40e18, 30e18);
        v = new RiskVector[](1);
        v[0] = RiskVector({
            underlying: 0,
            mark: 50e18,
            loss: loss,
            pad: new uint256[](0),
            basisUp: 1e18,
            basisDown: -1e18,
            delta: 500e18,
            minimumCharge: 2e18,
            shortOptionCharge: 10e18,
            notional: 1_000e18
        });
        p.nMm = 3;
        p.imCopies = new uint256[](0);
        p.mmScale = 0.5e18;
        p.concentrationRate = new uint256[](1);
        p.concentrationThreshold = new uint256[](1);
        p.concentrationThreshold[0] = 1e30;
        p.nodeWeight = new uint256[](1);
        p.nodeWeight[0] = 1e18;
        p.left = new uint256[](0);
        p.right = new uint256[](0);
    }

    function test_judge_recomputesAndComparesEachNumber() public view {
        (int256[] memory sizes, RiskVector[] memory v, AggregationParams memory p) = _oneOption();
        // equity 1,000 - 2 x 50 = 900; short 2: scan max(-200, 80, -60) = 80, basis 2, short
        // option 20, minimum 4: IM 106, MM 80 + 13 = 93; scale 2,000 + 1,000 USD
        Verdict memory r = h.judge(1_000e18, sizes, v, p, 900e18, 106e18, 93e18);
        assertEq(r.equity, 900e18);
        assertEq(r.im, 106e18);
        assertEq(r.mm, 93e18);
        assertEq(r.tolerance, 3_000e18 / 5e11 + 10_001);
        assertFalse(h.anyWrong(r));
        r = h.judge(1_000e18, sizes, v, p, 900e18, 106e18 - r.tolerance - 1, 93e18);
        assertTrue(r.imWrong && !r.equityWrong && !r.mmWrong && h.anyWrong(r));
        r = h.judge(1_000e18, sizes, v, p, 900e18, 106e18, 93e18 + r.tolerance + 1);
        assertTrue(r.mmWrong && !r.equityWrong && !r.imWrong);
        r = h.judge(1_000e18, sizes, v, p, 900e18 + int256(r.tolerance) + 1, 106e18, 93e18);
        assertTrue(r.equityWrong && !r.imWrong && !r.mmWrong);
    }

    function test_judge_isCompareOfRecompute() public view {
        (int256[] memory sizes, RiskVector[] memory v, AggregationParams memory p) = _oneOption();
        Verdict memory r = h.recompute(1_000e18, sizes, v, p);
        assertFalse(h.anyWrong(r)); // no posted number yet
        Verdict memory c = h.compare(r, 901e18, 106e18, 90e18);
        Verdict memory j = h.judge(1_000e18, sizes, v, p, 901e18, 106e18, 90e18);
        assertEq(abi.encode(c), abi.encode(j));
        assertTrue(j.equityWrong && !j.imWrong && j.mmWrong);
        assertEq(abi.encode(r), abi.encode(h.compare(r, 900e18, 106e18, 93e18)));
    }

    function test_judge_postedAtTheExtremesOfInt256() public view {
        (int256[] memory sizes, RiskVector[] memory v, AggregationParams memory p) = _oneOption();
        // the distance of type(int256).min from a positive equity exceeds int256: no overflow
        Verdict memory r = h.judge(1_000e18, sizes, v, p, type(int256).min, type(uint256).max, 0);
        assertTrue(r.equityWrong && r.imWrong && r.mmWrong);
        r = h.judge(-type(int256).max, new int256[](0), new RiskVector[](0), p, type(int256).max, 0, 0);
        assertTrue(r.equityWrong);
    }

    function test_judge_noPositionIsItsCash() public view {
        (,, AggregationParams memory p) = _oneOption();
        Verdict memory r = h.judge(-7e18, new int256[](0), new RiskVector[](0), p, -7e18, 0, 0);
        assertEq(r.equity, -7e18);
        assertEq(r.im, 0);
        assertEq(r.tolerance, 7e18 / 5e11 + 10_001);
        assertFalse(h.anyWrong(r));
    }

    function test_judge_revertsWhenPositionCountMismatch() public {
        (int256[] memory sizes,, AggregationParams memory p) = _oneOption();
        vm.expectRevert(abi.encodeWithSelector(AccountMargin.PositionCountMismatch.selector, 1, 0));
        h.judge(0, sizes, new RiskVector[](0), p, 0, 0, 0);
    }

    function test_judge_revertsWhenVectorShapeMismatch() public {
        (int256[] memory sizes, RiskVector[] memory v, AggregationParams memory p) = _oneOption();
        v[0].pad = new uint256[](2); // neither empty nor one per scan column
        vm.expectRevert(abi.encodeWithSelector(AccountMargin.VectorShapeMismatch.selector, 0, 3, 2));
        h.judge(0, sizes, v, p, 0, 0, 0);
    }

    /* HASHES */

    function test_hashVector_isKeccakOfTheAbiEncoding() public view {
        (, RiskVector[] memory v,) = _oneOption();
        assertEq(h.hashVector(v[0]), keccak256(abi.encode(v[0])));
        bytes32 before = h.hashVector(v[0]);
        v[0].loss[2] += 1; // one wei of one loss
        assertTrue(h.hashVector(v[0]) != before);
    }

    function test_hashParams_isKeccakOfTheAbiEncoding() public view {
        (,, AggregationParams memory p) = _oneOption();
        assertEq(h.hashParams(p), keccak256(abi.encode(p)));
        bytes32 before = h.hashParams(p);
        p.mmScale += 1;
        assertTrue(h.hashParams(p) != before);
    }

    /* TOKEN SIZE */

    function test_tokenSize_isExactUpTo18Decimals() public view {
        assertEq(h.tokenSize(1_234_567, 6), 1.234567e18); // 1.234567 USDC
        assertEq(h.tokenSize(3e18, 18), 3e18);
        assertEq(h.tokenSize(1, 0), 1e18);
        assertEq(h.tokenSize(0, 8), 0);
    }

    function test_tokenSize_roundsDownBeyond18Decimals() public view {
        assertEq(h.tokenSize(1e24, 24), 1e18);
        assertEq(h.tokenSize(1e6 - 1, 24), 0); // under 1 wei of a token: no size, less equity
        assertEq(h.tokenSize(2e6 + 999_999, 24), 2);
        assertEq(h.tokenSize(type(uint256).max, 77), int256(type(uint256).max / 1e59));
    }

    function test_tokenSize_revertsWhenBalanceTooLarge() public {
        uint256 top = uint256(type(int256).max) / 1e12;
        // forge-lint: disable-next-line(unsafe-typecast)
        assertEq(h.tokenSize(top, 6), int256(top * 1e12)); // <= type(int256).max
        vm.expectRevert(abi.encodeWithSelector(AccountDispute.TokenBalanceTooLarge.selector, top + 1, 6));
        h.tokenSize(top + 1, 6);
    }

    function test_tokenSize_revertsWhenDecimalsTooLarge() public {
        vm.expectRevert(abi.encodeWithSelector(AccountDispute.TokenDecimalsTooLarge.selector, 78, 77));
        h.tokenSize(1, 78);
    }
}
