"""Who signs an epoch: keys in this process, or separate signer processes over HTTP.

Two implementations of :class:`EpochSigner`, both returning the signatures sorted by signer
address ascending (what ``postEpoch`` requires, docs/protocol.md §4):

- :class:`LocalSigner`: this process holds the quorum's keys (``PM_SIGNER_KEYS`` or
  keystores). Simple; one machine compromised = the quorum compromised.
- :class:`RemoteSigners`: an aggregator that sends the header to every signer service
  (``keeper signer --port P``, one per key, ideally one per machine and operator), checks
  that each returned signature recovers to a current vault signer, and keeps those.

A signer service (:class:`SignerService`) does not trust the keeper that calls it. Before
signing it checks, in this order:

1. the caller: the request body is signed by one of the keeper addresses it was started
   with (``allowed_keepers``), and its ``timestamp`` is within ``max_request_age_seconds``
   of the service's clock (:func:`request_signature`);
2. the header against its own rules (:class:`SignerPolicy`): the domain is the vault and
   chain it was started for, the timestamp is close to its own clock, and it never signs
   two different roots for one epoch number, nor an epoch number below one it already
   signed (its record survives restarts when ``state_path`` is set);
3. the header's content (``checker``, :class:`keeper.epoch_check.EpochRecomputer` in
   ``keeper signer``): the epoch is recomputed from the service's OWN node at
   ``snapshotBlock`` and the market snapshot sent with the header; the root, token table,
   funding updates and settlements must equal the header's.

What the service still takes on trust is the market snapshot itself (prices, vols,
returns): a keeper that lies about the market consistently in the snapshot and the header
gets a signature (docs/security.md §14 #1).

Wire format (JSON): ``POST /sign`` with ``{"chainId", "verifyingContract", "header",
"market", "timestamp"}`` (``header`` as :meth:`Epoch.to_json`, ``market`` the
``MarketState.to_json()`` text the root was computed from, ``timestamp`` the request time
in unix seconds) and the header ``X-PM-Keeper-Signature`` (:func:`request_signature` of the
exact body bytes). Answer ``{"signer", "signature"}`` (hex) or ``{"error"}`` with status
401 (caller not authenticated) / 403 (refused) / 400 (malformed). ``GET /health`` gives the
signer's address.
"""

from __future__ import annotations

import abc
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from keeper.eip712 import Domain, Epoch, epoch_digest, epoch_typed_data, recover_signer
from keeper.errors import (
    KeeperError,
    SignerError,
    SignerRefusedError,
    UnauthenticatedError,
)

__all__ = [
    "AUTH_HEADER",
    "EpochCheck",
    "EpochSigner",
    "LocalSigner",
    "RemoteSigners",
    "SignerPolicy",
    "SignerService",
    "request_signature",
    "request_signer",
]

log = logging.getLogger("keeper.signers")


#: HTTP header carrying the keeper's signature of the request body.
AUTH_HEADER = "X-PM-Keeper-Signature"

#: ``check(header, market_json)``: raises :class:`SignerRefusedError` unless ``header`` is
#: what the service itself computes from its own chain view and ``market_json``.
EpochCheck = Callable[[Epoch, "str | None"], None]


def request_signature(body: bytes, key: str | bytes) -> str:
    """The keeper's signature of a request: EIP-191 ``personal_sign`` (eth-account
    ``encode_defunct``) of ``keccak256(body)``, hex with ``0x``."""
    msg = encode_defunct(primitive=keccak(body))
    return "0x" + bytes(Account.sign_message(msg, key).signature).hex()


def request_signer(body: bytes, signature: str) -> str:
    """The checksummed address that produced ``signature`` over ``body``."""
    msg = encode_defunct(primitive=keccak(body))
    return to_checksum_address(Account.recover_message(msg, signature=signature))


# --------------------------------------------------------------------------- interface


class EpochSigner(abc.ABC):
    """Produces the quorum's signatures of an epoch header."""

    @abc.abstractmethod
    def sign(
        self,
        header: Epoch,
        domain: Domain,
        *,
        quorum: int,
        signers: Sequence[str],
        market: str | None = None,
    ) -> list[bytes]:
        """Signatures (65 bytes each) by at least ``quorum`` of ``signers`` (the vault's
        current set), sorted by signer address ascending. ``market``: the
        ``MarketState.to_json()`` text the header was computed from (remote services
        recompute the epoch from it). Raises :class:`SignerError`."""


