"""The only place kubetrain touches Ray's private modules (`ray._private`,
`ray.train.v2._internal`, `ray.experimental.internal_kv`).

Ray may move them in any release. Keeping every such import here (ruff's banned-api rule refuses
them anywhere else) means an upgrade is checked in one folder, and each use has a canary test
under tests/runner/ that fails when Ray moves it.
"""
