"""docs/architecture.md cites ``path:name`` for every hop of its trace; each must exist.

A reference is ``<dir>/<file>.py|.sol:<Name>[.<member>...]`` with ``<dir>`` one of the
repository's code trees. A Python name must be defined in the file (a class, a function or
a module-level assignment; ``Class.method`` must be a method of that class), a Solidity
name declared in it (contract, library, interface, function, struct, error, event,
modifier). A renamed or moved function then fails here instead of misleading a reader.
"""

from __future__ import annotations

import ast
import re

import pytest

from scripts.toolchain.paths import REPO_ROOT

ROOT = REPO_ROOT
DOC = ROOT / "docs" / "architecture.md"

REFERENCE = re.compile(
    r"(?<![\w/.-])((?:risk_engine|keeper|scripts|contracts|tests)/[\w/.-]+?\.(?:py|sol))"
    r":([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)"
)

SOLIDITY_DECLARATION = (
    r"\b(?:contract|library|interface|function|struct|error|event|modifier)\s+{name}\b"
)


def _references() -> list[tuple[str, str]]:
    return sorted(set(REFERENCE.findall(DOC.read_text())))


def _python_defines(tree: ast.Module, dotted: str) -> bool:
    scope: list[ast.stmt] = list(tree.body)
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        found: ast.stmt | None = None
        for node in scope:
            if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                if node.name == part:
                    found = node
            elif i == 0 and isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(isinstance(t, ast.Name) and t.id == part for t in targets):
                    found = node
        if found is None:
            return False
        scope = list(found.body) if isinstance(found, ast.ClassDef) else []
    return True


def _solidity_defines(text: str, dotted: str) -> bool:
    return all(re.search(SOLIDITY_DECLARATION.format(name=n), text) for n in dotted.split("."))


def _defined(path: str, name: str) -> bool:
    file = ROOT / path
    if not file.is_file():
        return False
    text = file.read_text()
    if path.endswith(".py"):
        return _python_defines(ast.parse(text), name)
    return _solidity_defines(text, name)


def test_the_doc_cites_the_whole_trace() -> None:
    refs = _references()
    files = {path for path, _ in refs}
    # The trace touches every layer; a parser that silently matched nothing would pass below.
    for layer in ("risk_engine/", "keeper/", "scripts/", "contracts/"):
        assert any(f.startswith(layer) for f in files), f"no reference into {layer}"
    assert len(refs) >= 60


@pytest.mark.parametrize(("path", "name"), _references(), ids=lambda v: str(v))
def test_every_cited_name_is_defined_in_its_file(path: str, name: str) -> None:
    assert (ROOT / path).is_file(), f"{path} does not exist"
    assert _defined(path, name), f"{name} is not defined in {path}"


def test_a_missing_name_or_file_is_caught() -> None:
    assert _defined("keeper/attestation.py", "MerkleTree.proof")
    assert not _defined("keeper/attestation.py", "MerkleTree.no_such_method")
    assert not _defined("keeper/no_such_module.py", "anything")
    assert _defined("contracts/interfaces/Errors.sol", "InsufficientMargin")
    assert not _defined("contracts/libraries/Leaves.sol", "hashNothing")
