// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// Units (docs/protocol.md §1): every USD amount is WAD (1e18 = $1); cash is signed. Token
/// balances are in the token's own decimals; `amount6` is in the settlement token's decimals
/// (6 for USDC). Position sizes are signed WAD units of the instrument. Times are unix seconds.

/// @notice Kind of a registered instrument. PERP = 0, CALL = 1, PUT = 2.
enum InstrumentKind {
    PERP,
    CALL,
    PUT
}

/// @notice A registered instrument. A perp has `strike == 0` and `expiry == 0`.
struct Instrument {
    InstrumentKind kind;
    bytes32 underlying; // e.g. bytes32("BTC"), right-padded
    uint256 strike; // WAD USD per unit, 0 for a perp
    uint64 expiry; // unix seconds, 0 for a perp
}

/// @notice ACCOUNT leaf of the attested tree (docs/protocol.md §3).
struct AccountLeaf {
    uint256 account; // subaccount id (abi-encoded as one word, as an address was)
    uint64 stateNonce;
    int256 cumLo; // the account's cumLo at snapshotBlock
    int256 cumHi; // the account's cumHi at snapshotBlock
    int256 equity; // WAD USD, rounded down
    uint256 im; // WAD USD, rounded up
    uint256 mm; // WAD USD, rounded up
    bytes32 stateWord; // the account's state chain word at snapshotBlock: the state the numbers are of (§9)
}

/// @notice INSTRUMENT leaf of the attested tree (docs/protocol.md §3).
struct InstrumentLeaf {
    uint32 instrument;
    uint256 mark; // WAD USD per unit
    uint256 lossPerUnitLong; // WAD USD per unit, rounded up
    uint256 lossPerUnitShort; // WAD USD per unit, rounded up
    int256 fundingIndex; // a perp: the cumulative funding index this epoch posts (0 otherwise)
    bytes32 vectorHash; // keccak256(abi.encode(RiskVector)) of the instrument's engine row (§11)
}

/// @notice An ACCOUNT leaf with its Merkle proof against the current root.
struct MarginProof {
    AccountLeaf leaf;
    bytes32[] proof;
}

/// @notice An INSTRUMENT leaf with its Merkle proof against the current root.
struct InstrumentProof {
    InstrumentLeaf leaf;
    bytes32[] proof;
}

/// @notice Per-collateral-token price and shocks of an epoch (EIP-712 `TokenPrice`).
struct TokenPrice {
    address token;
    uint256 price; // WAD USD per whole token
    uint256 downShock; // WAD fraction, <= 1e18
    uint256 upShock; // WAD fraction
}

/// @notice New cumulative funding index of a perp (EIP-712 `FundingUpdate`).
struct FundingUpdate {
    uint32 instrument;
    int256 cumFunding; // WAD USD per unit
}

/// @notice Final settlement price of an expired option (EIP-712 `Settlement`).
struct Settlement {
    uint32 instrument;
    uint256 price; // WAD USD per unit of underlying
}

/// @notice The attested epoch header (EIP-712 `Epoch`), signed by a quorum of signers.
struct Epoch {
    uint64 epoch;
    uint64 snapshotBlock;
    uint64 timestamp;
    bytes32 root;
    bytes32 inputsHash; // the engine's committed inputs (docs/protocol.md §11)
    uint64 configVersion;
    TokenPrice[] tokens;
    FundingUpdate[] funding;
    Settlement[] settlements;
}

/// @notice One leg of a quote, from the maker's side: the maker gets `+size` at `price`.
struct Leg {
    uint32 instrument;
    int256 size; // WAD units, != 0
    uint256 price; // WAD USD per unit
}

/// @notice An RFQ quote (EIP-712 `Quote`), signed by `maker`, filled whole or not at all.
struct Quote {
    address maker; // the signer: owner or operator of `makerAccount` at execution
    uint256 makerAccount; // the subaccount whose positions and cash the fill moves
    address taker; // address(0): anyone may take it
    Leg[] legs;
    uint256 nonce;
    uint64 deadline; // last valid block.timestamp
}

