// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {HandlerBase} from "./HandlerBase.sol";
import {VaultModel} from "../VaultModel.sol";
import {Instrument, InstrumentKind} from "../../../../contracts/interfaces/IMarginVault.sol";

/// @notice Concern: the market and the attestation. Moves prices and funding and posts the
/// epoch signed by a quorum of test signer keys (the model's truth as leaves), lets time pass
/// (sometimes into safe mode), applies funding and settles expired options.
contract MarketHandler is HandlerBase {
    constructor(VaultModel model_) HandlerBase(model_) {}

    /// @notice Each price moves by up to +-20% (BTC, ETH) / +-40% (GOV); each perp's funding
    /// index by up to 0.2% of a typical spot.
    function moveMarketAndPost(uint256 btcMove, uint256 ethMove, uint256 govMove, int256 btcF, int256 ethF) external {
        model.moveMarket(
            _bound(btcMove, 0.8e18, 1.2e18),
            _bound(ethMove, 0.8e18, 1.2e18),
            _bound(govMove, 0.6e18, 1.4e18),
            _bound(btcF, -120e18, 120e18),
            _bound(ethF, -6e18, 6e18)
        );
        model.count("moveMarket");
    }

    /// @notice An epoch with unchanged prices: re-bases every leaf.
    function post() external {
        model.postTruthfulEpoch();
        model.count("post");
    }

    /// @notice Up to 40 minutes; more than `maxAge` (1 hour) without a post is safe mode.
    function warp(uint256 secs) external {
        secs = _bound(secs, 1, 40 minutes);
        vm.warp(block.timestamp + secs);
        if (vault.isSafeMode()) model.count("safeMode");
        model.count("warp");
    }

    function applyFunding(uint256 accountSeed) external observed {
        vault.applyFunding(model.accountAt(accountSeed));
        model.recordRounding(8);
        model.count("applyFunding");
    }

    /// @notice Settles the first option of a subaccount that has a settlement price.
    function settle(uint256 accountSeed) external observed {
        uint256 who = model.accountAt(accountSeed);
        (,,,, uint32[] memory ids, int256[] memory sizes,,) = vault.accountState(who);
        for (uint256 i; i < ids.length; ++i) {
            Instrument memory ins = vault.instrument(ids[i]);
            if (ins.kind == InstrumentKind.PERP) continue;
            (, bool isSet) = vault.settlementPrice(ids[i]);
            if (!isSet) continue;
            vault.settle(who, ids[i]);
            model.recordSettled(ids[i], sizes[i]);
            model.recordRounding(1);
            model.count("settle");
            return;
        }
    }
}
