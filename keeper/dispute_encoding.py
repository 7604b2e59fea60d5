"""The commitments an account dispute checks its inputs against (docs/margin-method.md §10).

An account's equity, IM and MM are recomputed on chain (``contracts/libraries/AccountDispute.sol``)
from one risk vector per position and the epoch's aggregation parameters. The dispute trusts
them only if they hash to what the keeper committed: an INSTRUMENT leaf will carry its
vector's hash, the epoch header the parameters' hash. Here are those two structs as the
contracts declare them (``AccountMargin.sol:RiskVector``, ``AggregationParams``), built from
the engine's :class:`~risk_engine.risk_arrays.RiskArrays`, and their hashes,
``keccak256(abi.encode(struct))``, equal to ``AccountDispute.hashVector`` and
``hashParams`` (tests/vectors/accounts/ carries both sides' figures).

Every engine float becomes the nearest WAD integer (``risk_engine.units.to_signed_wad_nearest``,
the conversion of ``scripts/gen_account_vectors.py``): the chain compares what it computes
from these numbers with a tolerance, so they have no side to round against.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from keeper._abi_checks import check_int, check_uint
from keeper.errors import AttestationError
from risk_engine.risk_arrays import RiskArrays
from risk_engine.units import Wad, to_signed_wad_nearest

__all__ = [
    "AGGREGATION_PARAMS_ABI",
    "RISK_VECTOR_ABI",
    "AggregationParamsWad",
    "RiskVectorWad",
    "hash_params",
    "hash_vector",
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