/// @notice A full account snapshot, as returned by `accountStates`.
struct AccountState {
    int256 cash;
    uint64 stateNonce;
    int256 cumLo;
    int256 cumHi;
    uint32[] instruments;
    int256[] sizes;
    int256[] fundingIndexAtLastUpdate;
    uint256[] collateralBalances; // in registered token order
}

/// @notice One open position of a `CommittedState` (docs/protocol.md §9).
struct StatePosition {
    uint32 instrument;
    int256 size; // WAD units, != 0
    int256 fundingIndex; // WAD USD per unit, as the vault stores it
}

/// @notice One non-zero collateral balance of a `CommittedState`.
struct StateCollateral {
    address token;
    uint256 amount; // token decimals, != 0
}

/// @notice Everything a subaccount's margin depends on, and its running bounds, in canonical order: positions by
/// ascending instrument id, collateral by ascending token address (docs/protocol.md §9).
struct CommittedState {
    int256 cash; // WAD USD
    int256 cumLo; // the running bounds (docs/protocol.md §5), WAD USD
    int256 cumHi;
    StatePosition[] positions;
    StateCollateral[] collateral;
}

/// @notice One state change as the vault folds it into a subaccount's state chain
/// (docs/protocol.md §9). `kind`: 1 cash (key 0, value (cash, 0)), 2 position (key instrument
/// id, value (size, fundingIndex), (0, 0) when closed), 3 collateral (key uint160(token),
/// value (balance, 0)), 4 bounds (key 0, value (cumLo, cumHi)); `old*` the value before,
/// `new*` after.
struct StateDelta {
    uint8 kind;
    uint256 key;
    int256 oldA;
    int256 oldB;
    int256 newA;
    int256 newB;
}

/// @notice Amounts of a liquidation as `checkLiquidation` and `liquidate` compute them.
struct LiquidationQuote {
    bool liquidatable;
    int256 mmSurplusHi; // upper bound of the account's MM surplus now
    int256 imSurplusLo; // lower bound of the account's IM surplus now
    int256 equityLo; // lower bound of the account's equity now
    int256 equityHi; // upper bound of the account's equity now
    uint256 penalty; // mulWadUp(leaf.mm, liquidationPenalty)
    uint256 pay; // cash the liquidator pays the account
    uint256 fee; // cash the liquidator pays the insurance fund
    uint256 covered; // cash the insurance fund pays the liquidator (bad debt covered)
    uint256 uncovered; // bad debt the fund could not cover, added to `badDebt`
    int256 netCashPaid; // pay + fee - covered, checked against `maxCashOut`
    uint256 minDeposit6; // ceil((netCashPaid - imSurplusLo) / CASH_SCALE), 0 if negative
}

/// @title IMarginVault
/// @notice Portfolio-margin vault: holds collateral, records cash and positions, verifies
/// attested margin (one signed Merkle root per epoch) and gates withdrawals, trades and
/// liquidations on the running bounds of docs/protocol.md §5.
/// @dev Warning: the vault trusts a quorum of attestation signers for marks, losses per unit,
/// token prices and shocks, funding indices and settlement prices. A quorum that signs wrong
/// numbers can let accounts withdraw against value that is not there, or liquidate healthy
/// accounts. Everything else (replay, domain, order, staleness, sizes summing to zero, cash
/// conservation) is enforced on chain.
/// @dev Warning: tokens must be plain ERC20s (no fee on transfer, no rebasing, no hooks).
interface IMarginVault {
    /* GOVERNANCE */

    /// @notice Registers `token` as collateral (at most 16). Its decimals are read once.
    /// @dev Warning: the next epoch must list the token with a price (postEpoch rejects a table
    /// without it). Until then the token counts for nothing in on-chain valuations, a deposit
    /// of it adds (0, UNBOUNDED) to the running bounds and a withdrawal (-UNBOUNDED, 0), which
    /// blocks leaf-based checks of that account until its next leaf.
    function registerToken(address token) external;

