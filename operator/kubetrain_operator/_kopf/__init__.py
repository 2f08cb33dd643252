"""Where the operator reaches into kopf's internals: its private modules (`kopf._core`, ...) and
its registries' private attributes. This folder is the only place allowed to import them (a lint
rule says so); everything else uses kopf's public API.

Each module here says why no public API does the job, and has a test that fails first if kopf
moves what it relies on (tests/operator/test_nofinalizer.py for `daemons`,
tests/operator/test_diffbase.py for `diffbase`).
"""
