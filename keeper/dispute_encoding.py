"""The commitments the account and instrument disputes check their inputs against
(docs/margin-method.md §10, docs/protocol.md §11).

An account's equity, IM and MM are recomputed on chain (``contracts/libraries/AccountDispute.sol``)
from one risk vector per position and the epoch's aggregation parameters. The dispute trusts
them only if they hash to what the keeper committed: an INSTRUMENT leaf will carry its
vector's hash, the epoch header the parameters' hash. Here are those two structs as the
contracts declare them (``AccountMargin.sol:RiskVector``, ``AggregationParams``), built from
the engine's :class:`~risk_engine.risk_arrays.RiskArrays`, and their hashes,
``keccak256(abi.encode(struct))``, equal to ``AccountDispute.hashVector`` and
``hashParams`` (tests/vectors/accounts/ carries both sides' figures); and the market hash
over the published snapshot, the engine's market inputs (``IDispute.sol:MarketInputs``) and
the vector parameters (``InstrumentVector.sol:VectorParams``) that ``disputeInstrument``
recomputes a vector from.

:func:`vector_hashes` is the epoch's path: every row's ``hash_vector`` at once, encoded
column-wise and hashed compiled (``keeper/wad_words.py``, ``keeper/merkle.py``); the
per-row :class:`RiskVectorWad` stays as its readable reference, and the tests hold both to
the same bytes.

Every engine float becomes the nearest WAD integer (``risk_engine.units.to_signed_wad_nearest``,
the conversion of ``scripts/gen_account_vectors.py``): the chain compares what it computes
from these numbers with a tolerance, so they have no side to round against.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from keeper._abi_checks import check_int, check_uint
from keeper.errors import AttestationError
from keeper.merkle import U8Array, keccak256_rows
from keeper.wad_words import NEAREST_INT256_LIMIT, nearest_wad_words
from risk_engine._typing import BoolArray, Int64Array
from risk_engine.errors import InvalidInputError
from risk_engine.market import MarketSnapshot
from risk_engine.params import RiskParams
from risk_engine.risk_arrays import RiskArrays
from risk_engine.units import Wad, to_signed_wad_nearest

__all__ = [
    "AGGREGATION_PARAMS_ABI",
    "MARKET_INPUTS_ABI",
    "RANGE_PARAMS_ABI",
    "RISK_VECTOR_ABI",
    "VECTOR_PARAMS_ABI",
    "AggregationParamsWad",
    "MarketInputsWad",
    "RangeParamsWad",
    "RiskVectorWad",
    "VectorParamsWad",
    "hash_params",
    "hash_vector",
    "PublishedInputs",
    "inputs_hash_from",
    "market_hash_from",
    "market_hash_of",
    "published_inputs",
    "returns_hash",
    "symbol_word",
    "vector_hashes",
]

#: ``AccountMargin.sol:RiskVector`` as an ABI tuple (field order of the struct).
RISK_VECTOR_ABI = (
    "(uint256,uint256,int256[],uint256[],int256,int256,int256,uint256,uint256,uint256)"
)
#: ``AccountMargin.sol:AggregationParams`` as an ABI tuple.
AGGREGATION_PARAMS_ABI = (
    "(uint256,uint256[],uint256,uint256[],uint256[],uint256[],uint256[],uint256[])"
)


def _wads(values: Iterable[float], field: str) -> tuple[Wad, ...]:
    return tuple(
        to_signed_wad_nearest(float(v), field=f"{field}[{i}]") for i, v in enumerate(values)
    )


def _check_uints(name: str, values: Sequence[int]) -> None:
    for i, v in enumerate(values):
        check_uint(f"{name}[{i}]", v)


@dataclass(frozen=True)
class RiskVectorWad:
    """One instrument's risk vector (``RiskVector``), USD WAD per unit long, positive = loss.

    Attributes
    ----------
    underlying : index of the instrument's underlying (and correlation-tree leaf)
    mark : USD per unit
    loss : the template scenario losses, length ``n_scenarios``
    pad : the continuous-range pad of every scan column, length ``n_scan_columns``; empty
        for a linear instrument (it has none)
    basis_up, basis_down : loss per unit of the basis shocks
    delta : delta notional per unit (USD)
    minimum_charge : per unit of ``|size|``, confidence add-on included
    short_option_charge : per unit short (0 unless an option)
    notional : spot of the underlying, the gross notional of one unit

    Raises
    ------
    AttestationError
        A field does not fit its Solidity type (``uint256``/``int256``).
    """

    underlying: int
    mark: int
    loss: tuple[int, ...]
    pad: tuple[int, ...]
    basis_up: int
    basis_down: int
    delta: int
    minimum_charge: int
    short_option_charge: int
    notional: int

    def __post_init__(self) -> None:
        for name in ("underlying", "mark", "minimum_charge", "short_option_charge", "notional"):
            check_uint(name, getattr(self, name))
        for name in ("basis_up", "basis_down", "delta"):
            check_int(name, getattr(self, name))
        for i, v in enumerate(self.loss):
            check_int(f"loss[{i}]", v)
        _check_uints("pad", self.pad)

    @classmethod
    def from_arrays(cls, arrays: RiskArrays, i: int) -> RiskVectorWad:
        """Instrument ``i``'s row of ``arrays``: the first ``n_scenarios`` loss columns, the
        pads of the ``n_scan_columns`` scan columns (none without ``has_pad``), the basis,
        delta and per-unit charges, each the nearest WAD integer."""
        n_t, n_scan = arrays.n_scenarios, arrays.n_scan_columns
        row = arrays.loss[i]
        return cls(
            underlying=int(arrays.underlying_index[i]),
            mark=to_signed_wad_nearest(float(arrays.mark[i]), field="mark"),
            loss=_wads(row[:n_t], "loss"),
            pad=_wads(arrays.pad[i, :n_scan], "pad") if bool(arrays.has_pad[i]) else (),
            basis_up=to_signed_wad_nearest(float(row[arrays.col_basis_up]), field="basis_up"),
            basis_down=to_signed_wad_nearest(float(row[arrays.col_basis_down]), field="basis_down"),
            delta=to_signed_wad_nearest(float(row[arrays.col_delta]), field="delta"),
            minimum_charge=to_signed_wad_nearest(
                float(arrays.minimum_charge[i]), field="minimum_charge"
            ),
            short_option_charge=to_signed_wad_nearest(
                float(arrays.short_option_charge[i]), field="short_option_charge"
            ),
            notional=to_signed_wad_nearest(float(arrays.unit_notional[i]), field="notional"),
        )

    def to_abi(self) -> tuple[Any, ...]:
        """The Solidity ``RiskVector`` struct tuple."""
        return (
            self.underlying,
            self.mark,
            list(self.loss),
            list(self.pad),
            self.basis_up,
            self.basis_down,
            self.delta,
            self.minimum_charge,
            self.short_option_charge,
            self.notional,
        )

    def encode(self) -> bytes:
        """``abi.encode(v)``: one dynamic tuple (an offset word, then the tuple)."""
        return abi_encode([RISK_VECTOR_ABI], [self.to_abi()])


@dataclass(frozen=True)
class AggregationParamsWad:
    """The epoch's aggregation weights and add-on parameters (``AggregationParams``), WAD.

    Attributes
    ----------
    n_mm : the first ``n_mm`` scan columns are the MM grid
    im_copies : scan column ``n_scenarios + j`` repeats scenario ``im_copies[j]``
        (the engine's ``mm_boundary``)
    mm_scale : MM = scan(MM) + ``mm_scale`` x add-ons
    concentration_rate, concentration_threshold : per underlying (threshold in USD)
    node_weight : per correlation-tree node, the underlyings first, then the merges
    left, right : node ``n_underlyings + j`` merges nodes ``left[j]`` and ``right[j]``

    Raises
    ------
    AttestationError
        A field is negative or does not fit ``uint256``.
    """

    n_mm: int
    im_copies: tuple[int, ...]
    mm_scale: int
    concentration_rate: tuple[int, ...]
    concentration_threshold: tuple[int, ...]
    node_weight: tuple[int, ...]
    left: tuple[int, ...]
    right: tuple[int, ...]

    def __post_init__(self) -> None:
        check_uint("n_mm", self.n_mm)
        check_uint("mm_scale", self.mm_scale)
        for name in (
            "im_copies",
            "concentration_rate",
            "concentration_threshold",
            "node_weight",
            "left",
            "right",
        ):
            _check_uints(name, getattr(self, name))

    @classmethod
    def from_arrays(cls, arrays: RiskArrays) -> AggregationParamsWad:
        """The parameters ``arrays`` aggregate with (``compute_margin``'s), weights and
        rates the nearest WAD integers, the tree's merges children first."""
        tree = arrays.tree
        n_u = arrays.n_underlyings
        merges = [c for c in tree.children[n_u:] if c is not None]
        if len(merges) != len(tree.members) - n_u:
            raise AttestationError("correlation tree: a merge node without children")
        return cls(
            n_mm=int(arrays.scenarios.n_mm),
            im_copies=tuple(int(k) for k in arrays.scenarios.mm_boundary.tolist()),
            mm_scale=to_signed_wad_nearest(float(arrays.mm_scale), field="mm_scale"),
            concentration_rate=_wads(arrays.concentration_rate, "concentration_rate"),
            concentration_threshold=_wads(
                arrays.concentration_threshold, "concentration_threshold"
            ),
            node_weight=_wads(tree.weight, "node_weight"),
            left=tuple(int(a) for a, _ in merges),
            right=tuple(int(b) for _, b in merges),
        )

    def to_abi(self) -> tuple[Any, ...]:
        """The Solidity ``AggregationParams`` struct tuple."""
        return (
            self.n_mm,
            list(self.im_copies),
            self.mm_scale,
            list(self.concentration_rate),
            list(self.concentration_threshold),
            list(self.node_weight),
            list(self.left),
            list(self.right),
        )

    def encode(self) -> bytes:
        """``abi.encode(p)``: one dynamic tuple (an offset word, then the tuple)."""
        return abi_encode([AGGREGATION_PARAMS_ABI], [self.to_abi()])


def hash_vector(v: RiskVectorWad) -> bytes:
    """``AccountDispute.hashVector``: ``keccak256(abi.encode(v))``, 32 bytes (the commitment an
    INSTRUMENT leaf will carry)."""
    return keccak(v.encode())


def hash_params(p: AggregationParamsWad) -> bytes:
    """``AccountDispute.hashParams``: ``keccak256(abi.encode(p))``, 32 bytes (the commitment the
    epoch header will carry)."""
    return keccak(p.encode())


# ------------------------------------------------------------------ every row at once

#: Word positions in ``abi.encode(RiskVector)`` (one word is 32 bytes): the offset to the
#: tuple, the tuple's 10 head slots (``loss`` and ``pad`` by their offset from the tuple's
#: start), then ``loss`` (its length, its elements) and ``pad`` (its length, its elements).
_W_UNDERLYING, _W_MARK, _W_LOSS_AT, _W_PAD_AT = 1, 2, 3, 4
_W_BASIS_UP, _W_BASIS_DOWN, _W_DELTA = 5, 6, 7
_W_MINIMUM, _W_SHORT_OPTION, _W_NOTIONAL = 8, 9, 10
_W_LOSS_LEN = 11
_HEAD_SLOTS = 10


def _word(value: int) -> U8Array:
    return np.frombuffer(value.to_bytes(32, "big"), dtype=np.uint8)


def _vector_rows(arrays: RiskArrays, rows: Int64Array, n_pad: int) -> tuple[U8Array, BoolArray]:
    """``RiskVectorWad.from_arrays(arrays, i).encode()`` of every ``i`` in ``rows``, all with
    ``n_pad`` pads (0 or ``n_scan_columns``): shape ``(len(rows), 32 * (13 + n_scenarios +
    n_pad))``; and the rows ``RiskVectorWad`` refuses (a float not finite or past int256, a
    negative unsigned field), whose encodings are not to be used."""
    n_t = arrays.n_scenarios
    k = len(rows)
    n_words = _W_LOSS_LEN + 1 + n_t + 1 + n_pad
    loss = arrays.loss[rows]
    x = np.zeros((k, n_words), dtype=np.float64)
    x[:, _W_MARK] = arrays.mark[rows]
    x[:, _W_BASIS_UP] = loss[:, arrays.col_basis_up]
    x[:, _W_BASIS_DOWN] = loss[:, arrays.col_basis_down]
    x[:, _W_DELTA] = loss[:, arrays.col_delta]
    x[:, _W_MINIMUM] = arrays.minimum_charge[rows]
    x[:, _W_SHORT_OPTION] = arrays.short_option_charge[rows]
    x[:, _W_NOTIONAL] = arrays.unit_notional[rows]
    x[:, _W_LOSS_LEN + 1 : _W_LOSS_LEN + 1 + n_t] = loss[:, :n_t]
    x[:, n_words - n_pad :] = arrays.pad[rows, :n_pad]

    fits = np.abs(x) < NEAREST_INT256_LIMIT  # False for NaN and +-inf too
    refused: BoolArray = ~np.all(fits, axis=1)
    words = nearest_wad_words(np.where(fits, x, 0.0)).reshape(k, n_words, 32)
    unsigned = [_W_MARK, _W_MINIMUM, _W_SHORT_OPTION, _W_NOTIONAL, *range(n_words - n_pad, n_words)]
    refused |= np.any(words[:, unsigned, 0] >= 0x80, axis=1)  # the sign bit: below zero
    underlying = np.asarray(arrays.underlying_index[rows], dtype=np.int64)
    refused |= underlying < 0

    words[:, 0] = _word(32)
    words[:, _W_UNDERLYING] = 0
    words[:, _W_UNDERLYING, 24:] = underlying.astype(">u8").view(np.uint8).reshape(k, 8)
    words[:, _W_LOSS_AT] = _word(32 * _HEAD_SLOTS)
    words[:, _W_PAD_AT] = _word(32 * (_HEAD_SLOTS + 1 + n_t))
    words[:, _W_LOSS_LEN] = _word(n_t)
    words[:, _W_LOSS_LEN + 1 + n_t] = _word(n_pad)
    return words.reshape(k, 32 * n_words), refused


def _refuse_row(arrays: RiskArrays, i: int) -> None:
    """Raise what ``RiskVectorWad.from_arrays(arrays, i)`` raises, the row named."""
    try:
        RiskVectorWad.from_arrays(arrays, i)
    except InvalidInputError as exc:
        raise InvalidInputError(f"risk_vector[{i}].{exc.field}", exc.reason) from exc
    except AttestationError as exc:
        raise AttestationError(f"risk_vector[{i}]: {exc}") from exc
    raise AttestationError(f"risk_vector[{i}] refused column-wise but not by RiskVectorWad")


def vector_hashes(arrays: RiskArrays, n: int) -> tuple[bytes, ...]:
    """``hash_vector(RiskVectorWad.from_arrays(arrays, i))`` of the first ``n`` rows of
    ``arrays``, computed for all rows at once (docs/protocol.md §11).

    Rows without a pad (``has_pad`` false) and rows with ``n_scan_columns`` pads have two
    encoding lengths: each group is one uint8 matrix of ``abi.encode(RiskVector)`` rows, its
    floats the nearest WAD words (``keeper/wad_words.py:nearest_wad_words``, the same
    integers as ``to_signed_wad_nearest``), hashed by ``keeper/merkle.py:keccak256_rows``.

    Raises
    ------
    InvalidInputError
        A float of a row is not finite or its nearest WAD does not fit int256.
    AttestationError
        ``n`` is outside ``[0, n_instruments]``, or an unsigned field of a row is negative.
        Either error is the reference's for the first row it refuses, the row named
        (``risk_vector[i]``).
    """
    if not 0 <= n <= arrays.n_instruments:
        raise AttestationError(f"{n} risk vectors asked of {arrays.n_instruments} rows")
    has_pad = np.asarray(arrays.has_pad[:n], dtype=np.bool_)
    refused = np.zeros(n, dtype=np.bool_)
    groups = []
    for padded, n_pad in ((False, 0), (True, arrays.n_scan_columns)):
        rows = np.flatnonzero(has_pad == padded)
        if rows.size:
            encodings, bad = _vector_rows(arrays, rows, n_pad)
            refused[rows] = bad
            groups.append((rows, encodings))
    if refused.any():
        _refuse_row(arrays, int(np.argmax(refused)))
    out = np.empty((n, 32), dtype=np.uint8)
    for rows, encodings in groups:
        out[rows] = keccak256_rows(encodings)
    blob = out.tobytes()
    return tuple(blob[32 * i : 32 * i + 32] for i in range(n))


# ------------------------------------------------------------------ the market's commitment

#: ``IDispute.sol:MarketInputs`` as an ABI tuple: the rate, the underlyings
#: ``(symbol, spot, perpMark, confidence, range, scanRangeFloor, returnsHash)`` and the smile
#: slices ``(underlying, expiry, forward, atmVol, skew, curvature)``.
MARKET_INPUTS_ABI = (
    "(int256,(bytes32,uint256,uint256,uint256,uint256,uint256,bytes32)[],"
    "(uint256,uint64,uint256,uint256,int256,int256)[])"
)
#: ``ScanRange.sol:RangeParams`` as an ABI tuple.
RANGE_PARAMS_ABI = "(uint256,uint256,uint256,uint256,uint256,uint256)"
#: ``InstrumentVector.sol:VectorParams`` as an ABI tuple: the scenario grid, vol shock, basis
#: shock, pad layout and per-unit charge parameters.
VECTOR_PARAMS_ABI = (
    "((int256[],int8[],uint256[],uint256,uint256,uint64),"
    "(uint256,uint256,uint256,uint256,uint256,uint256,uint256),"
    "(uint256,uint256),"
    "(uint256[],uint256[],uint256,uint256,uint256[]),"
    "(uint256,uint256,uint256,uint256))"
)


def symbol_word(symbol: str) -> bytes:
    """An underlying's symbol as the vault's ``Instrument.underlying``: ASCII, right-padded
    to 32 bytes."""
    raw = symbol.encode()
    if len(raw) > 32:
        raise AttestationError(f"underlying symbol longer than 32 bytes: {symbol!r}")
    return raw.ljust(32, b"\0")


def returns_hash(returns: Sequence[int]) -> bytes:
    """``keccak256(abi.encodePacked(int256[] returns))`` (``MarketUnderlying.returnsHash``)."""
    return keccak(b"".join(r.to_bytes(32, "big", signed=True) for r in returns))


@dataclass(frozen=True)
class MarketInputsWad:
    """The engine's market inputs of an epoch (``MarketInputs``), WAD: what an INSTRUMENT
    vector is recomputed from on chain (docs/protocol.md §11). ``underlyings`` rows are
    ``(symbol word, spot, perp mark, confidence, scan range, scan range floor, returns
    hash)`` in the engine's order (the vectors' ``underlying`` index), ``slices`` rows
    ``(underlying index, expiry, forward, ATM vol, skew, curvature)`` in the surface's order;
    ``returns`` (not in the struct: its hash is) each underlying's daily log returns, oldest
    first, nearest WAD: what ``disputeRange`` recomputes a range from."""

    rate: int
    underlyings: tuple[tuple[bytes, int, int, int, int, int, bytes], ...]
    slices: tuple[tuple[int, int, int, int, int, int], ...]
    returns: tuple[tuple[int, ...], ...] = field(default=(), compare=False, repr=False)

    @classmethod
    def from_engine(cls, market: MarketSnapshot, arrays: RiskArrays) -> MarketInputsWad:
        """The engine snapshot ``market`` (after the keeper's caps) with the scan ranges the
        engine derived from its returns (``arrays.scenarios.ranges``) and their floors
        (``arrays.params``), nearest WAD."""
        index = {u: k for k, u in enumerate(market.underlyings)}
        conf = market.confidence_or_full()
        ranges = arrays.scenarios.ranges
        s = market.surface
        returns = tuple(
            tuple(to_signed_wad_nearest(float(x), field="returns") for x in column.tolist())
            for column in np.asarray(market.returns, dtype=np.float64).T
        )
        return cls(
            rate=to_signed_wad_nearest(float(market.rate), field="rate"),
            underlyings=tuple(
                (
                    symbol_word(u),
                    to_signed_wad_nearest(float(market.spot[k]), field=f"spot[{u}]"),
                    to_signed_wad_nearest(float(market.perp_mark[k]), field=f"perp_mark[{u}]"),
                    to_signed_wad_nearest(float(conf[k]), field=f"confidence[{u}]"),
                    to_signed_wad_nearest(float(ranges[k]), field=f"range[{u}]"),
                    to_signed_wad_nearest(
                        arrays.params.underlying(u).scan_range, field=f"scan_range[{u}]"
                    ),
                    returns_hash(returns[k]),
                )
                for k, u in enumerate(market.underlyings)
            ),
            slices=tuple(
                (
                    index[s.underlying[j]],
                    int(s.expiry[j]),
                    to_signed_wad_nearest(float(s.forward[j]), field="forward"),
                    to_signed_wad_nearest(float(s.atm_vol[j]), field="atm_vol"),
                    to_signed_wad_nearest(float(s.skew[j]), field="skew"),
                    to_signed_wad_nearest(float(s.curvature[j]), field="curvature"),
                )
                for j in range(s.n_slices)
            ),
            returns=returns,
        )

    def to_abi(self) -> tuple[Any, ...]:
        return (self.rate, [list(u) for u in self.underlyings], [list(s) for s in self.slices])

    def encode(self) -> bytes:
        """``abi.encode(market)``."""
        return abi_encode([MARKET_INPUTS_ABI], [self.to_abi()])


@dataclass(frozen=True)
class VectorParamsWad:
    """The parameters every instrument vector follows from (``VectorParams``), WAD, with the
    grid's ``range`` 0: the contract sets it from the instrument's underlying."""

    fraction: tuple[int, ...]
    vol_state: tuple[int, ...]
    cover: tuple[int, ...]
    max_down_move: int
    horizon_seconds: int
    vol: tuple[int, int, int, int, int, int, int]
    basis: tuple[int, int]
    interval_lo: tuple[int, ...]
    interval_hi: tuple[int, ...]
    n_mm: int
    n_mm_intervals: int
    im_copies: tuple[int, ...]
    charges: tuple[int, int, int, int]

    @classmethod
    def from_arrays(cls, arrays: RiskArrays) -> VectorParamsWad:
        """The scenario template of ``arrays`` and the parameters it was built with."""
        p, scen = arrays.params, arrays.scenarios
        v = p.vol

        def w(x: float, field: str) -> int:
            return to_signed_wad_nearest(float(x), field=field)

        return cls(
            fraction=tuple(w(x, "fraction") for x in scen.fraction.tolist()),
            vol_state=tuple(int(x) for x in scen.vol_state.tolist()),
            cover=tuple(w(x, "cover") for x in scen.cover.tolist()),
            max_down_move=w(p.scan.max_down_move, "max_down_move"),
            horizon_seconds=round(p.horizon_days * 86_400),
            vol=(
                w(v.up, "vol.up"),
                w(v.down, "vol.down"),
                w(v.reference_days, "vol.reference_days"),
                w(v.exponent_short, "vol.exponent_short"),
                w(v.exponent_long, "vol.exponent_long"),
                w(v.min_tenor_days, "vol.min_tenor_days"),
                w(v.floor, "vol.floor"),
            ),
            basis=(w(p.basis.perp, "basis.perp"), w(p.basis.forward_per_sqrt_year, "basis.fwd")),
            interval_lo=tuple(int(k) for k in scen.interval_lo.tolist()),
            interval_hi=tuple(int(k) for k in scen.interval_hi.tolist()),
            n_mm=int(scen.n_mm),
            n_mm_intervals=int(scen.n_mm_intervals),
            im_copies=tuple(int(k) for k in scen.mm_boundary.tolist()),
            charges=(
                w(p.minimum.rate, "minimum.rate"),
                w(p.addons.short_option_minimum, "short_option_minimum"),
                w(p.confidence.threshold, "confidence.threshold"),
                w(p.confidence.rate, "confidence.rate"),
            ),
        )

    def to_abi(self) -> tuple[Any, ...]:
        return (
            (
                list(self.fraction),
                list(self.vol_state),
                list(self.cover),
                0,
                self.max_down_move,
                self.horizon_seconds,
            ),
            self.vol,
            self.basis,
            (
                list(self.interval_lo),
                list(self.interval_hi),
                self.n_mm,
                self.n_mm_intervals,
                list(self.im_copies),
            ),
            self.charges,
        )

    def encode(self) -> bytes:
        """``abi.encode(params)``."""
        return abi_encode([VECTOR_PARAMS_ABI], [self.to_abi()])


@dataclass(frozen=True)
class RangeParamsWad:
    """What a scan range follows from besides the returns (``RangeParams``), WAD: the EWMA
    decay, the range's vol multiple, the horizon in days, the anti-procyclicality buffer and
    stress ratio, the cap."""

    ewma_lambda: int
    range_vol_multiple: int
    horizon_days: int
    apc_buffer: int
    apc_stress_ratio: int
    max_range: int

    @classmethod
    def from_params(cls, p: RiskParams) -> RangeParamsWad:
        def w(x: float, name: str) -> int:
            return to_signed_wad_nearest(float(x), field=name)

        return cls(
            w(p.correlation.ewma_lambda, "ewma_lambda"),
            w(p.scan.range_vol_multiple, "range_vol_multiple"),
            w(p.horizon_days, "horizon_days"),
            w(p.apc.buffer, "apc.buffer"),
            w(p.apc.stress_ratio, "apc.stress_ratio"),
            w(p.scan.max_range, "max_range"),
        )

    def to_abi(self) -> tuple[int, ...]:
        return (
            self.ewma_lambda,
            self.range_vol_multiple,
            self.horizon_days,
            self.apc_buffer,
            self.apc_stress_ratio,
            self.max_range,
        )

    def encode(self) -> bytes:
        """``abi.encode(rangeParams)``."""
        return abi_encode([RANGE_PARAMS_ABI], [self.to_abi()])


def market_hash_of(
    snapshot_hash: bytes,
    market: MarketInputsWad,
    params: VectorParamsWad,
    range_params: RangeParamsWad,
) -> bytes:
    """The header's market commitment: ``keccak256(abi.encode(snapshotHash,
    keccak256(abi.encode(market)), keccak256(abi.encode(params)),
    keccak256(abi.encode(rangeParams))))``, as ``InstrumentDisputeModule`` recomputes it
    (``snapshot_hash``: the published JSON's)."""
    return market_hash_from(
        snapshot_hash,
        keccak(market.encode()),
        keccak(params.encode()),
        keccak(range_params.encode()),
    )


def market_hash_from(
    snapshot_hash: bytes, market_hash: bytes, vector_params_hash: bytes, range_params_hash: bytes
) -> bytes:
    """:func:`market_hash_of` from the four hashes it is over."""
    return keccak(snapshot_hash + market_hash + vector_params_hash + range_params_hash)


def inputs_hash_from(params_hash: bytes, token_vectors_hash: bytes, market_hash: bytes) -> bytes:
    """The header's ``inputsHash``: ``keccak256(abi.encode(paramsHash, tokenVectorsHash,
    marketHash))``, ``tokenVectorsHash`` the hash of the token rows' hashes in order."""
    return keccak(params_hash + token_vectors_hash + market_hash)


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def published_inputs(
    snapshot_hash: bytes,
    market: MarketInputsWad,
    vector_params: VectorParamsWad,
    range_params: RangeParamsWad,
    params: AggregationParamsWad,
    token_vector_hashes: Sequence[bytes],
) -> dict[str, Any]:
    """What the keeper publishes per epoch (``GET /epoch/<n>/inputs``) so that anyone can pass
    the committed inputs to ``disputeInstrument`` and ``disputeRange`` without recomputing
    them: each struct ``abi.encode``d (hex), the returns as decimal strings, the hashes."""
    return {
        "snapshotHash": _hex(snapshot_hash),
        "market": _hex(market.encode()),
        "returns": [[str(r) for r in column] for column in market.returns],
        "vectorParams": _hex(vector_params.encode()),
        "rangeParams": _hex(range_params.encode()),
        "aggregationParams": _hex(params.encode()),
        "tokenVectorHashes": [_hex(h) for h in token_vector_hashes],
    }


@dataclass(frozen=True)
class PublishedInputs:
    """:func:`published_inputs` read back: the ABI tuples a claim passes, and the hashes."""

    snapshot_hash: bytes
    market: tuple[Any, ...]
    returns: tuple[tuple[int, ...], ...]
    vector_params: tuple[Any, ...]
    vector_params_hash: bytes
    range_params: tuple[Any, ...]
    range_params_hash: bytes
    aggregation_params: tuple[Any, ...]
    params_hash: bytes
    token_vectors_hash: bytes

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> PublishedInputs:
        from eth_abi.abi import decode as abi_decode

        def raw(name: str) -> bytes:
            text = str(d[name])
            return bytes.fromhex(text.removeprefix("0x"))

        try:
            market, vparams, rparams, agg = (
                raw("market"),
                raw("vectorParams"),
                raw("rangeParams"),
                raw("aggregationParams"),
            )
            return cls(
                snapshot_hash=raw("snapshotHash"),
                market=abi_decode([MARKET_INPUTS_ABI], market)[0],
                returns=tuple(tuple(int(r) for r in col) for col in d["returns"]),
                vector_params=abi_decode([VECTOR_PARAMS_ABI], vparams)[0],
                vector_params_hash=keccak(vparams),
                range_params=abi_decode([RANGE_PARAMS_ABI], rparams)[0],
                range_params_hash=keccak(rparams),
                aggregation_params=abi_decode([AGGREGATION_PARAMS_ABI], agg)[0],
                params_hash=keccak(agg),
                token_vectors_hash=keccak(
                    b"".join(
                        bytes.fromhex(str(h).removeprefix("0x")) for h in d["tokenVectorHashes"]
                    )
                ),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise AttestationError(f"published dispute inputs unreadable: {exc}") from exc

    def market_hash(self) -> bytes:
        return market_hash_from(
            self.snapshot_hash,
            keccak(abi_encode([MARKET_INPUTS_ABI], [self.market])),
            self.vector_params_hash,
            self.range_params_hash,
        )

    def inputs_hash(self) -> bytes:
        """The header's ``inputsHash`` these inputs give."""
        return inputs_hash_from(self.params_hash, self.token_vectors_hash, self.market_hash())