    /// @notice Registers an instrument and returns its id (numbered from 1). Each contract is
    /// listed once: the same (kind, underlying, strike, expiry) again reverts
    /// `DuplicateInstrument(existingId)` (so a perp per underlying).
    /// @param kind 0 = PERP (strike and expiry 0), 1 = CALL, 2 = PUT (strike > 0, future expiry).
    /// @return id The new instrument's id.
    function registerInstrument(uint8 kind, bytes32 underlying, uint256 strike, uint64 expiry)
        external
        returns (uint32 id);

    /// @notice Replaces the attestation signer set and quorum and increments `configVersion`,
    /// which kills every signature of the previous set.
    /// @dev Warning: effective at once, no delay: the owner is trusted as much as the quorum
    /// (use a multisig behind a timelock). `renounceOwnership` is disabled
    /// (`RenounceOwnershipDisabled`) so that a compromised signer set can always be rotated.
    function setSigners(address[] calldata signers, uint8 quorum) external;

    /// @notice Sets the staleness limits and liquidation parameters.
    /// @param maxAge seconds after the epoch timestamp before the vault enters safe mode;
    /// 0 < maxAge <= 1 day (`InvalidRiskConfig`).
    /// @param futureTolerance seconds an epoch timestamp may be ahead of the block;
    /// <= min(5 minutes, maxAge) (`InvalidFutureTolerance`).
    /// @param liquidationPenalty WAD fraction of the account's MM kept from the account (<= 1e18).
    /// @param insuranceShare WAD fraction of the penalty paid to the insurance fund (<= 1e18).
    function setRiskConfig(uint64 maxAge, uint64 futureTolerance, uint256 liquidationPenalty, uint256 insuranceShare)
        external;

    /// @notice Sets the `PriceReferences` contract that checks every later epoch's token prices
    /// against their reference feeds (docs/protocol.md §4, "Reference prices"); 0 removes it.
    /// It must be bound to this vault (`PriceReferencesForAnotherVault`).
    /// @dev Warning: the contract is called (not delegatecalled) by postEpoch: it cannot touch
    /// the vault's state, but a reverting one refuses every epoch until it is removed.
    function setPriceReferences(address references) external;

    /// @notice Moves `amount6` settlement tokens out of the insurance fund to `to`.
    /// @dev Warning: the only owner action that moves tokens out of the vault. It can only
    /// take what the insurance fund holds, never user balances.
    function withdrawInsurance(uint256 amount6, address to) external;

    /* SUBACCOUNTS */

    /// @notice Creates a subaccount owned by msg.sender (ids run from 1; an owner may hold any
    /// number). Emits `SubaccountTransferred(account, 0, msg.sender)`.
    /// @return account The new subaccount's id.
    function createSubaccount() external returns (uint256 account);

    /// @notice Gives subaccount `account` to `to` (owner or operator; `ZeroAddress` for 0).
    /// Changes no balance, cash, position, bound or nonce: the subaccount's leaf stays valid.
    /// @dev Warning: the new owner's operators act for it at once, and the old owner's no longer.
    function transferSubaccount(uint256 account, address to) external;

    /// @notice Lets `operator` act for every subaccount of msg.sender (trade, withdraw to the
    /// owner, deposit, transfer), as ERC-721's `setApprovalForAll`.
    function setOperator(address operator, bool approved) external;

    /// @notice Pays msg.sender its liquidation payouts (`payoutOf`) in settlement tokens,
    /// rounded down to token units (the dust stays claimable); `NothingToClaim` when that is 0.
    function claimPayout() external;

    /* COLLATERAL AND CASH */

    /// @notice Deposits `amount` of registered collateral `token` from msg.sender into
    /// `account` (owner or operator only: a stranger's deposit would move its bounds). Works
    /// in safe mode.
    function deposit(uint256 account, address token, uint256 amount) external;

