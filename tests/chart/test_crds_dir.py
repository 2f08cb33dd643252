"""`kubectl apply -f crds/` installs every CRD the operator needs, the same ones the chart does."""

from __future__ import annotations

from tests.chart.conftest import CHART
from tests.conftest import ROOT

FIX = "run `.venv/bin/python scripts/sync-chart.py` and commit what it writes"


def test_crds_dir_and_the_charts_crds_hold_the_same_files_byte_for_byte() -> None:
    ours = {p.name: p.read_bytes() for p in (ROOT / "crds").glob("*.yaml")}
    chart = {p.name: p.read_bytes() for p in (CHART / "crds").glob("*.yaml")}
    assert sorted(ours) == sorted(chart), FIX
    for name, text in ours.items():
        assert text == chart[name], f"crds/{name} and the chart's differ: {FIX}"
