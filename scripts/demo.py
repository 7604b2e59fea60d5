"""``make demo`` placeholder: a fresh Anvil on a free port, mocks + vault deployed, addresses
printed, Anvil stopped. A later issue replaces it with the full demo (keeper, trades, crash)."""

from __future__ import annotations

import sys
import time

from keeper.compile import compile_contracts
from scripts.anvil import anvil
from scripts.deploy import deploy


def main() -> int:
    t0 = time.perf_counter()
    compiled = compile_contracts()
    source = "cache" if compiled.from_cache else "solc"
    print(f"compiled {len(compiled.contracts)} contracts ({source})")
    with anvil() as node:
        print(f"anvil listening on {node.url}")
        d = deploy(node.web3(), compiled=compiled)
        print(f"chain id          {d.chain_id}")
        print(f"owner             {d.owner}")
        print(f"MarginVault       {d.vault}")
        print(f"USDC (settlement) {d.settlement_token}")
        for symbol, address in d.collateral.items():
            print(f"{symbol:<17} {address}")
    print(f"anvil stopped; done in {time.perf_counter() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
