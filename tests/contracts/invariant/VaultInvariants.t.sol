// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {console2} from "forge-std/Test.sol";
import {StdInvariant} from "forge-std/StdInvariant.sol";

import {InvariantBase} from "./InvariantBase.sol";
import {CollateralHandler} from "./handlers/CollateralHandler.sol";
import {TradeHandler} from "./handlers/TradeHandler.sol";
import {MarketHandler} from "./handlers/MarketHandler.sol";
import {LiquidationHandler} from "./handlers/LiquidationHandler.sol";

/// @notice The vault's invariants (docs/invariants.md, INV-1 .. INV-17), checked per
/// subaccount after every
/// call of a random sequence over four handlers: collateral, trades, market/epochs,
/// liquidation. INV-6 .. INV-10 are ghost checks that the handlers run at the moment of the
/// action; `_ghostChecks` surfaces the first one that failed.
contract VaultInvariantsTest is StdInvariant, InvariantBase {
    function setUp() public override {
        super.setUp();

        bytes4[] memory c = new bytes4[](7);
        c[0] = CollateralHandler.deposit.selector;
        c[1] = CollateralHandler.withdraw.selector;
        c[2] = CollateralHandler.depositCash.selector;
        c[3] = CollateralHandler.withdrawCash.selector;
        c[4] = CollateralHandler.depositInsurance.selector;
        c[5] = CollateralHandler.claimPayout.selector;
        c[6] = CollateralHandler.transfer.selector;
        _target(address(collateral), c);

        // trade is listed three times: fills are what the other checks need most.
        bytes4[] memory t = new bytes4[](5);
        t[0] = TradeHandler.trade.selector;
        t[1] = TradeHandler.trade.selector;
        t[2] = TradeHandler.trade.selector;
        t[3] = TradeHandler.replay.selector;
        t[4] = TradeHandler.cancel.selector;
        _target(address(trades), t);

        bytes4[] memory m = new bytes4[](6);
        m[0] = MarketHandler.moveMarketAndPost.selector;
        m[1] = MarketHandler.moveMarketAndPost.selector;
        m[2] = MarketHandler.post.selector;
        m[3] = MarketHandler.warp.selector;
        m[4] = MarketHandler.applyFunding.selector;
        m[5] = MarketHandler.settle.selector;
        _target(address(market), m);

        bytes4[] memory l = new bytes4[](2);
        l[0] = LiquidationHandler.liquidate.selector;
        l[1] = LiquidationHandler.liquidate.selector;
        _target(address(liquidations), l);
    }

    /// @notice Every invariant after every call. One entry point, so that one campaign (not
    /// one per invariant) exercises them all; each check names its INV id on failure.
    function invariant_vault() public view {
        _checkAll();
    }

    function _target(address handler, bytes4[] memory selectors) internal {
        targetContract(handler);
        targetSelector(FuzzSelector({addr: handler, selectors: selectors}));
    }

    function afterInvariant() external view {
        bytes32[18] memory names = [
            bytes32("deposit"),
            "withdraw",
            "depositCash",
            "withdrawCash",
            "depositInsurance",
            "trade1",
            "trade2",
            "replay",
            "cancel",
            "moveMarket",
            "post",
            "safeMode",
            "applyFunding",
            "settle",
            "liquidate",
            "liquidateBadDebt",
            "claimPayout",
            "transfer"
        ];
        string memory line;
        for (uint256 i; i < names.length; ++i) {
            line = string.concat(line, _str(names[i]), "=", vm.toString(model.calls(names[i])), " ");
        }
        console2.log(line, "refused", model.calls("liquidateRefused"));
    }

    function _str(bytes32 b) internal pure returns (string memory) {
        uint256 n;
        while (n < 32 && b[n] != 0) ++n;
        bytes memory s = new bytes(n);
        for (uint256 i; i < n; ++i) {
            s[i] = b[i];
        }
        return string(s);
    }
}
