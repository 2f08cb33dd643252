"""Names that identify the TrainingJob API on a cluster."""

GROUP = "kubetrain.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "TrainingJob"
PLURAL = "trainingjobs"
SINGULAR = "trainingjob"
SHORT_NAMES = ("tj",)
CRD_NAME = f"{PLURAL}.{GROUP}"

# A job's name becomes its pods' and Service's names: "<name>-worker-1023" must fit in 63
# characters, and a Service name must start with a letter (RFC 1035).
MAX_JOB_NAME = 52
JOB_NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"

# spec.distributed.deepspeed.configMapRef: the key the ConfigMap holds the raw DeepSpeed config
# under, and the directory the operator mounts it at in the head pod, where the driver reads it.
# Not under /etc/kubetrain: that is a read-only ConfigMap volume already, and a mount nested in it
# needs a mount point the kubelet cannot always create.
DEEPSPEED_CONFIG_KEY = "ds_config.json"
DEEPSPEED_CONFIG_DIR = "/etc/kubetrain-deepspeed"

# What the operator mounts in a job's pods: spec.pod.volumes and spec.pod.volumeMounts may not
# reuse these names or mount over these paths (tests/operator/test_render.py checks the list
# against what is rendered). The checkpoint and dataset claims add their own paths per job.
RESERVED_VOLUMES = (
    "config",
    "api-token",
    "tmp",
    "checkpoints",
    "dataset",
    "dshm",
    "deepspeed-config",
)
RESERVED_MOUNT_PATHS = (
    "/etc/kubetrain",
    DEEPSPEED_CONFIG_DIR,
    "/tmp",
    "/dev/shm",
    "/var/run/secrets/kubernetes.io/serviceaccount",
)