    /// @notice Withdraws `amount` of `token` from `account` to its OWNER (msg.sender: owner or
    /// operator), if the IM surplus lower bound stays >= 0.
    /// @param mp `account`'s ACCOUNT leaf in the current root; ignored (may be empty) for an
    /// account with no open positions, which is valued on chain.
    /// @dev An account with positions whose bounds changed after the current epoch's snapshot
    /// at the previous epoch's prices reverts `BoundsFromPreviousPrices` until the next epoch
    /// (as `withdrawCash` and `executeQuote`; docs/protocol.md §5, `boundChange`).
    function withdraw(uint256 account, address token, uint256 amount, MarginProof calldata mp) external;

    /// @notice Deposits `amount6` settlement tokens from msg.sender as `account`'s cash
    /// (`cash += amount6 * 1e12` for 6 decimals; owner or operator only): a repayment if cash
    /// is negative. Works in safe mode.
    function depositCash(uint256 account, uint256 amount6) external;

    /// @notice Withdraws `amount6` settlement tokens from `account`'s cash to its OWNER
    /// (msg.sender: owner or operator); cash may go negative if the IM surplus lower bound
    /// stays >= 0.
    function withdrawCash(uint256 account, uint256 amount6, MarginProof calldata mp) external;

    /// @notice Adds `amount6` settlement tokens to the insurance fund (anyone).
    function depositInsurance(uint256 amount6) external;

    /* TRADING */

    /// @notice Fills quote `q` whole between `q.makerAccount` and `takerAccount`. Each leg gives
    /// the maker `+size` and the taker `-size`; the buyer pays `mulWadUp(|size|, price)` cash, the
    /// seller receives the same amount. Both accounts must keep IM surplus lower bound >= 0:
    /// an account with no open positions before the fill is bounded by its on-chain value
    /// before (cash + haircut collateral) plus the legs' lower bounds, and needs no leaf (its
    /// proof may be empty); any other account by its leaf after the fill (docs/protocol.md §5).
    /// @param signature the ECDSA signature of `q.maker` over `hashQuote(q)`; `q.maker` must be
    /// the owner or an operator of `q.makerAccount` now, msg.sender of `takerAccount`
    /// (`NotAuthorized`), and `q.taker` (0: anyone) is msg.sender. Two subaccounts of one owner
    /// may trade; a subaccount with itself may not (`SelfTrade`).
    /// @param legProofs one INSTRUMENT leaf per leg, same order.
    /// @dev Warning: the maker trusts the taker only within the quote's legs; the taker trusts
    /// nothing of the maker beyond the margin check.
    function executeQuote(
        Quote calldata q,
        bytes calldata signature,
        InstrumentProof[] calldata legProofs,
        MarginProof calldata makerProof,
        uint256 takerAccount,
        MarginProof calldata takerProof
    ) external;

    /// @notice Marks msg.sender's quote nonce used, so no quote with it can be filled (nonces
    /// belong to the signing address, across all the subaccounts it signs for).
    function cancelQuote(uint256 nonce) external;

    /// @notice Applies pending perp funding to every position of `account` (anyone).
    function applyFunding(uint256 account) external;

    /// @notice Settles an expired option position of `account` into cash at its payoff,
    /// once the settlement price is posted (anyone; works in safe mode).
    function settle(uint256 account, uint32 instrument) external;

    /* ATTESTATION */

    /// @notice Posts a new epoch signed by at least `quorum` current signers, sorted by
    /// signer address ascending. A settlement needs `expiry <= min(header.timestamp,
    /// block.timestamp)`, so a settled option can no longer trade. With a `PriceReferences`
    /// contract set (`setPriceReferences`), each token with a reference feed must be priced
    /// within its maxDeviation of the feed's answer (`PriceDeviatesFromReference`); a feed that
    /// reverts, answers <= 0 or is stale is skipped with `PriceReferenceSkipped`
    /// (docs/protocol.md §4, "Reference prices").
    /// @dev Warning: anyone may post; the signatures are what is trusted. A reference bounds
    /// only the token spot prices, within maxDeviation, and only while its feed answers.
    function postEpoch(Epoch calldata header, bytes[] calldata signatures) external;

