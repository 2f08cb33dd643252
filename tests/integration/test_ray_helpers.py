"""What a local run costs in Ray processes besides its workers: with 2 workers on 2 cores,
every helper's CPU comes out of training (bench/ddp_overhead.py measures it)."""

from __future__ import annotations

from pathlib import Path

import pytest
import ray

from kubetrain.runner import run_job
from tests.conftest import make_job
from tests.integration.conftest import RecordingSink, actor_classes_since, actor_ids

pytestmark = pytest.mark.slow


def test_a_local_run_starts_only_the_helpers_it_uses(
    ray_cluster: None, sink: RecordingSink, tmp_path: Path
) -> None:
    job = make_job(training={"epochs": 1}, checkpoint={"storagePath": str(tmp_path)})
    before = actor_ids()
    assert run_job(job, sink).status == "succeeded"
    classes = actor_classes_since(before)
    assert "TrainController" in classes  # the query sees this run's actors
    assert not classes & {
        "DatasetManager",
        "PlacementGroupCleaner",
        "_AutoscalingCoordinatorActor",
    }


def test_a_quiet_local_cluster_runs_no_log_monitor(ray_cluster: None) -> None:
    node = ray._private.worker._global_node
    assert node is not None
    assert "log_monitor" not in node.all_processes
    logs = node.get_logs_dir_path()
    assert not [argv for argv in command_lines() if "log_monitor.py" in argv and logs in argv]


def command_lines() -> list[str]:
    lines = []
    for path in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            lines.append(path.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue  # ended while we looked
    return lines
