// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {HandlerBase} from "./HandlerBase.sol";
import {VaultModel} from "../VaultModel.sol";
import {
    Instrument,
    InstrumentLeaf,
    InstrumentProof,
    Leg,
    MarginProof,
    Quote
} from "../../../../contracts/interfaces/IMarginVault.sol";

/// @notice Concern: RFQ trades between two subaccounts (maybe of one owner). The maker
/// subaccount's owner (test key) signs a 1- or 2-leg quote with vm.sign and the taker
/// subaccount's owner takes it; sizes are drawn around what both sides' IM lower bounds allow, so
/// that fills and IM rejections both happen. Checks INV-9 (both sides keep a true IM surplus
/// >= 0) after every fill. Also cancels quotes and replays filled ones (INV-10).
contract TradeHandler is HandlerBase {
    /// @dev abi-encoded (Quote, signature, taker subaccount) of every fill, for replays.
    bytes[] internal _filled;

    constructor(VaultModel model_) HandlerBase(model_) {}

    function trade(
        uint256 makerSeed,
        uint256 takerSeed,
        uint256 idSeed,
        uint256 sizeSeed,
        uint256 priceSeed,
        bool twoLegs
    ) external observed {
        if (vault.isSafeMode()) return;
        (uint256 makerAccount, uint256 takerAccount) = _pair(makerSeed, takerSeed);
        Quote memory q = _buildQuote(makerAccount, takerAccount, idSeed, sizeSeed, priceSeed, twoLegs);
        if (q.legs.length == 0) return;
        bytes memory sig = model.signQuote(q);
        InstrumentProof[] memory ips = new InstrumentProof[](q.legs.length);
        for (uint256 i; i < q.legs.length; ++i) {
            ips[i] = model.ip(q.legs[i].instrument);
        }
        MarginProof memory mpMaker = model.mp(makerAccount);
        MarginProof memory mpTaker = model.mp(takerAccount);
        vm.prank(q.taker);
        vault.executeQuote(q, sig, ips, mpMaker, takerAccount, mpTaker);

        _filled.push(abi.encode(q, sig, takerAccount));
        // each leg may apply funding once per side
        model.recordRounding(2 * q.legs.length);
        if (model.imSurplus(makerAccount, true) < 0) model.flag("INV-9: a trade left the maker below its true IM");
        if (model.imSurplus(takerAccount, true) < 0) model.flag("INV-9: a trade left the taker below its true IM");
        model.count(q.legs.length == 2 ? bytes32("trade2") : bytes32("trade1"));
    }

    /// @dev The quote of the maker subaccount's owner to the taker subaccount's owner (no legs:
    /// nothing tradable).
    function _buildQuote(
        uint256 makerAccount,
        uint256 takerAccount,
        uint256 idSeed,
        uint256 sizeSeed,
        uint256 priceSeed,
        bool twoLegs
    ) internal returns (Quote memory q) {
        uint32[] memory ids = _tradable();
        if (ids.length == 0) return q;
        uint256 nLegs = twoLegs && ids.length > 1 ? 2 : 1;
        int256 budget = _min(_surplusLo(makerAccount), _surplusLo(takerAccount));
        // No room: try a small trade anyway; the vault refuses it unless it reduces risk.
        if (budget <= 0) budget = 20_000e18;
        q.maker = vault.ownerOf(makerAccount);
        q.makerAccount = makerAccount;
        q.taker = vault.ownerOf(takerAccount);
        q.legs = new Leg[](nLegs);
        for (uint256 i; i < nLegs; ++i) {
            uint32 id = ids[(idSeed + i) % ids.length];
            uint256 seed = i == 0 ? sizeSeed : uint256(keccak256(abi.encode(sizeSeed, i)));
            q.legs[i] = _leg(id, uint256(budget) / nLegs, seed, priceSeed);
        }
        q.nonce = model.takeNonce(q.maker);
        q.deadline = uint64(block.timestamp + 600);
    }

    /// @notice Replays a filled quote: the vault must refuse it (INV-10).
    function replay(uint256 seed) external observed {
        if (_filled.length == 0) return;
        (Quote memory q, bytes memory sig, uint256 takerAccount) =
            abi.decode(_filled[seed % _filled.length], (Quote, bytes, uint256));
        InstrumentProof[] memory ips = new InstrumentProof[](q.legs.length);
        for (uint256 i; i < q.legs.length; ++i) {
            ips[i] = model.ip(q.legs[i].instrument);
        }
        MarginProof memory mpMaker = model.mp(q.makerAccount);
        MarginProof memory mpTaker = model.mp(takerAccount);
        // sent by the taker subaccount's owner now (a transfer may have moved it since)
        vm.prank(vault.ownerOf(takerAccount));
        try vault.executeQuote(q, sig, ips, mpMaker, takerAccount, mpTaker) {
            model.flag("INV-10: a filled quote was executed twice");
        } catch {
            _dropLogs();
        }
        model.count("replay");
    }

    function cancel(uint256 makerSeed) external {
        address maker = model.actor(makerSeed);
        uint256 nonce = model.takeNonce(maker);
        vm.prank(maker);
        vault.cancelQuote(nonce);
        model.count("cancel");
    }

    /// @dev A leg whose worst bound cost is about `budget` x a fraction in (0, 1.2]: the
    /// fraction above 1 makes the IM gate refuse some fills. The lowest bit of `sizeSeed` is
    /// the maker's side (0 = long), the rest its size before bounding.
    function _leg(uint32 id, uint256 budget, uint256 sizeSeed, uint256 priceSeed) internal view returns (Leg memory) {
        InstrumentLeaf memory l = model.instrumentLeaf(id);
        // trade within 3% of the mark
        uint256 price = l.mark * _bound(priceSeed, 97, 103) / 100;
        if (price == 0) price = 1e18;
        uint256 diff = price > l.mark ? price - l.mark : l.mark - price;
        uint256 perUnit = _maxU(l.lossPerUnitLong, l.lossPerUnitShort) + diff + 1;
        uint256 maxQ = budget * 1e18 / perUnit;
        uint256 q = _bound(sizeSeed >> 1, 1e15, _maxU(maxQ * 6 / 5, 1e15 + 1));
        return Leg(id, sizeSeed & 1 == 0 ? int256(q) : -int256(q), price);
    }

    /// @dev Instruments that can still trade (not expired).
    function _tradable() internal view returns (uint32[] memory ids) {
        uint32 n = vault.instrumentCount();
        uint32[] memory buf = new uint32[](n);
        uint256 k;
        for (uint32 id = 1; id <= n; ++id) {
            Instrument memory ins = vault.instrument(id);
            if (ins.expiry != 0 && block.timestamp >= ins.expiry) continue;
            buf[k++] = id;
        }
        ids = new uint32[](k);
        for (uint256 i; i < k; ++i) {
            ids[i] = buf[i];
        }
    }

    function _surplusLo(uint256 account) internal view returns (int256) {
        try vault.imSurplusLo(account, model.mp(account)) returns (int256 s) {
            return s;
        } catch {
            return 0; // stale leaf after a liquidation: wait for the next epoch
        }
    }

    function _min(int256 a, int256 b) internal pure returns (int256) {
        return a < b ? a : b;
    }

    function _maxU(uint256 a, uint256 b) internal pure returns (uint256) {
        return a > b ? a : b;
    }
}
