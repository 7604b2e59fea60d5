// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {
    IMarginVault,
    AccountLeaf,
    InstrumentProof,
    MarginProof,
    Quote
} from "../../contracts/interfaces/IMarginVault.sol";

interface IMintable {
    function mint(address to, uint256 amount) external;
    function approve(address spender, uint256 amount) external returns (bool);
}

/// @title BulkWorld
/// @notice Benchmark-only helper (scripts/bench_pipeline.py): opens many funded subaccounts
/// and fills many quotes per transaction, so that a world of 100,000 accounts is built in a
/// few hundred transactions instead of 500,000. It owns every subaccount it opens; nothing
/// in the protocol depends on it, and it is never deployed outside a benchmark's Anvil.
contract BulkWorld {
    IMarginVault public immutable vault;
    IMintable public immutable usdc;

    constructor(IMarginVault vault_, IMintable usdc_) {
        vault = vault_;
        usdc = usdc_;
        usdc_.approve(address(vault_), type(uint256).max);
    }

    /// @notice Creates `n` subaccounts owned by this contract, each holding `amount6` cash.
    function open(uint256 n, uint256 amount6) external returns (uint256 first) {
        usdc.mint(address(this), n * amount6);
        for (uint256 i; i < n; ++i) {
            uint256 account = vault.createSubaccount();
            if (i == 0) first = account;
            vault.depositCash(account, amount6);
        }
    }

    /// @notice Fills `base` once per taker, with nonce `base.nonce + i` and the maker's
    /// signature `signatures[65 i : 65 (i + 1)]`. The takers are flat before their fill, so
    /// their proofs are empty (the vault bounds them from their on-chain value).
    function take(
        Quote memory base,
        InstrumentProof[] calldata legProofs,
        MarginProof calldata makerProof,
        uint256[] calldata takers,
        bytes calldata signatures
    ) external {
        uint256 nonce0 = base.nonce;
        MarginProof memory empty;
        for (uint256 i; i < takers.length; ++i) {
            base.nonce = nonce0 + i;
            empty.leaf = AccountLeaf(takers[i], 0, 0, 0, 0, 0, 0, bytes32(0));
            vault.executeQuote(base, signatures[65 * i:65 * (i + 1)], legProofs, makerProof, takers[i], empty);
        }
    }
}
