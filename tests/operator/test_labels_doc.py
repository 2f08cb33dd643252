"""docs/labels-and-annotations.md names every label and annotation the operator sets."""

from __future__ import annotations

from kubetrain.api import parse_job
from kubetrain_operator.config import PodSettings
from kubetrain_operator.render import support_objects
from tests.conftest import ROOT
from tests.operator.helpers import api_job_dict, pods

DOC = ROOT / "docs" / "labels-and-annotations.md"


def test_every_label_and_annotation_on_owned_objects_is_documented() -> None:
    data = api_job_dict(distributed={"workers": 2}, metrics={"enabled": True})
    data["metadata"]["labels"] = {"kueue.x-k8s.io/queue-name": "team-a", "unrelated": "x"}
    job = parse_job(data)
    settings = PodSettings()
    objects = pods(job, attempt=0, settings=settings) + support_objects(
        job, settings, ray_token="t0ken"
    )
    keys = {
        key
        for obj in objects
        for field in ("labels", "annotations")
        for key in obj["metadata"].get(field, {})
    }
    assert "kueue.x-k8s.io/queue-name" in keys and "unrelated" not in keys
    doc = DOC.read_text()
    missing = sorted(k for k in keys if f"`{k}`" not in doc)
    assert not missing, f"document these in {DOC.relative_to(ROOT)}: {missing}"
