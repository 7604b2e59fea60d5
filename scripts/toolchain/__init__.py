"""The build side: the pinned tools, the Solidity compiler driver and the ABI export.

Only build and operations code imports this package (deployment, the demo stack, the
benchmarks, the tests, ``make abi``); the keeper daemon never does: it loads the ABIs that
``make abi`` exported into ``keeper/abi/`` (:mod:`keeper.abi`) and never compiles.

- :mod:`scripts.toolchain.paths`: where the pinned tools are (``tools/solc``, Anvil, forge);
- :mod:`scripts.toolchain.compile`: ``contracts/`` -> ABI + bytecode, cached on disk;
- :mod:`scripts.toolchain.abi`: ``python -m scripts.toolchain.abi`` (``make abi``) writes
  ``keeper/abi/<Contract>.json``.
"""

from scripts.errors import BuildError, CompileError, ToolchainError
from scripts.toolchain.compile import CompiledContract, CompileResult, compile_contracts

__all__ = [
    "BuildError",
    "CompileError",
    "CompileResult",
    "CompiledContract",
    "ToolchainError",
    "compile_contracts",
]
