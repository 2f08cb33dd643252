"""The program every pod of a TrainingJob runs, in the trainer image: `python -m kubetrain.pods`.

- `head`: starts the Ray head, waits for the worker pods, trains with `kubetrain.runner` and
  writes progress into the job's status (`status_sink`).
- `node`: starts a Ray node (`ray start`), on the head and in every worker pod.
- `contract`: what the operator renders and this program reads (paths, flags, exit codes). The
  operator imports that module and nothing else from here.
"""