    /* LIQUIDATION */

    /// @notice Transfers subaccount `account` (MM surplus upper bound < 0; never one with no
    /// position and cash >= 0, `NothingToLiquidate`) whole to msg.sender, in constant gas:
    /// positions and collateral stay where they are (docs/protocol.md §6). The subaccount's
    /// cash pays `pay` to the previous owner (a claimable payout, `claimPayout`) and `fee` to
    /// the insurance fund, and receives `covered` from the fund; msg.sender deposits `deposit6`
    /// settlement tokens into it, enough that its IM surplus lower bound is >= 0 after
    /// (`LiquidationDepositTooSmall`; `checkLiquidation` returns the minimum).
    /// Not by its owner or an operator of the owner (`SelfLiquidation`); not while its bounds
    /// carry previous-epoch prices (`BoundsFromPreviousPrices`: wait one epoch).
    /// @param target `account`'s ACCOUNT leaf in the current root (it stays valid after).
    /// @param deposit6 settlement tokens (token units) msg.sender brings into the subaccount.
    /// @param maxCashOut the most net cash (pay + fee - covered, WAD) msg.sender accepts the
    /// subaccount to pay.
    function liquidate(uint256 account, MarginProof calldata target, uint256 deposit6, int256 maxCashOut) external;

    /* VIEWS */

    /// @notice Whether and at what price `account` can be liquidated now (pending funding
    /// counted as `liquidate` does: 1 wei of rounding per open position). Reverts like `liquidate` would on a bad leaf
    /// (`LeafAccountMismatch`, `StaleStateNonce`, `InvalidAccountProof`) or in safe mode.
    /// `liquidatable` is false for an account with no position and cash >= 0.
    /// @return liquidatable Whether `liquidate(account, ...)` would pass the health check now.
    /// @return mmSurplusHi Upper bound of the account's MM surplus now (WAD USD, rounded up).
    /// @return pay Cash the liquidator would pay the account (WAD USD).
    /// @return fee Cash the liquidator would pay the insurance fund (WAD USD).
    /// @return covered Cash the insurance fund would pay the liquidator for bad debt (WAD USD).
    /// @return uncovered Bad debt the fund could not cover, that `badDebt` would grow by (WAD USD).
    /// @return minDeposit6 The least `deposit6` that leaves the subaccount at IM (settlement
    /// token units, rounded up): the liquidator's capital need, IM deficit + pay + fee - covered.
    function checkLiquidation(uint256 account, MarginProof calldata mp)
        external
        view
        returns (
            bool liquidatable,
            int256 mmSurplusHi,
            uint256 pay,
            uint256 fee,
            uint256 covered,
            uint256 uncovered,
            uint256 minDeposit6
        );

    /// @notice Lower bound of `account`'s IM surplus now (on-chain valuation if it has no
    /// open positions). Reverts in safe mode or on an invalid leaf.
    /// @return The IM surplus lower bound (WAD USD, rounded down); the IM gate needs it >= 0.
    function imSurplusLo(uint256 account, MarginProof calldata mp) external view returns (int256);

    /// @notice Upper bound of `account`'s MM surplus now, from its leaf.
    /// @return The MM surplus upper bound (WAD USD, rounded up); < 0 makes it liquidatable.
    function mmSurplusHi(uint256 account, MarginProof calldata mp) external view returns (int256);

    /// @notice True when no epoch is younger than `maxAge` (or none was ever posted).
    /// @return Whether the vault is in safe mode.
    function isSafeMode() external view returns (bool);

