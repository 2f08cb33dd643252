"""Names that identify the TrainingJob API on a cluster."""

GROUP = "kubetrain.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "TrainingJob"
PLURAL = "trainingjobs"
SINGULAR = "trainingjob"
SHORT_NAMES = ("tj",)
CRD_NAME = f"{PLURAL}.{GROUP}"

# spec.distributed.deepspeed.configMapRef: the key the ConfigMap holds the raw DeepSpeed config
# under, and the directory the operator mounts it at in the head pod, where the driver reads it.
# Not under /etc/kubetrain: that is a read-only ConfigMap volume already, and a mount nested in it
# needs a mount point the kubelet cannot always create.
DEEPSPEED_CONFIG_KEY = "ds_config.json"
DEEPSPEED_CONFIG_DIR = "/etc/kubetrain-deepspeed"
