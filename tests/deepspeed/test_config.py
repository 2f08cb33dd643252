"""The generated DeepSpeed config, the merge with a raw one, and the bad inputs refused before any
worker starts (pure: no DeepSpeed, no cluster)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kubetrain.api import InvalidTrainingJob
from kubetrain.api.deepspeed import (
    Conflict,
    DeepSpeedConfigError,
    build_config,
    check_raw,
    effective,
    merge,
)
from kubetrain.api.deepspeed import check as check_deepspeed
from kubetrain.runner.preflight import PreflightError, check, resolve_deepspeed_config
from tests.conftest import make_job


def ds_spec(raw: dict[str, Any] | None = None, **patch: Any) -> Any:
    """A 2-worker ZeRO-2 job with `raw` as its raw config; `patch` sets other spec sections."""
    deepspeed: dict[str, Any] = {"zeroStage": 2} | ({"config": raw} if raw is not None else {})
    distributed = {"backend": "deepspeed", "workers": 2, "deepspeed": deepspeed}
    return make_job(**{"distributed": distributed} | patch).spec


# --------------------------------------------------------------------------- generate


def test_spec_fields_map_onto_deepspeed_names() -> None:
    spec = make_job(
        dataset={"source": "digits", "batchSize": 32},
        training={
            "optimizer": {"name": "momentum", "lr": 0.05, "momentum": 0.8, "weightDecay": 1e-4},
            "gradientAccumulationSteps": 4,
            "gradientClipNorm": 0.5,
            "precision": "bf16",
        },
        distributed={"backend": "deepspeed", "deepspeed": {"zeroStage": 2, "offload": "cpu"}},
    ).spec
    config = build_config(spec)
    assert config["train_micro_batch_size_per_gpu"] == 32
    assert config["gradient_accumulation_steps"] == 4
    assert "train_batch_size" not in config, "DeepSpeed derives it from the world size"
    assert config["optimizer"] == {
        "type": "SGD",
        "params": {"lr": 0.05, "momentum": 0.8, "weight_decay": 1e-4},
    }
    assert config["gradient_clipping"] == 0.5
    assert config["bf16"] == {"enabled": True} and config["fp16"] == {"enabled": False}
    assert config["zero_optimization"] == {"stage": 2, "offload_optimizer": {"device": "cpu"}}
    json.dumps(config)  # DeepSpeed takes JSON


@pytest.mark.parametrize(
    ("name", "ds_type", "extra"),
    [
        ("sgd", "SGD", {}),
        ("adam", "Adam", {"adam_w_mode": False, "torch_adam": True}),
        ("adamw", "AdamW", {"torch_adam": True}),
        ("adagrad", "Adagrad", {}),
        ("rmsprop", "RMSprop", {"momentum": 0.9}),
    ],
)
def test_each_optimizer_maps_to_the_class_ddp_uses(
    name: str, ds_type: str, extra: dict[str, Any]
) -> None:
    spec = make_job(training={"optimizer": {"name": name, "lr": 0.01}}).spec
    optimizer = build_config(spec)["optimizer"]
    assert optimizer["type"] == ds_type
    assert optimizer["params"]["lr"] == 0.01
    assert extra.items() <= optimizer["params"].items()


def test_adam_uses_deepspeeds_fused_kernel_on_gpu() -> None:
    spec = make_job(
        training={"optimizer": {"name": "adam"}},
        distributed={"resourcesPerWorker": {"gpu": 1}},
    ).spec
    assert "torch_adam" not in build_config(spec)["optimizer"]["params"]


def test_defaults_are_fp32_zero0_no_clipping() -> None:
    config = build_config(make_job().spec)
    assert config["zero_optimization"] == {"stage": 0}
    assert config["gradient_clipping"] == 0.0
    assert not config["bf16"]["enabled"] and not config["fp16"]["enabled"]


def test_zero3_gathers_a_whole_model_for_the_checkpoint() -> None:
    spec = make_job(distributed={"deepspeed": {"zeroStage": 3}}).spec
    assert build_config(spec)["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"]


# --------------------------------------------------------------------------- merge


def test_raw_overrides_field_by_field_and_each_change_is_a_conflict() -> None:
    generated: dict[str, Any] = {
        "a": 1,
        "zero_optimization": {"stage": 2, "overlap_comm": False},
        "b": {"x": 1},
    }
    raw = {"zero_optimization": {"stage": 3, "contiguous_gradients": True}, "c": 5, "a": 1}
    merged, conflicts = merge(generated, raw)
    assert merged == {
        "a": 1,
        "zero_optimization": {"stage": 3, "overlap_comm": False, "contiguous_gradients": True},
        "b": {"x": 1},
        "c": 5,
    }
    assert conflicts == [Conflict("zero_optimization.stage", 2, 3)]
    assert generated["zero_optimization"]["stage"] == 2, "inputs are not modified"


def test_a_new_optimizer_type_replaces_the_whole_section() -> None:
    generated = {"optimizer": {"type": "SGD", "params": {"lr": 0.1, "momentum": 0.9}}}
    raw = {"optimizer": {"type": "AdamW", "params": {"lr": 3e-5}}}
    merged, conflicts = merge(generated, raw)
    assert merged["optimizer"] == {"type": "AdamW", "params": {"lr": 3e-5}}
    assert conflicts == [Conflict("optimizer.type", "SGD", "AdamW")]


def test_auto_keeps_the_generated_value() -> None:
    merged, conflicts = merge({"gradient_clipping": 1.0}, {"gradient_clipping": "auto"})
    assert merged == {"gradient_clipping": 1.0} and conflicts == []


def test_conflict_names_the_raw_field_and_the_spec_field_it_overrides() -> None:
    spec = ds_spec({"zero_optimization": {"stage": 1}, "gradient_clipping": 2.0})
    config, conflicts = effective(spec)
    assert config["zero_optimization"]["stage"] == 1
    assert [str(c) for c in conflicts] == [
        "spec.distributed.deepspeed.config.zero_optimization.stage: 1 overrides 2 "
        "(from spec.distributed.deepspeed.zeroStage)",
        "spec.distributed.deepspeed.config.gradient_clipping: 2.0 overrides 0.0 "
        "(from spec.training.gradientClipNorm)",
    ]
    assert check_deepspeed(spec) == conflicts, "preflight hands them to the driver to show"


def test_a_raw_scheduler_replacing_the_spec_schedule_is_reported() -> None:
    raw = {"scheduler": {"type": "WarmupLR", "params": {"warmup_num_steps": 5}}}
    spec = ds_spec(raw, training={"lrSchedule": {"name": "cosine"}})
    (conflict,) = effective(spec)[1]
    assert conflict.path == "scheduler" and "spec.training.lrSchedule" in str(conflict)
    assert effective(ds_spec(raw))[1] == [], "no schedule in the spec: nothing is overridden"


# --------------------------------------------------------------------------- bad input


def refused(spec: Any) -> str:
    with pytest.raises(PreflightError) as err:
        check(spec)
    return str(err.value)


def test_raw_zero_stage_7_is_refused_naming_the_field() -> None:
    msg = refused(ds_spec({"zero_optimization": {"stage": 7}}))
    assert msg.startswith("spec.distributed.deepspeed.config.zero_optimization.stage: 7 ")
    assert "0, 1, 2 or 3" in msg


def test_spec_zero_stage_outside_0_to_3_is_refused_by_the_schema() -> None:
    from kubetrain.api import InvalidTrainingJob

    with pytest.raises(InvalidTrainingJob) as err:
        make_job(distributed={"deepspeed": {"zeroStage": 4}})
    assert err.value.problems[0].startswith("spec.distributed.deepspeed.zeroStage:")


def test_fp16_on_cpu_is_refused_from_the_spec_and_from_the_raw_config() -> None:
    assert refused(ds_spec(training={"precision": "fp16"})).startswith(
        "spec.training.precision: fp16 needs a GPU"
    )
    assert refused(ds_spec({"fp16": {"enabled": True}})).startswith(
        "spec.distributed.deepspeed.config.fp16.enabled: fp16 needs a GPU"
    )


def test_fp16_from_the_raw_config_is_fine_on_gpu() -> None:
    spec = make_job(
        distributed={"backend": "deepspeed", "resourcesPerWorker": {"gpu": 1},
                     "deepspeed": {"config": {"fp16": {"enabled": True}}}},
    ).spec  # fmt: skip
    assert [c.path for c in check_deepspeed(spec)] == ["fp16.enabled"]


@pytest.mark.parametrize(
    ("raw", "field", "says"),
    [
        (["stage", 2], "config", "must be an object"),
        ({"zero_optimisation": {"stage": 2}}, "config.zero_optimisation", "'zero_optimization'"),
        ({"my_section": 1}, "config.my_section", "unknown DeepSpeed config section"),
        ({"zero_optimization": 2}, "config.zero_optimization", "must be an object"),
        ({"zero_optimization": {"stage": "2"}}, "config.zero_optimization.stage", "'2'"),
        ({"zero_optimization": {"stage": True}}, "config.zero_optimization.stage", "True"),
        (
            {"train_micro_batch_size_per_gpu": 0},
            "config.train_micro_batch_size_per_gpu",
            "positive",
        ),
        ({"gradient_clipping": "high"}, "config.gradient_clipping", "number"),
        ({"wall_clock_breakdown": "yes"}, "config.wall_clock_breakdown", "true or false"),
        ({"optimizer": {"type": 3}}, "config.optimizer.type", "string"),
        ({"optimizer": {"type": "SGD", "params": [1]}}, "config.optimizer.params", "object"),
        ({"bf16": {"enabled": "on"}}, "config.bf16.enabled", "true or false"),
        (
            {"zero_optimization": {"offload_optimizer": {"device": "gpu"}}},
            "config.zero_optimization.offload_optimizer.device",
            "'gpu'",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_malformed_raw_config_names_the_key(raw: Any, field: str, says: str) -> None:
    with pytest.raises(DeepSpeedConfigError) as err:
        check_raw(raw)
    msg = str(err.value)
    assert msg.startswith(f"spec.distributed.deepspeed.{field}: "), msg
    assert says in msg


def test_malformed_raw_config_in_a_job_is_refused_by_preflight() -> None:
    msg = refused(ds_spec({"zero_optimization": {"stage": 2}, "fp17": {}}))
    assert msg.startswith("spec.distributed.deepspeed.config.fp17: unknown DeepSpeed config")


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"train_micro_batch_size_per_gpu": 16}, "config.train_micro_batch_size_per_gpu"),
        ({"gradient_accumulation_steps": 2}, "config.gradient_accumulation_steps"),
        ({"train_batch_size": 100}, "config.train_batch_size"),
    ],
)
def test_batch_geometry_contradicting_the_spec_is_refused(raw: dict[str, Any], field: str) -> None:
    assert refused(ds_spec(raw)).startswith(f"spec.distributed.deepspeed.{field}: ")


def test_batch_geometry_agreeing_with_the_spec_is_accepted() -> None:
    raw = {"train_micro_batch_size_per_gpu": 64, "train_batch_size": 128}  # 64 x 1 x 2 workers
    assert check_deepspeed(ds_spec(raw)) == []


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"distributed": {"backend": "deepspeed", "deepspeed": {"offload": "cpu"}}},
         "spec.distributed.deepspeed.offload"),
        ({"distributed": {"backend": "deepspeed", "deepspeed": {"zeroStage": 3}},
          "training": {"regularization": {"l2": 0.01}}}, "spec.training.regularization"),
        ({"distributed": {"backend": "deepspeed"},
          "model": {"name": "mobilenet_v2", "freeze": {"backbone": True, "unfreezeAtEpoch": 2}}},
         "spec.model.freeze.unfreezeAtEpoch"),
        ({"distributed": {"backend": "deepspeed", "aggregation": {"strategy": "local_sgd"}}},
         "spec.distributed.aggregation.strategy"),
    ],
)  # fmt: skip
def test_spec_combinations_deepspeed_cannot_run(patch: dict[str, Any], field: str) -> None:
    assert refused(make_job(**patch).spec).startswith(f"{field}: ")


def test_ddp_jobs_ignore_the_deepspeed_section() -> None:
    spec = make_job(distributed={"deepspeed": {"config": {"zero_optimization": {"stage": 7}}}})
    assert check(spec.spec) == []


# --------------------------------------------------------------------------- ConfigMap


def test_config_map_is_read_from_its_mount_and_inlined(tmp_path: Path) -> None:
    mount = tmp_path / "ds_config.json"
    mount.write_text(json.dumps({"zero_optimization": {"stage": 1}}))
    spec = make_job(distributed={"backend": "deepspeed", "deepspeed": {"configMapRef": "ds"}}).spec
    resolved = resolve_deepspeed_config(spec, mount)
    assert resolved.distributed.deepspeed.config == {"zero_optimization": {"stage": 1}}
    assert resolve_deepspeed_config(resolved, mount) == resolved, "running it twice is harmless"


def test_config_map_not_mounted_or_malformed_is_refused(tmp_path: Path) -> None:
    spec = make_job(distributed={"backend": "deepspeed", "deepspeed": {"configMapRef": "ds"}}).spec
    field = "spec.distributed.deepspeed.configMapRef: "
    with pytest.raises(PreflightError, match=f"^{field}no .*create ConfigMap 'ds'.*ds_config.json"):
        resolve_deepspeed_config(spec, tmp_path / "missing.json")
    bad = tmp_path / "ds_config.json"
    bad.write_text("[1, 2]")
    with pytest.raises(PreflightError, match=f"^{field}.*JSON object"):
        resolve_deepspeed_config(spec, bad)


def test_ddp_jobs_do_not_read_a_deepspeed_config_map(tmp_path: Path) -> None:
    spec = make_job(distributed={"deepspeed": {"configMapRef": "ds"}}).spec
    assert resolve_deepspeed_config(spec, tmp_path / "missing.json") == spec


def test_config_map_ref_must_be_a_config_map_name() -> None:
    with pytest.raises(InvalidTrainingJob, match=r"spec\.distributed\.deepspeed\.configMapRef: "):
        make_job(distributed={"backend": "deepspeed", "deepspeed": {"configMapRef": "DS_cfg"}})


def _ds(raw: dict[str, Any]) -> dict[str, Any]:
    return {"distributed": {"backend": "deepspeed", "deepspeed": {"config": raw}}}


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        (_ds({}) | {"training": {"precision": "fp16"}}, "spec.training.precision"),
        (_ds({"zero_optimization": {"stage": 5}}),
         "spec.distributed.deepspeed.config.zero_optimization.stage"),
        (_ds({"optimizer": "adam"}), "spec.distributed.deepspeed.config.optimizer"),
    ],
)  # fmt: skip
def test_run_job_refuses_bad_input_before_ray_starts(
    monkeypatch: pytest.MonkeyPatch, patch: dict[str, Any], field: str
) -> None:
    from kubetrain.runner import run as runner_run

    def no_ray(*_: object, **__: object) -> None:
        raise AssertionError("Ray (and so a worker) was started for a job that cannot run")

    monkeypatch.setattr(runner_run, "start_ray", no_ray)
    with pytest.raises(PreflightError, match=f"^{field}: "):
        runner_run.run_job(make_job(**patch), sink=None)  # type: ignore[arg-type]
