// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {FixedPoint} from "./FixedPoint.sol";

/// @notice One instrument's risk vector: its row of risk_engine's RiskArrays (docs/margin-method.md
/// §4), everything the aggregation of §5 reads per instrument; InstrumentVector.riskVectorApprox
/// recomputes it from the committed market inputs (§10). USD WAD per unit LONG unless said
/// otherwise; positive = loss.
struct RiskVector {
    uint256 underlying; // index into AggregationParams' per-underlying arrays (and tree leaves)
    uint256 mark; // USD per unit
    int256[] loss; // the template scenario losses (x cover): ScenarioLoss.lossesApprox's vector
    uint256[] pad; // continuous-range pad of each scan column (ContinuousRangePad); empty = none (linear)
    int256 basisUp; // loss per unit of the basis-up shock (ScenarioLoss.basisDeltaApprox)
    int256 basisDown; // loss per unit of the basis-down shock
    int256 delta; // delta notional per unit (USD)
    uint256 minimumCharge; // per unit of |size|: minimum_charge.rate x spot + the confidence add-on (InstrumentVector)
    uint256 shortOptionCharge; // per unit short (0 unless an option; InstrumentVector)
    uint256 notional; // spot of the underlying: gross notional of one unit (the tolerance's scale)
}

/// @notice The epoch's aggregation weights and add-on parameters (docs/margin-method.md §5), WAD.
struct AggregationParams {
    uint256 nMm; // the first nMm scan columns are the MM grid
    uint256[] imCopies; // scan column nScenarios + j repeats the loss of scenario imCopies[j] (mm_boundary)
    uint256 mmScale; // MM = scan(MM) + mmScale x add-ons
    uint256[] concentrationRate; // per underlying
    uint256[] concentrationThreshold; // per underlying, USD
    uint256[] nodeWeight; // correlation-tree nodes: the underlyings first, then merges, children first
    uint256[] left; // node nUnderlyings + j merges nodes left[j] and right[j] (both < it)
    uint256[] right;
}

/// @notice An account's requirement and its terms (USD WAD), each rounded up: every product of
/// a size and a per-unit number is rounded toward the larger requirement, so each term is at least
/// the exact value of the fixed-point inputs.
struct Requirements {
    uint256 imUp;
    uint256 mmUp;
    uint256 scanImUp;
    uint256 scanMmUp;
    uint256 basisUp;
    uint256 shortOptionUp;
    uint256 minimumUp;
    uint256 concentrationUp;
    uint256 grossNotionalUp; // sum |size| x notional: the scale of the dispute tolerance
}

