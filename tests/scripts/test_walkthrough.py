"""docs/walkthrough.md runs as written: its ``sh`` blocks, in order, in one bash in an empty
directory, against a real Anvil and a real keeper daemon (both started by the doc's own
commands, in the background), so the walkthrough cannot drift from the CLI.

Every command must exit 0 (``set -e``; the failing command is named), and each block must
print what the doc says it prints (``EXPECT`` below: a fragment of a command in the doc ->
text its block prints). Background commands (a trailing ``&``) share the script's process
group, which is killed at the end. Only the ports and the checkout come from outside,
through the variables the doc reads with defaults (``REPO``, ``ANVIL_PORT``, ``API_PORT``,
``METRICS_PORT``).
"""

from __future__ import annotations

import os
import re
import resource
import signal
import subprocess
import time
from pathlib import Path

from scripts.anvil import free_port
from scripts.toolchain.paths import REPO_ROOT

DOC = REPO_ROOT / "docs" / "walkthrough.md"
MARK = "@@walkthrough-block"

#: (a fragment of a command in the doc, text the block holding it must print)
EXPECT: tuple[tuple[str, str], ...] = (
    ("pm deploy", "deployments/31337.json"),
    ("pm deploy", "GOV"),
    ("pm wait\n", "epoch "),
    ("/health", '"status"'),
    ("/metrics", "pm_keeper_epoch_last "),
    ("/metrics", "pm_keeper_epoch_lag_seconds "),
    ("pm deposit-cash 50000", "subaccount 1 created"),
    ("pm deposit-cash 50000", "approve 50000 USDC"),
    ("pm markets", "BTC-PERP"),
    ("pm markets", "UTC"),
    ("pm quote", "maker sells 0.1 BTC-PERP"),
    ("pm quote", "mark "),
    ("pm deposit WETH 2", "subaccount 2 created"),
    ("pm trade quote.json", "you buy 0.1 BTC-PERP"),
    ("pm trade quote.json", "subaccount 2 IM "),
    ("pm margin --account 2", "max withdrawable now"),
    ("pm margin --account 2", "liquidation if"),
    ("pm margin --account 2", "greeks"),
    ("pm margin --account 2", "entry "),
    ("pm report", "wrote "),
    ("pm withdraw WETH 0.5", "withdraw 0.5 WETH from subaccount 2"),
    ("pm withdraw-cash 1000000", "allows at most"),
    ("pm liquidator run --once", '"candidates"'),
    ("pm keeper verify", "recomputed root"),
    ("pm keeper verify", "MATCH"),
)


def sh_blocks(text: str) -> list[str]:
    """The fenced ``sh`` blocks of ``text``, in order."""
    return [m.group(1) for m in re.finditer(r"^```sh\n(.*?)^```", text, re.M | re.S)]


def _script(blocks: list[str]) -> str:
    lines = [
        "set -e",
        "trap 'echo \"@@failed: $BASH_COMMAND (exit $?)\" >&2' ERR",
    ]
    for i, block in enumerate(blocks):
        lines += [
            f'echo "{MARK} {i}" >&2',
            f'echo "{MARK} {i}"',
            block,
        ]
    lines.append(f'echo "{MARK} end"')
    return "\n".join(lines) + "\n"


def _split(out: str) -> dict[str, str]:
    parts: dict[str, str] = {}
    current = "pre"
    for line in out.splitlines():
        if line.startswith(MARK):
            current = line.split()[-1]
            continue
        parts[current] = parts.get(current, "") + line + "\n"
    return parts


def test_every_sh_block_of_the_walkthrough_runs_and_prints_what_the_doc_says(
    tmp_path: Path,
) -> None:
    blocks = sh_blocks(DOC.read_text())
    assert len(blocks) >= 10, "the walkthrough lost its commands"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PM_") and k != "PYTHONPATH"}
    env.update(
        REPO=str(REPO_ROOT),
        HOME=str(tmp_path),
        ANVIL_PORT=str(free_port()),
        API_PORT=str(free_port()),
        METRICS_PORT=str(free_port()),
    )
    out_file, err_file = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    work = tmp_path / "work"
    work.mkdir()
    started = time.monotonic()
    with out_file.open("w") as out, err_file.open("w") as err:
        proc = subprocess.Popen(
            ["bash", "-c", _script(blocks)],
            cwd=work,
            env=env,
            stdout=out,
            stderr=err,
            start_new_session=True,  # the background commands join this group: killed below
        )
        try:
            code = proc.wait(timeout=600)
        finally:
            _kill_group(proc.pid)
    wall = time.monotonic() - started
    stdout, stderr = out_file.read_text(), err_file.read_text()
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        f"walkthrough: {len(blocks)} blocks in {wall:.1f} s wall, "
        f"{cpu.ru_utime + cpu.ru_stime:.1f} s CPU of the commands"
    )
    keeper_log = work / "keeper.log"
    log_tail = keeper_log.read_text()[-3000:] if keeper_log.exists() else ""
    assert code == 0, f"exit {code}\nstderr:\n{stderr[-4000:]}\nkeeper.log:\n{log_tail}"
    assert f"{MARK} end" in stdout
    assert "Traceback" not in stderr
    outs, errs = _split(stdout), _split(stderr)
    for fragment, text in EXPECT:
        found = [str(i) for i, b in enumerate(blocks) if fragment in b + "\n"]
        assert found, f"no block of docs/walkthrough.md runs {fragment!r}"
        i = found[0]
        printed = outs.get(i, "") + errs.get(i, "")
        assert text in printed, f"block {i} ({fragment!r}) did not print {text!r}:\n{printed}"


def _kill_group(pgid: int) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        for _ in range(50):
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
