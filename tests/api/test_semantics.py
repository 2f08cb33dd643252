"""The semantic check: every cross-field mistake is refused with its field and its fix, before any
data loads, and `kubetrain validate` / `kubetrain run` refuse it the same way (exit 2)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubetrain import cli
from kubetrain.api import InvalidTrainingJob, check_job
from kubetrain.api.semantics import check_spec
from tests.conftest import EXAMPLES, example_dict, job_dict, make_job
from tests.mistakes import mistake_params


def _problems(**patch: Any) -> list[str]:
    return [str(p) for p in check_spec(make_job(**patch).spec)]


@pytest.mark.parametrize(("patch", "field", "fix"), mistake_params())
def test_each_mistake_is_found_naming_its_field_and_fix(
    patch: dict[str, Any], field: str, fix: str
) -> None:
    found = _problems(**patch)
    named = [p for p in found if p.startswith(f"{field}: ")]
    assert named, found
    assert any(fix in p for p in named), found


@pytest.mark.parametrize(
    "patch",
    [
        pytest.param({}, id="the-base-job"),
        pytest.param({"model": {"name": "cnn"}}, id="cnn-on-digits"),
        pytest.param({"model": {"name": "mlp", "inputSize": 3072},
                      "dataset": {"source": "cifar10"}}, id="mlp-on-cifar10"),
        pytest.param({"model": {"name": "mlp", "inputSize": 5, "numClasses": 3},
                      "dataset": {"source": "csv", "path": "rows.csv"}},
                     id="csv-widths-are-the-datas-to-tell"),
        pytest.param({"model": {"name": "mobilenet_v2",
                                "freeze": {"backbone": True, "unfreezeAtEpoch": 3}},
                      "training": {"epochs": 3}}, id="mobilenet-unfreezes-at-the-last-epoch"),
        pytest.param({"model": {"name": "bert", "numClasses": 2, "pretrained": "x",
                                "freeze": {"embeddings": True, "layers": 2}},
                      "dataset": {"source": "imdb"}}, id="bert-on-imdb"),
        pytest.param({"model": {"name": "custom", "entrypoint": "pkg.m:build", "numClasses": 4},
                      "dataset": {"source": "synthetic"}}, id="custom-on-synthetic"),
        pytest.param({"model": {"name": "lstm", "numClasses": 2},
                      "dataset": {"source": "synthetic"}}, id="lstm-on-synthetic-text"),
        pytest.param({"training": {"precision": "fp16"},
                      "distributed": {"resourcesPerWorker": {"gpu": 1}}}, id="fp16-on-gpu"),
        pytest.param({"distributed": {"resourcesPerWorker": {"memory": "0.5Gi"}}},
                     id="memory-at-the-floor"),
    ],
)  # fmt: skip
def test_jobs_whose_fields_fit_pass(patch: dict[str, Any]) -> None:
    assert _problems(**patch) == []


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_passes_the_check(path: Path) -> None:
    assert check_spec(make_job(**example_dict(path.name)["spec"]).spec) == []


def test_every_problem_is_listed_at_once() -> None:
    found = _problems(
        model={"inputSize": 100}, training={"precision": "fp16"},
        distributed={"resourcesPerWorker": {"memory": "100Mi"}},
    )  # fmt: skip
    assert [p.split(":")[0] for p in found] == [
        "spec.model.inputSize", "spec.training.precision",
        "spec.distributed.resourcesPerWorker.memory",
    ]  # fmt: skip


def test_a_local_checkpoint_dir_without_a_claim_is_refused_only_for_a_cluster() -> None:
    job = make_job()
    assert check_spec(job.spec) == []
    (problem,) = check_spec(job.spec, on_cluster=True)
    assert problem.field == "spec.checkpoint.claimName" and "s3://" in problem.message
    assert check_spec(make_job(checkpoint={"claimName": "c"}).spec, on_cluster=True) == []
    assert check_spec(make_job(checkpoint={"storagePath": "s3://b/p"}).spec, on_cluster=True) == []


def test_check_job_raises_with_every_problem_and_the_source() -> None:
    with pytest.raises(InvalidTrainingJob) as err:
        check_job(make_job(model={"numClasses": 3}), source="job.yaml")
    assert err.value.problems == [
        "spec.model.numClasses: is 3 but dataset source 'digits' has 10 classes; set numClasses: 10"
    ]
    assert "job.yaml" in str(err.value)


def _write(tmp_path: Path, **patch: Any) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job_dict(**patch)))
    return path


@pytest.mark.parametrize(("patch", "field", "fix"), mistake_params())
def test_validate_refuses_each_mistake_with_exit_2_and_no_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], patch: dict[str, Any], field: str, fix: str
) -> None:
    assert cli.main(["validate", str(_write(tmp_path, **patch))]) == cli.EXIT_INVALID
    err = capsys.readouterr().err
    assert f"  - {field}: " in err and fix in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize(("patch", "field", "fix"), mistake_params())
def test_run_refuses_each_mistake_before_importing_torch_or_ray(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], patch: dict[str, Any], field: str, fix: str
) -> None:
    started = time.monotonic()
    assert cli.main(["run", str(_write(tmp_path, **patch))]) == cli.EXIT_INVALID
    assert time.monotonic() - started < 5, "refused before any worker (or Ray) starts"
    err = capsys.readouterr().err
    assert f"  - {field}: " in err and fix in err, err


def test_validate_cluster_refuses_checkpoints_no_other_pod_sees(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path)
    assert cli.main(["validate", str(path)]) == 0
    assert cli.main(["validate", "--cluster", str(path)]) == cli.EXIT_INVALID
    assert "spec.checkpoint.claimName: storagePath './runs' is a local directory" in (
        capsys.readouterr().err
    )
