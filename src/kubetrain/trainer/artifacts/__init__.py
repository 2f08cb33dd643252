"""The trained model as an artifact: exported, compressed and measured after training.

`kubetrain.api.artifacts` decides what to make (pure) and types the report; this package does
the torch work: `compress` (int8 quantization, magnitude pruning and fine-tuning), `export`
(state_dict, TorchScript, save_pretrained), `measure` (size, parameters, latency, metrics), and
`make`, which runs them in order.
"""

from kubetrain.trainer.artifacts.make import Trained, make_artifacts

__all__ = ["Trained", "make_artifacts"]
