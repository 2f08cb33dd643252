"""kubetrain's operator: runs each TrainingJob as a Ray cluster in pods, and tells the truth
about it in the job's status.

Importing this package imports neither kopf nor a Kubernetes client: the trainer image runs
`kubetrain_operator.driver` without them. The entry point is `kubetrain-operator`
(`kubetrain_operator.__main__:main`).
"""

from kubetrain_operator.config import OperatorConfig, PodSettings, PolicySettings, ServerSettings

__all__ = ["OperatorConfig", "PodSettings", "PolicySettings", "ServerSettings"]