    /// @notice Everything the vault records for `account` (as `accountStates`, unpacked).
    /// @return cash Signed WAD USD.
    /// @return stateNonce Its leaves must carry it (a liquidation no longer bumps it: the
    /// subaccount keeps its portfolio).
    /// @return cumLo Running lower bound (WAD USD, docs/protocol.md §5).
    /// @return cumHi Running upper bound (WAD USD).
    /// @return instruments Ids of the open positions (unordered).
    /// @return sizes Signed WAD size of each, same order.
    /// @return fundingIndexAtLastUpdate Each position's funding index at its last update.
    /// @return collateralBalances Balance of each registered token (its own decimals), in
    /// registration order.
    function accountState(uint256 account)
        external
        view
        returns (
            int256 cash,
            uint64 stateNonce,
            int256 cumLo,
            int256 cumHi,
            uint32[] memory instruments,
            int256[] memory sizes,
            int256[] memory fundingIndexAtLastUpdate,
            uint256[] memory collateralBalances
        );

    /// @notice `accountState` of several accounts in one call (the keeper's snapshot read).
    /// @return One `AccountState` per account, same order.
    function accountStates(uint256[] calldata accounts) external view returns (AccountState[] memory);

    /// @notice `account`'s position in `instrument` (zeros if none).
    /// @return size Signed WAD units.
    /// @return fundingIndex Perps: the cumulative funding index it was last charged at.
    function position(uint256 account, uint32 instrument) external view returns (int256 size, int256 fundingIndex);

    /// @notice `account`'s deposited balance of collateral `token`.
    /// @return The balance in the token's own decimals.
    function collateralBalance(uint256 account, address token) external view returns (uint256);

    /// @notice A registered instrument; reverts `UnknownInstrument` for an unknown id.
    /// @return The instrument's kind, underlying, strike and expiry.
    function instrument(uint32 id) external view returns (Instrument memory);

    /// @notice Number of registered instruments: ids run from 1 to this.
    /// @return The highest instrument id.
    function instrumentCount() external view returns (uint32);

    /// @notice Registered collateral tokens, in registration order.
    /// @return The token addresses.
    function tokens() external view returns (address[] memory);

    /// @notice Registration record and the current epoch's price of `token` (price 0 if the
    /// current epoch does not price it).
    /// @return registered Whether `token` is registered collateral.
    /// @return index Its position in `tokens()` and in an epoch's token table.
    /// @return decimals Its decimals, read once at registration.
    /// @return price The current epoch's price and shocks of it.
    function tokenInfo(address token)
        external
        view
        returns (bool registered, uint8 index, uint8 decimals, TokenPrice memory price);

    /// @notice The `PriceReferences` contract that checks each posted epoch's token prices (0: none).
    function priceReferences() external view returns (address);

    /// @notice The current epoch's token table, in registration order (stored packed, one slot
    /// per token; docs/protocol.md §4).
    /// @return One `TokenPrice` per token the current epoch prices.
    function tokenPrices() external view returns (TokenPrice[] memory);

    /// @notice Header fields of the last posted epoch (zeros before the first).
    /// @return epoch Its number.
    /// @return snapshotBlock The block its leaves describe.
    /// @return timestamp Its timestamp; safe mode starts `maxAge` after it.
    /// @return root Its Merkle root, against which every leaf is proven.
    function currentEpoch() external view returns (uint64 epoch, uint64 snapshotBlock, uint64 timestamp, bytes32 root);

    /// @notice Latest attested cumulative funding index of a perp.
    /// @return The index (WAD USD per unit).
    function cumFunding(uint32 instrument) external view returns (int256);

    /// @notice Settlement price of an option (0 and false until posted).
    /// @return price WAD USD per unit of underlying.
    /// @return isSet Whether it was posted (it is final then).
    function settlementPrice(uint32 instrument) external view returns (uint256 price, bool isSet);

    /// @notice EIP-712 domain separator of this vault (name "PortfolioMarginVault", version "1").
    /// @return The separator for the current chain id.
    function domainSeparator() external view returns (bytes32);

