"""Run one epoch of the keeper and SIGKILL itself right after a stage (a real crash: no
cleanup, no flush beyond what the store already committed).

Usage: python crash_keeper.py <rpc url> <vault> <data dir> <stage: built|signed|sent>
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from web3 import Web3

from keeper.chain import ChainAdapter
from keeper.gas import Fees, FixedFeeStrategy
from keeper.pipeline import EpochPipeline
from keeper.signers import LocalSigner
from keeper.store import Store
from keeper.txmanager import TxManager
from risk_engine import load_params
from scripts.pipeline_world import labelled_key, make_feed_at, signer_keys


def main() -> None:
    url, vault, data_dir, stage = sys.argv[1:5]
    w3 = Web3(Web3.HTTPProvider(url))
    store = Store(Path(data_dir) / "keeper.sqlite")

    def hook(name: str, epoch: int) -> None:
        if name == stage:
            os.kill(os.getpid(), signal.SIGKILL)

    pipeline = EpochPipeline(
        ChainAdapter(w3, vault, store=store),
        make_feed_at(int(w3.eth.get_block("latest")["timestamp"]), seed=11),
        store,
        LocalSigner(signer_keys()),
        load_params(),
        tx=TxManager(
            w3,
            labelled_key("keeper sender"),
            gas=FixedFeeStrategy(Fees(20 * 10**9, 10**9)),
            fee_cap_wei=500 * 10**9,
            store=store,
        ),
        hook=hook,
    )
    print(pipeline.run_epoch())


if __name__ == "__main__":
    main()
