"""kubetrain's operator: runs each TrainingJob as a Ray cluster in pods, and tells the truth
about it in the job's status.

The entry point is `kubetrain-operator` (`kubetrain_operator.__main__:main`). What its pods run
is `kubetrain.pods`, in the trainer image; the two sides share only `kubetrain.pods.contract`.
"""

from kubetrain_operator.config import OperatorConfig, PodSettings, PolicySettings, ServerSettings

__all__ = ["OperatorConfig", "PodSettings", "PolicySettings", "ServerSettings"]
