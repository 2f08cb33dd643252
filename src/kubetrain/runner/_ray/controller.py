"""Ray Train's controller hooks that Ray has not made public.

`ControllerCallback` runs in the controller actor (its handle, its state changes);
`RestartingState` is the state it enters before restarting the workers.
"""

from ray.train.v2._internal.execution.callback import ControllerCallback
from ray.train.v2._internal.execution.controller.state import RestartingState

__all__ = ["ControllerCallback", "RestartingState"]
