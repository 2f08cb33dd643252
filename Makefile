# The README's two commands: `make run` (set up + train the main example locally) and `make test`.
.PHONY: setup run test lint crd

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