def _sorted(pairs: Mapping[str, bytes]) -> list[bytes]:
    return [pairs[a] for a in sorted(pairs, key=lambda a: int(a, 16))]


class LocalSigner(EpochSigner):
    """Keys held in this process (see the module docstring).

    Only keys whose address is in the vault's current signer set sign; with
    ``max_signatures`` set, the lowest addresses are used up to that many (the quorum is
    enough; more costs ~6k gas per extra signature).
    """

    def __init__(self, keys: Sequence[str | bytes], *, max_signatures: int | None = None) -> None:
        self.accounts: tuple[LocalAccount, ...] = tuple(Account.from_key(k) for k in keys)
        self.max_signatures = max_signatures

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(a.address for a in self.accounts)

    def sign(
        self,
        header: Epoch,
        domain: Domain,
        *,
        quorum: int,
        signers: Sequence[str],
        market: str | None = None,
    ) -> list[bytes]:
        allowed = {to_checksum_address(s) for s in signers}
        usable = sorted(
            (a for a in self.accounts if a.address in allowed), key=lambda a: int(a.address, 16)
        )
        if self.max_signatures is not None:
            usable = usable[: max(self.max_signatures, quorum)]
        if len(usable) < max(quorum, 1):
            raise SignerError(
                f"local keys give {len(usable)} signature(s) of the vault's signer set, "
                f"quorum is {quorum} (keys: {', '.join(self.addresses)})"
            )
        msg = epoch_typed_data(header, domain)
        return _sorted({a.address: bytes(a.sign_message(msg).signature) for a in usable})


