# The README's two commands: `make run` (set up + train the main example locally) and `make test`.
.PHONY: setup run test lint crd e2e

STAMP := .venv/.kubetrain-installed

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	touch $(STAMP)

run: setup
	.venv/bin/kubetrain run examples/mnist-mlp.yaml

test: setup
	bash scripts/test.sh

crd: setup
	.venv/bin/kubetrain crd -o crds/trainingjob.yaml
	.venv/bin/python scripts/sync-chart.py  # the chart's copy of the CRDs and the RBAC rules
	.venv/bin/kubetrain reference -o docs/spec-reference.md

# End to end on a real cluster: e2e/cluster.sh up, images built and loaded, the chart installed,
# e2e/tests run (e2e/run.sh; root; --kind for kind): the last stage of `make test`, alone.
e2e: setup
	bash e2e/run.sh
