"""docs/operations.md lists every metric the keeper and the liquidator export, with its
type, unit and meaning, and no metric that is not exported."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import CollectorRegistry

from keeper.liquidator.metrics import LiquidatorMetrics
from keeper.metrics import KeeperMetrics

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
# | `name{labels}` | type | unit | meaning |
_ROW = re.compile(r"^\| `(pm_[a-z_]+)(\{[a-z_,]*\})?` \| ([a-z]+) \| ([^|]+) \| ([^|]+) \|$")


def _exported(registry: CollectorRegistry) -> dict[str, str]:
    """Exported metric name -> type (a counter's samples are ``<name>_total``)."""
    out = {}
    for family in registry.collect():
        name = family.name + "_total" if family.type == "counter" else family.name
        out[name] = family.type
    return out


def test_every_exported_metric_is_documented_with_its_type_unit_and_meaning() -> None:
    exported = {**_exported(KeeperMetrics().registry), **_exported(LiquidatorMetrics().registry)}
    rows = [_ROW.match(line) for line in DOC.read_text().splitlines()]
    documented = {m.group(1): m for m in rows if m is not None}
    assert set(documented) == set(exported)
    for name, kind in exported.items():
        row = documented[name]
        assert row.group(3) == kind, name
        assert row.group(4).strip() and row.group(5).strip(), f"{name}: unit and meaning"