class RemoteSigners(EpochSigner):
    """Aggregator over signer services at ``urls`` (queried in parallel).

    ``auth_key``: the keeper's sender key; every request body is signed with it
    (:func:`request_signature`) and the services accept only their configured keeper
    addresses. ``timeout``: seconds per service (a service recomputes the epoch before it
    answers: allow for that).
    """

    def __init__(
        self,
        urls: Sequence[str],
        *,
        auth_key: str | bytes | None = None,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not urls:
            raise SignerError("no signer URL")
        self.urls = tuple(u.rstrip("/") for u in urls)
        self.auth_key = auth_key
        self.timeout = timeout
        self._clock = clock
        self.last_errors: dict[str, str] = {}

    def _ask(self, url: str, body: bytes) -> tuple[str, bytes]:
        headers = {"Content-Type": "application/json"}
        if self.auth_key is not None:
            headers[AUTH_HEADER] = request_signature(body, self.auth_key)
        r = requests.post(f"{url}/sign", data=body, headers=headers, timeout=self.timeout)
        data = r.json()
        if r.status_code != 200:
            raise SignerRefusedError(f"{url}: {data.get('error', r.status_code)}")
        return to_checksum_address(data["signer"]), bytes.fromhex(data["signature"][2:])

    def sign(
        self,
        header: Epoch,
        domain: Domain,
        *,
        quorum: int,
        signers: Sequence[str],
        market: str | None = None,
    ) -> list[bytes]:
        allowed = {to_checksum_address(s) for s in signers}
        body = json.dumps(
            {
                "chainId": domain.chain_id,
                "verifyingContract": domain.verifying_contract,
                "header": header.to_json(),
                "market": market,
                "timestamp": int(self._clock()),
            }
        ).encode()
        digest = epoch_digest(header, domain)
        got: dict[str, bytes] = {}
        errors: dict[str, str] = {}
        with ThreadPoolExecutor(max_workers=min(8, len(self.urls))) as pool:
            futures = {url: pool.submit(self._ask, url, body) for url in self.urls}
            for url, fut in futures.items():
                try:
                    claimed, sig = fut.result()
                except Exception as exc:  # one signer down must not stop the others
                    errors[url] = str(exc)
                    continue
                # Never trust the claimed address: recover it from the signature.
                signer = to_checksum_address(recover_signer(digest, sig))
                if signer != claimed:
                    errors[url] = f"signature recovers to {signer}, service claims {claimed}"
                elif signer not in allowed:
                    errors[url] = f"{signer} is not in the vault's signer set"
                elif signer in got:
                    errors[url] = f"{signer} answered twice"
                else:
                    got[signer] = sig
        self.last_errors = errors
        for url, err in errors.items():
            log.warning("signer failed", extra={"url": url, "error": err})
        if len(got) < max(quorum, 1):
            raise SignerError(
                f"{len(got)} valid signature(s), quorum {quorum}; failures: "
                + "; ".join(f"{u}: {e}" for u, e in errors.items())
            )
        return _sorted(got)


# --------------------------------------------------------------------------- service


@dataclass(frozen=True)
class SignerPolicy:
    """What a signer service accepts. ``chain_id`` / ``vault`` None = any, and
    ``allowed_keepers`` empty = any caller: tests only (``keeper signer`` requires all
    three).

    ``max_future_seconds`` / ``max_past_seconds``: the header's timestamp must be within
    ``[now - max_past, now + max_future]`` of the service's own clock, so that a
    compromised keeper cannot get a signature for a far-future epoch (which would stay
    valid and block every honest epoch with a lower timestamp) or replay an old market.
    ``allowed_keepers``: addresses whose signature of the request body is accepted;
    ``max_request_age_seconds``: the request's own ``timestamp`` must be this close to the
    service's clock (a captured request replays only within that window, and then only
    gets the signature its keeper already asked for).
    """

    chain_id: int | None = None
    vault: str | None = None
    max_future_seconds: int = 60
    max_past_seconds: int = 600
    allowed_keepers: tuple[str, ...] = ()
    max_request_age_seconds: int = 60


class SignerService:
    """``keeper signer``: signs headers that pass :class:`SignerPolicy` (module docstring).

    Parameters
    ----------
    key : str
        The signer's private key (from the environment or a keystore, never a file).
    state_path : Path, optional
        JSON file of ``{epoch: root}`` already signed, so that the no-two-roots rule
        survives a restart.
    checker : EpochCheck, optional
        Recomputes the epoch (:class:`keeper.epoch_check.EpochRecomputer`); None = the
        header's content is not checked (tests of the other rules only).
    """

    def __init__(
        self,
        key: str | bytes,
        policy: SignerPolicy = SignerPolicy(),
        *,
        checker: EpochCheck | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        state_path: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.account: LocalAccount = Account.from_key(key)
        self.policy = policy
        self.checker = checker
        self._allowed = frozenset(to_checksum_address(a) for a in policy.allowed_keepers)
        self.host = host
        self._port = port
        self.state_path = state_path
        self._clock = clock
        self._lock = threading.Lock()
        self.signed: dict[int, str] = {}
        if state_path is not None and state_path.exists():
            self.signed = {int(k): v for k, v in json.loads(state_path.read_text()).items()}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        return str(self.account.address)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1]) if self._server else self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def check(self, header: Epoch, domain: Domain) -> None:
        """Raise :class:`SignerRefusedError` unless the policy allows signing ``header``."""
        p = self.policy
        if p.chain_id is not None and domain.chain_id != p.chain_id:
            raise SignerRefusedError(f"chain {domain.chain_id} is not {p.chain_id}")
        if p.vault is not None and domain.verifying_contract != to_checksum_address(p.vault):
            raise SignerRefusedError(f"vault {domain.verifying_contract} is not {p.vault}")
        now = self._clock()
        if header.timestamp > now + p.max_future_seconds:
            raise SignerRefusedError(
                f"timestamp {header.timestamp} is {header.timestamp - now:.0f} s in the future"
            )
        if header.timestamp < now - p.max_past_seconds:
            raise SignerRefusedError(
                f"timestamp {header.timestamp} is {now - header.timestamp:.0f} s old"
            )
        root = "0x" + header.root.hex()
        if header.epoch in self.signed:
            if self.signed[header.epoch] != root:
                raise SignerRefusedError(
                    f"epoch {header.epoch} already signed with root {self.signed[header.epoch]}"
                )
        elif self.signed and header.epoch < max(self.signed):
            raise SignerRefusedError(
                f"epoch {header.epoch} is below the last signed epoch {max(self.signed)}"
            )

    def authenticate(self, body: bytes, signature: str | None, timestamp: int) -> str | None:
        """The allowed keeper that signed ``body``; raises :class:`SignerRefusedError`
        (HTTP 401) otherwise. Returns None when no keeper is configured (tests only)."""
        if not self._allowed:
            return None
        if not signature:
            raise UnauthenticatedError(f"no {AUTH_HEADER} header")
        try:
            caller = request_signer(body, signature)
        except Exception as exc:  # malformed signature bytes
            raise UnauthenticatedError(f"bad request signature: {exc}") from exc
        if caller not in self._allowed:
            raise UnauthenticatedError(f"caller {caller} is not an allowed keeper")
        age = self._clock() - timestamp
        if abs(age) > self.policy.max_request_age_seconds:
            raise UnauthenticatedError(
                f"request timestamp {timestamp} is {age:.0f} s from this service's clock"
            )
        return caller

    def sign(self, header: Epoch, domain: Domain, market: str | None = None) -> bytes:
        """Check the rules, recompute the epoch (``checker``), record, then sign (the
        record is written before the signature leaves)."""
        with self._lock:
            self.check(header, domain)
            if self.checker is not None:
                self.checker(header, market)
            root = "0x" + header.root.hex()
            if self.signed.get(header.epoch) != root:
                self.signed[header.epoch] = root
                if self.state_path is not None:
                    tmp = self.state_path.with_suffix(".tmp")
                    tmp.write_text(json.dumps({str(k): v for k, v in self.signed.items()}))
                    tmp.replace(self.state_path)
            return bytes(self.account.sign_message(epoch_typed_data(header, domain)).signature)

    # ---------------------------------------------------------------- HTTP

    def start(self) -> int:
        service = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "pm-signer"

            def _send(self, status: HTTPStatus, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                if self.path.rstrip("/") == "/health":
                    self._send(HTTPStatus.OK, {"status": "ok", "signer": service.address})
                else:
                    self._send(HTTPStatus.NOT_FOUND, {"error": "no route"})

            def do_POST(self) -> None:  # noqa: N802
                if self.path.rstrip("/") != "/sign":
                    self._send(HTTPStatus.NOT_FOUND, {"error": "no route"})
                    return
                try:
                    n = int(self.headers.get("Content-Length", "0"))
                    if n > 20_000_000:  # a market snapshot with its returns history
                        raise ValueError("body too large")
                    raw = self.rfile.read(n)
                    body = json.loads(raw)
                    domain = Domain(int(body["chainId"]), str(body["verifyingContract"]))
                    header = Epoch.from_json(body["header"])
                    market = body.get("market")
                    if market is not None and not isinstance(market, str):
                        raise TypeError("market must be the MarketState JSON text")
                    timestamp = int(body.get("timestamp", 0))
                except (ValueError, KeyError, TypeError, KeeperError) as exc:
                    self._send(HTTPStatus.BAD_REQUEST, {"error": f"malformed request: {exc}"})
                    return
                try:
                    service.authenticate(raw, self.headers.get(AUTH_HEADER), timestamp)
                except SignerRefusedError as exc:
                    log.warning("caller refused", extra={"why": str(exc)})
                    self._send(HTTPStatus.UNAUTHORIZED, {"error": str(exc)})
                    return
                try:
                    sig = service.sign(header, domain, market)
                except SignerRefusedError as exc:
                    log.warning("signing refused", extra={"epoch": header.epoch, "why": str(exc)})
                    self._send(HTTPStatus.FORBIDDEN, {"error": str(exc)})
                    return
                log.info("signed", extra={"epoch": header.epoch, "root": "0x" + header.root.hex()})
                self._send(
                    HTTPStatus.OK, {"signer": service.address, "signature": "0x" + sig.hex()}
                )

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                log.debug("http %s", format % args)

        self._server = ThreadingHTTPServer((self.host, self._port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="signer", daemon=True
        )
        self._thread.start()
        log.info("signer listening", extra={"url": self.url, "signer": self.address})
        return self.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
