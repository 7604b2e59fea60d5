// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

import {
    IMarginVault,
    AccountState,
    Epoch,
    Instrument,
    InstrumentKind,
    InstrumentProof,
    LiquidationQuote,
    MarginProof,
    Quote,
    TokenPrice
} from "./interfaces/IMarginVault.sol";
import {FixedPoint, WAD} from "./libraries/FixedPoint.sol";
import {MarginBounds} from "./libraries/MarginBounds.sol";
import {TypedDataHashing} from "./libraries/TypedDataHashing.sol";
import {LiquidationLib} from "./libraries/LiquidationLib.sol";
import {Errors} from "./interfaces/Errors.sol";
import {Events} from "./interfaces/Events.sol";
import {VaultBase} from "./modules/VaultBase.sol";
import {ExchangeModule} from "./modules/ExchangeModule.sol";
import {FinalityModule} from "./modules/FinalityModule.sol";
import {IPriceReferences} from "./interfaces/IPriceReferences.sol";

/// @title MarginVault
/// @notice The portfolio-margin core: state (in `VaultBase`) and entry points; the math lives
/// in `libraries/`. `postEpoch`, `executeQuote` and `liquidate` run in two modules that the
/// vault deploys itself and delegatecalls, to keep its code under the EIP-170 limit.
/// See `IMarginVault` for the natspec of every entry point and docs/protocol.md for the rules.
contract MarginVault is IMarginVault, VaultBase {
    using SafeERC20 for IERC20;

    uint256 internal constant DEFAULT_LIQUIDATION_PENALTY = 0.3e18; // of MM
    uint256 internal constant DEFAULT_INSURANCE_SHARE = 0.5e18; // of the penalty
    uint8 internal constant MAX_TOKEN_DECIMALS = 36;
    /// @dev Longer would let a stale price table drive the IM gate for days (docs/security.md,
    /// finding 4).
    uint64 internal constant MAX_MAX_AGE = 1 days;
    /// @dev A header timestamp ahead of the chain extends its own validity by as much
    /// (docs/security.md, finding 7).
    uint64 internal constant MAX_FUTURE_TOLERANCE = 5 minutes;

    /// @inheritdoc IMarginVault
    address public immutable settlementToken;
    /// @dev 10**(18 - settlement token decimals): settlement token units -> WAD cash.
    uint256 internal immutable CASH_SCALE;
    /// @notice Code of `postEpoch`.
    address public immutable epochModule;
    /// @notice Code of `executeQuote` and `liquidate`.
    address public immutable exchangeModule;
    /// @notice Code of `withdraw`, `withdrawCash` and of every function the vault does not
    /// declare (its fallback): the bond, the challenge window, queued withdrawals and fraud
    /// proofs (`IFinality`, docs/protocol.md §10).
    address public immutable finalityModule;

    /* CONSTRUCTOR */

    /// @dev The modules are deployed first and passed in (docs/security.md §6): created here,
    /// their code would sit inside the vault's initcode, past EIP-3860's 49,152 bytes.
    constructor(
        address owner_,
        address settlementToken_,
        uint64 maxAge_,
        uint64 futureTolerance_,
        address epochModule_,
        address exchangeModule_,
        address finalityModule_
    ) VaultBase(owner_) {
        if (settlementToken_ == address(0)) revert Errors.ZeroAddress();
        uint8 dec = IERC20Metadata(settlementToken_).decimals();
        if (dec > 18) revert Errors.InvalidToken(settlementToken_);
        settlementToken = settlementToken_;
        uint256 cashScale = 10 ** (18 - dec);
        CASH_SCALE = cashScale;
        // A delegatecall to an address without code succeeds and does nothing: refuse it. The
        // exchange module's constants must be this vault's.
        if (epochModule_.code.length == 0) revert Errors.InvalidModule(epochModule_);
        if (exchangeModule_.code.length == 0) revert Errors.InvalidModule(exchangeModule_);
        (address token, uint256 scale) = ExchangeModule(exchangeModule_).cashConfig();
        if (token != settlementToken_ || scale != cashScale) revert Errors.InvalidModule(exchangeModule_);
        if (finalityModule_.code.length == 0) revert Errors.InvalidModule(finalityModule_);
        (token, scale) = FinalityModule(finalityModule_).cashConfig();
        if (token != settlementToken_ || scale != cashScale) revert Errors.InvalidModule(finalityModule_);
        epochModule = epochModule_;
        exchangeModule = exchangeModule_;
        finalityModule = finalityModule_;
        _setRiskConfig(maxAge_, futureTolerance_, DEFAULT_LIQUIDATION_PENALTY, DEFAULT_INSURANCE_SHARE);
    }

    /* GOVERNANCE */

    /// @inheritdoc IMarginVault
    function registerToken(address token) external onlyOwner {
        if (token == address(0)) revert Errors.ZeroAddress();
        if (token == settlementToken) revert Errors.InvalidToken(token); // it is cash, not collateral
        if (_tokenConfig[token].registered) revert Errors.TokenAlreadyRegistered(token);
        if (_tokens.length >= MAX_TOKENS) revert Errors.TooManyTokens(MAX_TOKENS);
        uint8 dec = IERC20Metadata(token).decimals();
        if (dec > MAX_TOKEN_DECIMALS) revert Errors.InvalidToken(token);
        uint8 index = uint8(_tokens.length);
        _tokens.push(token);
        _tokenConfig[token] = TokenConfig({registered: true, index: index, decimals: dec});
        emit Events.TokenRegistered(token, index, dec);
    }

    /// @inheritdoc IMarginVault
    function registerInstrument(uint8 kind, bytes32 underlying, uint256 strike, uint64 expiry)
        external
        onlyOwner
        returns (uint32 id)
    {
        bool valid = kind == uint8(InstrumentKind.PERP)
            ? strike == 0 && expiry == 0
            : kind <= uint8(InstrumentKind.PUT) && strike > 0 && expiry > block.timestamp;
        if (!valid || underlying == bytes32(0)) revert Errors.InvalidInstrument(kind, strike, expiry);
        // A second id for the same contract would let long one / short the other net to zero
        // exposure and yet each leg carry IM. A perp's strike and expiry are 0: one per underlying.
        bytes32 key = keccak256(abi.encode(kind, underlying, strike, expiry));
        uint32 existing = _instrumentIdByKey[key];
        if (existing != 0) revert Errors.DuplicateInstrument(existing);
        id = ++_instrumentCount;
        _instrumentIdByKey[key] = id;
        _instruments[id] = Instrument(InstrumentKind(kind), underlying, strike, expiry);
        emit Events.InstrumentRegistered(id, InstrumentKind(kind), underlying, strike, expiry);
    }

    /// @inheritdoc IMarginVault
    function setSigners(address[] calldata newSigners, uint8 newQuorum) external onlyOwner {
        if (newSigners.length > MAX_SIGNERS) revert Errors.TooManySigners(newSigners.length, MAX_SIGNERS);
        if (newQuorum == 0 || newQuorum > newSigners.length) {
            revert Errors.InvalidQuorum(newQuorum, newSigners.length);
        }
        for (uint256 i; i < _signers.length; ++i) {
            _isSigner[_signers[i]] = false;
        }
        delete _signers;
        for (uint256 i; i < newSigners.length; ++i) {
            address s = newSigners[i];
            if (s == address(0) || _isSigner[s]) revert Errors.InvalidSignerSet(s);
            _isSigner[s] = true;
            _signers.push(s);
        }
        _quorum = newQuorum;
        // Signatures carry the config version: those of the replaced set can no longer count.
        emit Events.SignersSet(newSigners, newQuorum, ++_configVersion);
    }

    /// @inheritdoc IMarginVault
    function setRiskConfig(
        uint64 newMaxAge,
        uint64 newFutureTolerance,
        uint256 newLiquidationPenalty,
        uint256 newInsuranceShare
    ) external onlyOwner {
        _setRiskConfig(newMaxAge, newFutureTolerance, newLiquidationPenalty, newInsuranceShare);
    }

    /// @inheritdoc IMarginVault
    function setPriceReferences(address references) external onlyOwner {
        if (references != address(0)) {
            // Bound to another vault, it would check that vault's prices.
            address bound = IPriceReferences(references).vault();
            if (bound != address(this)) revert Errors.PriceReferencesForAnotherVault(references, bound);
        }
        _priceReferences = references;
        emit Events.PriceReferencesSet(references);
    }

    /// @dev Disabled: a vault without an owner could never rotate a compromised signer set.
    function renounceOwnership() public view override onlyOwner {
        revert Errors.RenounceOwnershipDisabled();
    }

    /// @inheritdoc IMarginVault
    function withdrawInsurance(uint256 amount6, address to) external onlyOwner nonReentrant {
        if (to == address(0)) revert Errors.ZeroAddress();
        uint256 amount = amount6 * CASH_SCALE;
        if (amount > _insuranceFund) revert Errors.InsufficientInsurance(_insuranceFund, amount);
        _insuranceFund -= amount;
        emit Events.InsuranceWithdrawn(to, amount6, _insuranceFund);
        IERC20(settlementToken).safeTransfer(to, amount6);
    }

    /* SUBACCOUNTS */

    /// @inheritdoc IMarginVault
    function createSubaccount() external returns (uint256 account) {
        account = ++_subaccountCount;
        _ownerOf[account] = msg.sender;
        emit Events.SubaccountTransferred(account, address(0), msg.sender);
    }

    /// @inheritdoc IMarginVault
    function transferSubaccount(uint256 account, address to) external {
        address from = _requireAuthorized(account, msg.sender);
        // An owner of 0 would read as "no such subaccount" and lock its balances for good.
        if (to == address(0)) revert Errors.ZeroAddress();
        _ownerOf[account] = to;
        emit Events.SubaccountTransferred(account, from, to);
    }

    /// @inheritdoc IMarginVault
    function setOperator(address operator, bool approved) external {
        _isOperator[msg.sender][operator] = approved;
        emit Events.OperatorSet(msg.sender, operator, approved);
    }

    /// @inheritdoc IMarginVault
    function claimPayout() external nonReentrant {
        uint256 amount6 = _payouts[msg.sender] / CASH_SCALE; // rounded down: the vault never pays dust it lacks
        if (amount6 == 0) revert Errors.NothingToClaim();
        _payouts[msg.sender] -= amount6 * CASH_SCALE;
        emit Events.PayoutClaimed(msg.sender, amount6);
        IERC20(settlementToken).safeTransfer(msg.sender, amount6);
    }

    /* COLLATERAL AND CASH */

    /// @inheritdoc IMarginVault
    function deposit(uint256 account, address token, uint256 amount) external nonReentrant {
        _requireAuthorized(account, msg.sender);
        TokenConfig memory c = _requireToken(token);
        if (amount == 0) revert Errors.ZeroAmount();
        Account storage a = _accounts[account];
        uint256 balance = a.collateral[token];
        a.collateral[token] = balance + amount;
        _commitCollateral(a, token, balance, balance + amount);
        emit Events.CollateralUpdated(account, token, balance + amount); // before the bounds' delta
        (int256 lo, int256 hi) = _collateralBounds(c, amount, true);
        _addBounds(account, a, lo, hi);
        emit Events.Deposited(account, token, amount);
        IERC20(token).safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IMarginVault
    function withdraw(uint256, address, uint256, MarginProof calldata) external nonReentrant {
        _delegate(finalityModule);
    }

    /// @inheritdoc IMarginVault
    function depositCash(uint256 account, uint256 amount6) external nonReentrant {
        _requireAuthorized(account, msg.sender);
        if (amount6 == 0) revert Errors.ZeroAmount();
        Account storage a = _accounts[account];
        int256 c = FixedPoint.toInt(amount6 * CASH_SCALE);
        a.cash += c;
        _commitCash(a, a.cash - c);
        _addBounds(account, a, MarginBounds.cashBound(c), MarginBounds.cashBound(c));
        emit Events.CashDeposited(account, amount6);
        IERC20(settlementToken).safeTransferFrom(msg.sender, address(this), amount6);
    }

    /// @inheritdoc IMarginVault
    function withdrawCash(uint256, uint256, MarginProof calldata) external nonReentrant {
        _delegate(finalityModule);
    }

    /// @inheritdoc IMarginVault
    function depositInsurance(uint256 amount6) external nonReentrant {
        if (amount6 == 0) revert Errors.ZeroAmount();
        _insuranceFund += amount6 * CASH_SCALE;
        emit Events.InsuranceDeposited(msg.sender, amount6, _insuranceFund);
        IERC20(settlementToken).safeTransferFrom(msg.sender, address(this), amount6);
    }

    /* TRADING */

    /// @inheritdoc IMarginVault
    function executeQuote(
        Quote calldata,
        bytes calldata,
        InstrumentProof[] calldata,
        MarginProof calldata,
        uint256,
        MarginProof calldata
    ) external nonReentrant {
        _delegate(exchangeModule);
    }

    /// @inheritdoc IMarginVault
    function cancelQuote(uint256 nonce) external {
        if (_nonceUsed[msg.sender][nonce]) revert Errors.NonceUsed(msg.sender, nonce);
        _nonceUsed[msg.sender][nonce] = true;
        emit Events.QuoteCancelled(msg.sender, nonce);
    }

    /// @inheritdoc IMarginVault
    function applyFunding(uint256 account) external nonReentrant {
        _requireOwner(account);
        Account storage a = _accounts[account];
        _applyAllFunding(account, a);
        _emitAccount(account, a);
    }

    /// @inheritdoc IMarginVault
    function settle(uint256 account, uint32 id) external nonReentrant {
        _requireOwner(account);
        Instrument storage ins = _requireInstrument(id);
        if (ins.kind == InstrumentKind.PERP) revert Errors.NotAnOption(id);
        InstrumentState storage st = _instrumentState[id];
        if (!st.settled) revert Errors.SettlementPriceNotSet(id);
        Account storage a = _accounts[account];
        int256 size = a.positions[id].size;
        if (size == 0) revert Errors.NoPosition(account, id);
        int256 cashDelta = FixedPoint.mulWadFloor(size, FixedPoint.toInt(_payoff(ins, id))); // against the account
        a.cash += cashDelta;
        _setSize(account, a, id, 0);
        // after the position's delta: the order of PositionUpdated and AccountUpdated
        if (cashDelta != 0) _commitCash(a, a.cash - cashDelta);
        // Price-free (the payoff is exact): not a bound change, so anyone's settle call
        // cannot hold back the account's withdrawals (docs/protocol.md §5).
        int256 lo0 = a.cumLo;
        a.cumLo = lo0 + MarginBounds.roundingLo();
        _commitBounds(a, lo0, a.cumHi);
        _emitAccount(account, a);
        emit Events.OptionSettled(account, id, size, st.settlementPrice, cashDelta);
    }

    /* ATTESTATION */

    /// @inheritdoc IMarginVault
    function postEpoch(Epoch calldata, bytes[] calldata) external nonReentrant {
        _delegate(epochModule);
    }

    /* LIQUIDATION */

    /// @inheritdoc IMarginVault
    function liquidate(uint256, MarginProof calldata, uint256, int256) external nonReentrant {
        _delegate(exchangeModule);
    }

    /* VIEWS */

    /// @inheritdoc IMarginVault
    function checkLiquidation(uint256 account, MarginProof calldata mp)
        external
        view
        returns (
            bool liquidatable,
            int256 mmSurplusHi_,
            uint256 pay,
            uint256 fee,
            uint256 covered,
            uint256 uncovered,
            uint256 minDeposit6
        )
    {
        _requireNotSafeMode();
        _requireOwner(account);
        Account storage a = _accounts[account];
        _requireAccountLeaf(account, a, mp);
        // As `liquidate`: 1 wei of funding rounding per open position, without applying it.
        int256 cumLoNow = a.cumLo - FixedPoint.toInt(a.instruments.length);
        LiquidationQuote memory r = LiquidationLib.quote(mp.leaf, cumLoNow, a.cumHi, _liquidationParams(CASH_SCALE));
        // As `liquidate`: no position and no debt is never liquidatable.
        if (a.instruments.length == 0 && a.cash >= 0) r.liquidatable = false;
        return (r.liquidatable, r.mmSurplusHi, r.pay, r.fee, r.covered, r.uncovered, r.minDeposit6);
    }

    /// @inheritdoc IMarginVault
    function imSurplusLo(uint256 account, MarginProof calldata mp) external view returns (int256) {
        _requireNotSafeMode();
        return _imSurplusLo(account, _accounts[account], mp);
    }

    /// @inheritdoc IMarginVault
    function mmSurplusHi(uint256 account, MarginProof calldata mp) external view returns (int256) {
        _requireNotSafeMode();
        Account storage a = _accounts[account];
        _requireAccountLeaf(account, a, mp);
        return MarginBounds.mmSurplusHi(mp.leaf, a.cumHi);
    }

    /// @inheritdoc IMarginVault
    function isSafeMode() external view returns (bool) {
        return _isSafeMode();
    }

    /// @inheritdoc IMarginVault
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
        )
    {
        AccountState memory s = _accountState(account);
        return (
            s.cash,
            s.stateNonce,
            s.cumLo,
            s.cumHi,
            s.instruments,
            s.sizes,
            s.fundingIndexAtLastUpdate,
            s.collateralBalances
        );
    }

    /// @inheritdoc IMarginVault
    function accountStates(uint256[] calldata accounts) external view returns (AccountState[] memory states) {
        states = new AccountState[](accounts.length);
        for (uint256 i; i < accounts.length; ++i) {
            states[i] = _accountState(accounts[i]);
        }
    }

    /// @inheritdoc IMarginVault
    function position(uint256 account, uint32 id) external view returns (int256 size, int256 fundingIndex) {
        Position storage p = _accounts[account].positions[id];
        return (p.size, p.fundingIndex);
    }

    /// @inheritdoc IMarginVault
    function collateralBalance(uint256 account, address token) external view returns (uint256) {
        return _accounts[account].collateral[token];
    }

    /// @inheritdoc IMarginVault
    function instrument(uint32 id) external view returns (Instrument memory) {
        return _requireInstrument(id);
    }

    /// @inheritdoc IMarginVault
    function tokens() external view returns (address[] memory) {
        return _tokens;
    }

    /// @inheritdoc IMarginVault
    function tokenInfo(address token)
        external
        view
        returns (bool registered, uint8 index, uint8 decimals, TokenPrice memory price)
    {
        TokenConfig memory c = _tokenConfig[token];
        if (c.registered && c.index < _prices.length) price = _tokenPrice(c.index);
        return (c.registered, c.index, c.decimals, price);
    }

    /// @inheritdoc IMarginVault
    function priceReferences() external view returns (address) {
        return _priceReferences;
    }

    /// @inheritdoc IMarginVault
    function tokenPrices() external view returns (TokenPrice[] memory table) {
        table = new TokenPrice[](_prices.length);
        for (uint256 i; i < table.length; ++i) {
            table[i] = _tokenPrice(i);
        }
    }

    /// @inheritdoc IMarginVault
    function currentEpoch() external view returns (uint64, uint64, uint64, bytes32) {
        return (_epoch, _snapshotBlock, _timestamp, _root);
    }

    /// @inheritdoc IMarginVault
    function cumFunding(uint32 id) external view returns (int256) {
        return _instrumentState[id].cumFunding;
    }

    /// @inheritdoc IMarginVault
    function settlementPrice(uint32 id) external view returns (uint256 price, bool isSet) {
        InstrumentState storage st = _instrumentState[id];
        return (st.settlementPrice, st.settled);
    }

    /// @inheritdoc IMarginVault
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @inheritdoc IMarginVault
    function hashEpoch(Epoch calldata header) external view returns (bytes32) {
        return _hashTypedDataV4(TypedDataHashing.hashEpoch(header));
    }

    /// @inheritdoc IMarginVault
    function hashQuote(Quote calldata q) external view returns (bytes32) {
        return _hashTypedDataV4(TypedDataHashing.hashQuote(q));
    }

    /// @inheritdoc IMarginVault
    function signers() external view returns (address[] memory) {
        return _signers;
    }

    /// @inheritdoc IMarginVault
    function isSigner(address signer) external view returns (bool) {
        return _isSigner[signer];
    }

    /// @inheritdoc IMarginVault
    function quorum() external view returns (uint8) {
        return _quorum;
    }

    /// @inheritdoc IMarginVault
    function configVersion() external view returns (uint64) {
        return _configVersion;
    }

    /// @inheritdoc IMarginVault
    function nonceUsed(address maker, uint256 nonce) external view returns (bool) {
        return _nonceUsed[maker][nonce];
    }

    /// @inheritdoc IMarginVault
    function instrumentCount() external view returns (uint32) {
        return _instrumentCount;
    }

    /// @inheritdoc IMarginVault
    function insuranceFund() external view returns (uint256) {
        return _insuranceFund;
    }

    /// @inheritdoc IMarginVault
    function badDebt() external view returns (uint256) {
        return _badDebt;
    }

    /// @inheritdoc IMarginVault
    function maxAge() external view returns (uint64) {
        return _maxAge;
    }

    /// @inheritdoc IMarginVault
    function futureTolerance() external view returns (uint64) {
        return _futureTolerance;
    }

    /// @inheritdoc IMarginVault
    function liquidationPenalty() external view returns (uint256) {
        return _liquidationPenalty;
    }

    /// @inheritdoc IMarginVault
    function insuranceShare() external view returns (uint256) {
        return _insuranceShare;
    }

    /// @inheritdoc IMarginVault
    function ownerOf(uint256 account) external view returns (address) {
        return _requireOwner(account);
    }

    /// @inheritdoc IMarginVault
    function isOperator(address owner_, address operator) external view returns (bool) {
        return _isOperator[owner_][operator];
    }

    /// @inheritdoc IMarginVault
    function subaccountCount() external view returns (uint256) {
        return _subaccountCount;
    }

    /// @inheritdoc IMarginVault
    function payoutOf(address owner_) external view returns (uint256) {
        return _payouts[owner_];
    }

    /// @inheritdoc IMarginVault
    function stateChain(uint256 account) external view returns (bytes32) {
        return _accounts[account].stateChain;
    }

    /// @inheritdoc IMarginVault
    function boundChange(uint256 account)
        external
        view
        returns (uint64 lastBlock, uint64 lastEpoch, uint64 taintedEpoch)
    {
        Account storage a = _accounts[account];
        return (a.boundBlock, a.boundEpoch, a.taintedEpoch);
    }

    /* INTERNAL: CONFIGURATION AND LOOKUPS */

    function _setRiskConfig(uint64 maxAge_, uint64 futureTolerance_, uint256 penalty, uint256 share) internal {
        if (maxAge_ == 0 || maxAge_ > MAX_MAX_AGE || penalty > WAD || share > WAD) {
            revert Errors.InvalidRiskConfig(maxAge_, penalty, share);
        }
        uint64 maxTolerance = maxAge_ < MAX_FUTURE_TOLERANCE ? maxAge_ : MAX_FUTURE_TOLERANCE;
        if (futureTolerance_ > maxTolerance) revert Errors.InvalidFutureTolerance(futureTolerance_, maxTolerance);
        _maxAge = maxAge_;
        _futureTolerance = futureTolerance_;
        _liquidationPenalty = penalty;
        _insuranceShare = share;
        emit Events.RiskConfigSet(maxAge_, futureTolerance_, penalty, share);
    }

    /// @dev Every selector the vault does not declare runs in the finality module (`IFinality`);
    /// one that module does not declare either reverts there, with no data.
    fallback() external {
        _delegate(finalityModule);
        assembly ("memory-safe") {
            returndatacopy(0, 0, returndatasize())
            return(0, returndatasize())
        }
    }

    /* INTERNAL */

    /// @dev Runs the same call in `module`'s code on this vault's storage, bubbling up its
    /// revert data (the module's custom errors are declared in this vault's ABI too).
    function _delegate(address module) internal {
        (bool ok, bytes memory ret) = module.delegatecall(msg.data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 32), mload(ret))
            }
        }
    }

    function _accountState(uint256 account) internal view returns (AccountState memory s) {
        Account storage a = _accounts[account];
        s.cash = a.cash;
        s.stateNonce = a.stateNonce;
        s.cumLo = a.cumLo;
        s.cumHi = a.cumHi;
        uint256 n = a.instruments.length;
        s.instruments = a.instruments;
        s.sizes = new int256[](n);
        s.fundingIndexAtLastUpdate = new int256[](n);
        for (uint256 i; i < n; ++i) {
            Position storage p = a.positions[s.instruments[i]];
            s.sizes[i] = p.size;
            s.fundingIndexAtLastUpdate[i] = p.fundingIndex;
        }
        s.collateralBalances = new uint256[](_tokens.length);
        for (uint256 i; i < _tokens.length; ++i) {
            s.collateralBalances[i] = a.collateral[_tokens[i]];
        }
    }
}
