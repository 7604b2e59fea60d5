"""Export the ABIs the running code needs into ``keeper/abi/<Contract>.json`` (``make abi``).

The keeper daemon and the ``pm`` commands load these files (:mod:`keeper.abi`) instead of
compiling: a daemon loads ABIs, it never compiles. The files are committed and shipped as
package data, so an installed keeper has them without ``contracts/`` or solc.

``tests/scripts/toolchain/test_abi.py`` compiles the contracts afresh and compares: a contract
change without ``make abi`` fails there, with the command to run in the message.

Run: ``python -m scripts.toolchain.abi`` (writes the files, prints what changed).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scripts.toolchain.compile import CompileResult, compile_contracts
from scripts.toolchain.paths import REPO_ROOT

__all__ = ["ABI_DIR", "EXPORTED", "abi_files", "main", "vault_abi_of", "write_abis"]

ABI_DIR = REPO_ROOT / "keeper" / "abi"
#: File stem -> qualified contract (``<source unit>:<name>``): qualified so that a
#: same-named contract in a dependency can never be exported by mistake.
EXPORTED: dict[str, str] = {
    # the vault: every call, event and custom error the keeper, the bot and `pm` use
    "MarginVault": "contracts/MarginVault.sol:MarginVault",
    # any collateral token: symbol, decimals, balanceOf, allowance, approve (the interface,
    # not the mock: a real deployment's tokens are not MockERC20s)
    "IERC20Metadata": (
        "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol:IERC20Metadata"
    ),
    # the mint of the test tokens: `pm faucet` on a mock deployment only
    "MockERC20": "contracts/mocks/MockERC20.sol:MockERC20",
    # proof of a subaccount's older state against the vault (docs/protocol.md §9): disputes
    "StateLens": "contracts/StateLens.sol:StateLens",
}


#: The functions the vault runs in its finality module through its fallback
#: (docs/protocol.md §10), in the dispute module through the finality module's and in the
#: instrument dispute module through the dispute module's (§11): callable on the vault's
#: address, so part of its ABI.
VAULT_FALLBACK_INTERFACES = (
    "contracts/interfaces/IFinality.sol:IFinality",
    "contracts/interfaces/IDispute.sol:IDispute",
    "contracts/interfaces/IDispute.sol:IInstrumentDispute",
)
#: The modules behind the fallbacks: the events and errors only their code emits.
VAULT_FALLBACK_MODULES = (
    "contracts/modules/FinalityModule.sol:FinalityModule",
    "contracts/modules/DisputeModule.sol:DisputeModule",
    "contracts/modules/InstrumentDisputeModule.sol:InstrumentDisputeModule",
)


def _signature(entry: dict[str, Any]) -> tuple[str, str, tuple[str, ...]]:
    inputs = tuple(str(i.get("type")) for i in entry.get("inputs", []))
    return (str(entry.get("type")), str(entry.get("name", "")), inputs)


def vault_abi_of(compiled: CompileResult) -> list[dict[str, Any]]:
    """The vault's whole ABI: ``MarginVault``'s own entries in the compiler's order, then
    the functions of ``IFinality`` and ``IDispute`` that its fallback delegates, then the
    events and errors that only the modules behind the fallback emit (for instance
    ``AccountLeafDisproven``, ``LeafIsHonest``)."""
    own = list(compiled.qualified[EXPORTED["MarginVault"]].abi)
    seen = {_signature(e) for e in own}
    extra: list[dict[str, Any]] = []
    for name in VAULT_FALLBACK_INTERFACES:
        for e in compiled.qualified[name].abi:
            if _signature(e) not in seen:
                seen.add(_signature(e))
                extra.append(e)
    for name in VAULT_FALLBACK_MODULES:
        for e in compiled.qualified[name].abi:
            if e.get("type") in ("event", "error") and _signature(e) not in seen:
                seen.add(_signature(e))
                extra.append(e)
    return own + extra


def abi_files(compiled: CompileResult) -> dict[str, str]:
    """File name -> content of every exported ABI: a JSON list in the compiler's order
    (the deployment file's ``abi_hash`` depends on it), two-space indented, newline-ended.
    The vault's is :func:`vault_abi_of`."""
    files = {}
    for stem, name in EXPORTED.items():
        abi = (
            vault_abi_of(compiled) if stem == "MarginVault" else list(compiled.qualified[name].abi)
        )
        files[f"{stem}.json"] = json.dumps(abi, indent=2) + "\n"
    return files


def write_abis(compiled: CompileResult, out_dir: Path = ABI_DIR) -> list[str]:
    """Write the exported ABIs to ``out_dir`` and delete stale ``*.json`` files there.
    Returns the names of the files that changed (written or deleted)."""
    files = abi_files(compiled)
    changed: list[str] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = out_dir / name
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
            changed.append(name)
    for path in sorted(out_dir.glob("*.json")):
        if path.name not in files:
            path.unlink()
            changed.append(path.name)
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m scripts.toolchain.abi",
        description="Compile contracts/ and write the ABIs the keeper loads to keeper/abi/.",
    )
    ap.add_argument("--out", type=Path, default=ABI_DIR, help="default keeper/abi/")
    ap.add_argument("--quiet", action="store_true", help="print only when a file changed")
    args = ap.parse_args(argv)
    changed = write_abis(compile_contracts(), args.out)
    if changed or not args.quiet:
        what = "rewrote " + ", ".join(changed) if changed else "unchanged"
        print(f"{args.out}: {len(EXPORTED)} ABIs ({what})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