    /// @notice EIP-712 digest of an epoch header (what signers sign).
    /// @return The digest.
    function hashEpoch(Epoch calldata header) external view returns (bytes32);

    /// @notice EIP-712 digest of a quote (what the maker signs).
    /// @return The digest.
    function hashQuote(Quote calldata q) external view returns (bytes32);

    /// @notice The insurance fund.
    /// @return WAD USD, backed by settlement tokens the vault holds.
    function insuranceFund() external view returns (uint256);

    /// @notice Cumulative shortfall of liquidations that the insurance fund could not cover.
    /// @return WAD USD.
    function badDebt() external view returns (uint256);

    /// @notice Signatures an epoch needs.
    /// @return The quorum.
    function quorum() external view returns (uint8);

    /// @notice Version of the signer set, part of every signed epoch; `setSigners` bumps it.
    /// @return The current version.
    function configVersion() external view returns (uint64);

    /// @notice Whether `signer` is in the current signer set.
    /// @return True for a current signer.
    function isSigner(address signer) external view returns (bool);

    /// @notice The current signer set.
    /// @return The signer addresses, in the order they were set.
    function signers() external view returns (address[] memory);

    /// @notice Whether `maker`'s quote nonce was filled or cancelled.
    /// @return True if no quote with this nonce can be filled.
    function nonceUsed(address maker, uint256 nonce) external view returns (bool);

    /// @notice The token of `cash` (USDC-like), fixed at deployment.
    /// @return Its address.
    function settlementToken() external view returns (address);

    /// @notice Seconds after an epoch's timestamp before the vault enters safe mode.
    /// @return The limit in seconds.
    function maxAge() external view returns (uint64);

    /// @notice Seconds an epoch timestamp may be ahead of the block.
    /// @return The tolerance in seconds.
    function futureTolerance() external view returns (uint64);

    /// @notice Fraction of a liquidated account's MM kept from it.
    /// @return WAD fraction.
    function liquidationPenalty() external view returns (uint256);

    /// @notice Fraction of the liquidation penalty paid to the insurance fund.
    /// @return WAD fraction.
    function insuranceShare() external view returns (uint256);

    /// @notice Owner of subaccount `account`; reverts `UnknownSubaccount` for an unknown id.
    /// @return The owner's address.
    function ownerOf(uint256 account) external view returns (address);

    /// @notice Whether `operator` may act for every subaccount of `owner`.
    /// @return True if approved.
    function isOperator(address owner, address operator) external view returns (bool);

    /// @notice Number of subaccounts created: ids run from 1 to this.
    /// @return The highest subaccount id.
    function subaccountCount() external view returns (uint256);

    /// @notice Liquidation payouts `owner` can claim (`claimPayout`).
    /// @return WAD USD.
    function payoutOf(address owner) external view returns (uint256);

    /// @notice `account`'s state chain word (docs/protocol.md §9): the high 24 bytes are a
    /// hash chain over every change of its cash, positions and collateral, the low 8 bytes the
    /// number of changes so far (its state sequence number). 0 for an account never changed.
    /// `StateLens.proveStateAt` proves the state at an older sequence number against it.
    function stateChain(uint256 account) external view returns (bytes32);

    /// @notice Block and epoch of `account`'s last bound change, and the epoch (if it is the
    /// current one) in which its leaf-based withdrawals and trades revert
    /// `BoundsFromPreviousPrices`: set when a change priced by an older epoch was mined after
    /// the current epoch's snapshot (docs/protocol.md §5).
    /// @return lastBlock Block of the last change of `cumLo`/`cumHi`.
    /// @return lastEpoch The epoch current at that change (whose prices it used).
    /// @return taintedEpoch The epoch whose leaf misses a change priced by an older one.
    function boundChange(uint256 account)
        external
        view
        returns (uint64 lastBlock, uint64 lastEpoch, uint64 taintedEpoch);
}
