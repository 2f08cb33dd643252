"""The DeepSpeed backend: engine and checkpoints. Its config and checks are pure, in
`kubetrain.api.deepspeed`, where the semantic check uses them before any pod or worker exists."""
