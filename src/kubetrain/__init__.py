"""kubetrain: data-parallel training on Ray, locally or as a Kubernetes TrainingJob."""

__version__ = "0.1.0"
