// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Black76} from "../../../contracts/libraries/Black76.sol";
import {NormalCdf} from "../../../contracts/libraries/NormalCdf.sol";
import {
    BasisShock,
    InstrumentMarket,
    ScenarioGrid,
    VolShock,
    ScenarioLoss
} from "../../../contracts/libraries/ScenarioLoss.sol";
import {ContinuousRangePad, PadLayout} from "../../../contracts/libraries/ContinuousRangePad.sol";
import {RiskVector} from "../../../contracts/libraries/AccountMargin.sol";
import {InstrumentVector, UnderlyingMarket, VectorParams} from "../../../contracts/libraries/InstrumentVector.sol";

/// @notice External entry points over the internal pricing libraries: each call runs in its own
/// memory (the accuracy test makes thousands), and its gas is one call's (docs/gas.md).
contract Black76Harness {
    function premium(uint256 forward, uint256 strike, uint256 tenor, uint256 sigma, int256 rate, bool isCall)
        external
        pure
        returns (uint256)
    {
        return Black76.premiumApprox(forward, strike, tenor, sigma, rate, isCall);
    }

    function cdf(int256 x) external pure returns (uint256) {
        return NormalCdf.cdfApprox(x);
    }

    function losses(InstrumentMarket calldata m, ScenarioGrid calldata g, VolShock calldata v)
        external
        pure
        returns (uint256 mark, int256[] memory loss)
    {
        return ScenarioLoss.lossesApprox(m, g, v);
    }

    function basisDelta(InstrumentMarket calldata m, BasisShock calldata b, uint256 volFloor)
        external
        pure
        returns (int256 basisUp, int256 basisDown, int256 delta)
    {
        return ScenarioLoss.basisDeltaApprox(m, b, volFloor);
    }

    /// @dev The mark and losses are recomputed first, as a dispute would (the gas covers both).
    function lossesAndPads(
        InstrumentMarket calldata m,
        ScenarioGrid calldata g,
        VolShock calldata v,
        PadLayout calldata l
    ) external pure returns (uint256[] memory pad) {
        (uint256 mark, int256[] memory loss) = ScenarioLoss.lossesApprox(m, g, v);
        return ContinuousRangePad.padsApprox(m, g, v, l, mark, loss);
    }

    /// @dev The whole risk vector, as a dispute of an instrument vector recomputes it.
    function riskVector(InstrumentMarket calldata m, UnderlyingMarket calldata u, VectorParams calldata p)
        external
        pure
        returns (RiskVector memory)
    {
        return InstrumentVector.riskVectorApprox(m, u, p);
    }
}