/// @title AccountMargin
/// @notice One account's equity, IM and MM recomputed from its positions, cash and the risk
/// vectors of the instruments it holds, exactly as risk_engine/margin.py:compute_margin aggregates
/// them (docs/margin-method.md §5, §10): per-underlying scan columns with the long positions'
/// pads, cluster maxima over the correlation tree, fixed weights, basis, short option minimum,
/// minimum charge (with the confidence add-on) and concentration.
/// @dev Warning: the caller must check the vectors and parameters against the epoch's commitments;
/// this library trusts them. Collateral tokens are positions in SPOT instruments (their balance in
/// whole tokens, valued at spot), as in the engine (docs/margin-method.md §1). Rounding is against
/// the account: equity down, every requirement term up (`_mulWadFloor`, `_mulWadCeil`, `_mulWadUp`
/// on each product).
library AccountMargin {
    /// @dev Declared here, not in Errors (the vault's ABI), until the vault calls this library.
    error PositionCountMismatch(uint256 sizes, uint256 vectors);
    error VectorShapeMismatch(uint256 position, uint256 losses, uint256 pads);
    error UnknownUnderlying(uint256 position, uint256 underlying, uint256 nUnderlyings);
    error TreeShapeMismatch(uint256 nodes, uint256 left, uint256 right, uint256 nUnderlyings);
    error InvalidTreeNode(uint256 node, uint256 child);
    error InvalidImCopy(uint256 column, uint256 scenario, uint256 nMm);
    error InvalidMmGrid(uint256 nMm, uint256 nScenarios);

    /// @notice `cash + sum_i size_i mark_i` (USD WAD), rounded down.
    function equityDown(int256 cash, int256[] calldata sizes, RiskVector[] calldata vectors)
        internal
        pure
        returns (int256 equity)
    {
        if (sizes.length != vectors.length) revert PositionCountMismatch(sizes.length, vectors.length);
        equity = cash;
        for (uint256 j; j < sizes.length; ++j) {
            equity += _mulWadFloor(sizes[j], FixedPoint.toInt(vectors[j].mark));
        }
    }

    /// @notice IM, MM and their terms (docs/margin-method.md §5), each rounded up.
    /// @param sizes signed sizes (WAD units of each instrument), one per vector; an instrument
    /// appears once (the engine sums duplicates before it aggregates)
    function requirementsUp(int256[] calldata sizes, RiskVector[] calldata vectors, AggregationParams calldata p)
        internal
        pure
        returns (Requirements memory r)
    {
        if (sizes.length != vectors.length) revert PositionCountMismatch(sizes.length, vectors.length);
        uint256 nU = p.concentrationRate.length;
        _checkParams(p, nU);
        if (sizes.length == 0) return r; // no position, no requirement
        // scan columns: the template, then the IM copies of the MM-boundary points
        uint256 nScenarios = vectors[0].loss.length;
        if (p.nMm > nScenarios) revert InvalidMmGrid(p.nMm, nScenarios);
        uint256 nScan = nScenarios + p.imCopies.length;
        int256[][] memory columns = new int256[][](p.nodeWeight.length);
        PerUnderlying memory pu = _newPerUnderlying(nU);
        for (uint256 u; u < nU; ++u) {
            columns[u] = new int256[](nScan);
        }
        for (uint256 j; j < sizes.length; ++j) {
            RiskVector calldata v = vectors[j];
            if (v.loss.length != nScenarios || (v.pad.length != 0 && v.pad.length != nScan)) {
                revert VectorShapeMismatch(j, v.loss.length, v.pad.length);
            }
            if (v.underlying >= nU) revert UnknownUnderlying(j, v.underlying, nU);
            int256 x = sizes[j];
            _addScanColumnsUp(columns[v.underlying], x, v, p.imCopies, nScenarios);
            _addLinearTermsUp(pu, r, x, v);
        }
        (r.scanImUp, r.scanMmUp) = _scanUp(columns, p, nU);
        for (uint256 u; u < nU; ++u) {
            int256 b = FixedPoint.max(pu.basisUp[u], pu.basisDown[u]);
            r.basisUp += FixedPoint.positivePart(b);
            // |D_u| bounded above by the larger magnitude of its floor and ceiling sums
            uint256 d = FixedPoint.abs(pu.deltaCeil[u]);
            uint256 dFloor = FixedPoint.abs(pu.deltaFloor[u]);
            if (dFloor > d) d = dFloor;
            if (d > p.concentrationThreshold[u]) {
                r.concentrationUp += _mulWadUp(p.concentrationRate[u], d - p.concentrationThreshold[u]);
            }
        }
        uint256 addOns = r.basisUp + r.shortOptionUp + r.minimumUp + r.concentrationUp;
        r.imUp = r.scanImUp + addOns;
        r.mmUp = r.scanMmUp + _mulWadUp(p.mmScale, addOns);
    }

    /// @dev Per-underlying sums of one account (USD WAD): the basis losses and the delta notional
    /// (rounded both ways, so that |D_u| is bounded above whatever its sign).
    struct PerUnderlying {
        int256[] basisUp;
        int256[] basisDown;
        int256[] deltaCeil;
        int256[] deltaFloor;
    }

    function _newPerUnderlying(uint256 nU) private pure returns (PerUnderlying memory pu) {
        pu.basisUp = new int256[](nU);
        pu.basisDown = new int256[](nU);
        pu.deltaCeil = new int256[](nU);
        pu.deltaFloor = new int256[](nU);
    }

    /// @dev `L_u(k) += x loss[k] + max(x, 0) pad[k]` for every scan column `k`, each product rounded
    /// toward the larger loss (docs/margin-method.md §5).
    function _addScanColumnsUp(
        int256[] memory col,
        int256 x,
        RiskVector calldata v,
        uint256[] calldata imCopies,
        uint256 nScenarios
    ) private pure {
        for (uint256 k; k < nScenarios; ++k) {
            col[k] += _mulWadCeil(x, v.loss[k]);
        }
        for (uint256 j; j < imCopies.length; ++j) {
            col[nScenarios + j] += _mulWadCeil(x, v.loss[imCopies[j]]);
        }
        // a short position and a linear instrument carry no pad (§3)
        if (x <= 0 || v.pad.length == 0) return;
        // forge-lint: disable-next-line(unsafe-typecast)
        uint256 size = uint256(x); // x > 0
        for (uint256 k; k < col.length; ++k) {
            col[k] += FixedPoint.toInt(_mulWadUp(size, v.pad[k]));
        }
    }

    /// @dev The per-position terms: basis and delta per underlying, short option minimum, minimum
    /// charge and gross notional.
    function _addLinearTermsUp(PerUnderlying memory pu, Requirements memory r, int256 x, RiskVector calldata v)
        private
        pure
    {
        uint256 u = v.underlying;
        pu.basisUp[u] += _mulWadCeil(x, v.basisUp);
        pu.basisDown[u] += _mulWadCeil(x, v.basisDown);
        pu.deltaCeil[u] += _mulWadCeil(x, v.delta);
        pu.deltaFloor[u] += _mulWadFloor(x, v.delta);
        uint256 size = FixedPoint.abs(x);
        if (x < 0) r.shortOptionUp += _mulWadUp(size, v.shortOptionCharge);
        r.minimumUp += _mulWadUp(size, v.minimumCharge);
        r.grossNotionalUp += _mulWadUp(size, v.notional);
    }

    /// @dev `scan = sum_c weight(c) max(0, max_k sum_{u in c} L_u(k))` over every scan column (IM)
    /// and over the first nMm (MM). A merge's columns are the sum of its children's, built bottom-up
    /// as the engine does (risk_engine/margin.py:cluster_worst).
    function _scanUp(int256[][] memory columns, AggregationParams calldata p, uint256 nU)
        private
        pure
        returns (uint256 scanIm, uint256 scanMm)
    {
        uint256 nNodes = p.nodeWeight.length;
        for (uint256 c; c < nNodes; ++c) {
            if (c >= nU) columns[c] = _sum(columns[p.left[c - nU]], columns[p.right[c - nU]]);
            uint256 w = p.nodeWeight[c];
            if (w == 0) continue;
            int256[] memory s = columns[c];
            int256 worstMm;
            for (uint256 k; k < p.nMm; ++k) {
                if (s[k] > worstMm) worstMm = s[k];
            }
            int256 worstIm = worstMm;
            for (uint256 k = p.nMm; k < s.length; ++k) {
                if (s[k] > worstIm) worstIm = s[k];
            }
            scanIm += _mulWadUp(w, FixedPoint.positivePart(worstIm));
            scanMm += _mulWadUp(w, FixedPoint.positivePart(worstMm));
        }
    }

    /// @dev `x y / 1e18` rounded toward +inf. One multiplication and one division when `x y` fits
    /// in int256 (always, for sizes and losses below 1e20 units and 1e20 USD); FixedPoint's 512-bit
    /// path otherwise, which reverts only if the result itself does not fit.
    function _mulWadCeil(int256 x, int256 y) private pure returns (int256 z) {
        unchecked {
            int256 p = x * y;
            if (x != 0 && (p / x != y || (x == -1 && y == type(int256).min))) return FixedPoint.mulWadCeil(x, y);
            z = p / 1e18; // toward zero
            if (p > 0 && z * 1e18 != p) ++z;
        }
    }

    /// @dev `x y / 1e18` rounded up (as `_mulWadCeil`, unsigned).
    function _mulWadUp(uint256 x, uint256 y) private pure returns (uint256 z) {
        unchecked {
            uint256 p = x * y;
            if (x != 0 && p / x != y) return FixedPoint.mulWadUp(x, y);
            z = p / 1e18;
            if (z * 1e18 != p) ++z;
        }
    }

    /// @dev `x y / 1e18` rounded toward -inf (as `_mulWadCeil`).
    function _mulWadFloor(int256 x, int256 y) private pure returns (int256 z) {
        unchecked {
            int256 p = x * y;
            if (x != 0 && (p / x != y || (x == -1 && y == type(int256).min))) return FixedPoint.mulWadFloor(x, y);
            z = p / 1e18; // toward zero
            if (p < 0 && z * 1e18 != p) --z;
        }
    }

    function _sum(int256[] memory a, int256[] memory b) private pure returns (int256[] memory s) {
        s = new int256[](a.length);
        for (uint256 k; k < a.length; ++k) {
            s[k] = a[k] + b[k];
        }
    }

    /// @dev The tree lists every underlying as a leaf and merges only earlier nodes; the IM copies
    /// repeat MM points (the engine's mm_boundary).
    function _checkParams(AggregationParams calldata p, uint256 nU) private pure {
        uint256 nNodes = p.nodeWeight.length;
        if (
            nNodes < nU || p.concentrationThreshold.length != nU || p.left.length != nNodes - nU
                || p.right.length != nNodes - nU
        ) revert TreeShapeMismatch(nNodes, p.left.length, p.right.length, nU);
        for (uint256 j; j < p.left.length; ++j) {
            // children come before their parent, so a node's columns exist when it is merged
            if (p.left[j] >= nU + j) revert InvalidTreeNode(nU + j, p.left[j]);
            if (p.right[j] >= nU + j) revert InvalidTreeNode(nU + j, p.right[j]);
        }
        for (uint256 j; j < p.imCopies.length; ++j) {
            if (p.imCopies[j] >= p.nMm) revert InvalidImCopy(j, p.imCopies[j], p.nMm);
        }
    }
}
