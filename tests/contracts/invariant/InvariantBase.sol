// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Test} from "forge-std/Test.sol";

import {VaultModel} from "./VaultModel.sol";
import {CollateralHandler} from "./handlers/CollateralHandler.sol";
import {TradeHandler} from "./handlers/TradeHandler.sol";
import {MarketHandler} from "./handlers/MarketHandler.sol";
import {LiquidationHandler} from "./handlers/LiquidationHandler.sol";
import {MarginVault} from "../../../contracts/MarginVault.sol";
import {MockERC20} from "../../../contracts/mocks/MockERC20.sol";
import {
    AccountState, CommittedState, MarginProof, StateDelta
} from "../../../contracts/interfaces/IMarginVault.sol";
import {StateChain} from "../../../contracts/libraries/StateChain.sol";

/// @notice The world of the invariant suite: the model (vault, actors, truth, ghosts) and
/// one handler per concern. The suite and the scenario tests both start from it.
abstract contract InvariantBase is Test {
    /// @dev Wei of leaf rounding the bound checks allow (VaultModel.DUST).
    int256 internal constant DUST = 100;
    /// @dev Pending funding / settlement terms rounded in `netCashOwed`: subaccounts x instruments.
    uint256 internal constant PENDING_TERMS = 10 * 5;
    VaultModel internal model;
    MarginVault internal vault;
    CollateralHandler internal collateral;
    TradeHandler internal trades;
    MarketHandler internal market;
    LiquidationHandler internal liquidations;

    function setUp() public virtual {
        model = new VaultModel();
        model.setUp();
        vault = model.getVault();
        collateral = new CollateralHandler(model);
        trades = new TradeHandler(model);
        market = new MarketHandler(model);
        liquidations = new LiquidationHandler(model);
    }

    /* THE INVARIANTS (docs/invariants.md) */

    function _checkAll() internal view {
        AccountState[] memory st = vault.accountStates(model.accounts());
        VaultModel.Ghosts memory g = model.ghosts();
        _INV1_collateralCovered(st, g);
        int256 owed = model.netCashOwed(st);
        _INV2_settlementTokenCovers(owed, g);
        _INV3_cashConserved(owed, g);
        _INV4_positionsSumToZero(st, g);
        _INV5_insuranceAndBadDebt(g);
        _ghostChecks(g);
        _INV11_boundsSandwichTruth(st);
        _INV12_onlyPostedEpochs(g);
        _INV16_17_stateChain();
    }

    /// @notice INV-1: each collateral token held by the vault covers every subaccount's balance,
    /// and equals what the named flows (deposits - withdrawals) put there.
    function _INV1_collateralCovered(AccountState[] memory st, VaultModel.Ghosts memory g) internal view {
        MockERC20[] memory toks = model.collateralTokens();
        for (uint256 k; k < toks.length; ++k) {
            uint256 owed;
            for (uint256 i; i < st.length; ++i) {
                owed += st[i].collateralBalances[k];
            }
            assertGe(toks[k].balanceOf(address(vault)), owed, "INV-1: collateral token balance below account balances");
            assertEq(owed, g.netCollateral[k], "INV-1: collateral differs from its flows");
        }
    }

    /// @notice INV-2: settlement tokens held x 1e12 equal the named cash flows (deposits,
    /// withdrawals, liquidation deposits, payout claims) and cover sum(cash) + insurance +
    /// claimable payouts, net of pending funding and settlement.
    function _INV2_settlementTokenCovers(int256 owed, VaultModel.Ghosts memory g) internal view {
        int256 held = int256(model.usdcToken().balanceOf(address(vault)) * 1e12);
        assertEq(held, g.netCash, "INV-2: settlement token balance differs from its flows");
        assertGe(held, owed, "INV-2: settlement tokens do not cover cash + insurance");
    }

    /// @notice INV-3: no cash is created; only rounding destroys dust, one wei per operation
    /// (plus one per pending funding or settlement term, counted in `owed` with the vault's
    /// rounding). A liquidation moves `owed` (cash + insurance + payouts) by its deposit only,
    /// bad debt only through `uncovered` (INV-5).
    function _INV3_cashConserved(int256 owed, VaultModel.Ghosts memory g) internal pure {
        assertLe(owed, g.netCash, "INV-3: cash was created");
        int256 dust = int256(g.roundingOps + PENDING_TERMS);
        assertGe(owed, g.netCash - dust, "INV-3: more than rounding dust of cash disappeared");
    }

    /// @notice INV-4: positions per instrument sum to zero (options that settled into cash are
    /// counted through the ghost of settled sizes).
    function _INV4_positionsSumToZero(AccountState[] memory st, VaultModel.Ghosts memory g) internal pure {
        int256[] memory sum = new int256[](g.settledSize.length);
        for (uint256 i; i < st.length; ++i) {
            for (uint256 j; j < st[i].instruments.length; ++j) {
                sum[st[i].instruments[j]] += st[i].sizes[j];
            }
        }
        for (uint256 id = 1; id < sum.length; ++id) {
            assertEq(sum[id] + g.settledSize[id], 0, "INV-4: sizes do not sum to zero");
        }
    }

    /// @notice INV-5: the insurance fund and the bad debt move only by their named flows.
    function _INV5_insuranceAndBadDebt(VaultModel.Ghosts memory g) internal view {
        assertEq(vault.insuranceFund(), g.insurance, "INV-5: insurance fund differs from its flows");
        assertEq(vault.badDebt(), g.badDebt, "INV-5: bad debt differs from what liquidations recorded");
    }

    /// @notice INV-6 .. INV-10, INV-13 .. INV-15: the ghost checks the handlers ran at the
    /// moment of each action.
    function _ghostChecks(VaultModel.Ghosts memory g) internal pure {
        assertEq(g.violation, "", "a ghost check failed");
    }

    /// @notice INV-11: for every subaccount with a live leaf, the vault's bounds sandwich the
    /// truth: imSurplusLo <= true IM surplus, mmSurplusHi >= true MM surplus - DUST.
    function _INV11_boundsSandwichTruth(AccountState[] memory st) internal view {
        if (vault.isSafeMode()) return;
        VaultModel.Sandwich[] memory r = model.sandwich(st);
        for (uint256 i; i < r.length; ++i) {
            if (!r[i].live) continue;
            assertLe(r[i].imSurplusLo, r[i].trueImUp, "INV-11: imSurplusLo above the true IM surplus");
            assertGe(r[i].mmSurplusHi, r[i].trueMmDown - DUST, "INV-11: mmSurplusHi below the true MM surplus");
        }
    }

    /// @notice INV-16: every subaccount's stored state chain equals the one the ghost rebuilt
    /// from the logs (the keeper's rule, docs/protocol.md §9). INV-17: the ghost's checkpoint
    /// state (up to a few calls old) proves against live storage with the deltas since.
    function _INV16_17_stateChain() internal view {
        uint256[] memory ids = model.accounts();
        for (uint256 i; i < ids.length; ++i) {
            assertEq(vault.stateChain(ids[i]), model.stateGhost().word(ids[i]), "INV-16: state chain differs from the events'");
            (uint64 seq, bytes24 chain, CommittedState memory s, StateDelta[] memory d) =
                model.stateGhost().proofInput(ids[i]);
            assertEq(
                model.stateLens().proveStateAt(ids[i], seq, chain, s, d),
                StateChain.hashState(s),
                "INV-17: a true older state did not prove"
            );
        }
    }

    /// @notice INV-12: the vault's root and epoch are the last ones the signers posted.
    function _INV12_onlyPostedEpochs(VaultModel.Ghosts memory g) internal view {
        (uint64 epoch,,, bytes32 root) = vault.currentEpoch();
        assertEq(epoch, g.epoch, "INV-12: epoch not the last posted");
        assertEq(root, g.root, "INV-12: root not the last posted");
    }
}
