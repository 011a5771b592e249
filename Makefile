# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Heavy one-time builds (the Go control plane, torch + vLLM) are cached outside the repo,
# keyed by version, under $(FMA_CACHE); they are rebuilt only when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FMA_CACHE ?= $(HOME)/.cache/fma
export FMA_CACHE
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
OUT ?= out
CHART_CRDS := inferenceserverconfigs.yaml launcherconfigs.yaml launcherpopulationpolicies.yaml \
	modelservices.yaml

.PHONY: install demo demo-cluster test lint types imports unit property integration e2e soak crds \
	chart-snapshots clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

## The main job: a simulation scenario and its report, then the same scenario under the three
## actuation policies side by side (the comparison's JSON is in $(OUT)/compare/compare.json).
demo: install
	$(BIN)/fma sim run sim/scenarios/demo.yaml --out $(OUT)/demo
	$(BIN)/fma sim compare sim/scenarios/demo.yaml --policy fma --policy direct-sleep \
		--policy cold --out $(OUT)/compare > /dev/null
	@echo "run report:        $(OUT)/demo/report.html"
	@echo "comparison report: $(OUT)/compare/report.html"

## FMA on the test control plane: `fma testcluster up`, `helm install charts/fma`, a cold, a warm
## and a hot actuation shown live, then the actuation metrics from the operator's /metrics.
## The cluster is taken down at the end; KEEP=1 keeps it (`fma testcluster down` removes it).
## Needs root, as the pod runner does.
demo-cluster: install
	$(BIN)/fma testcluster build
	$(BIN)/python scripts/demo_cluster.py

## Every check: lint, types, import rules, unit, property, integration, e2e.
test: lint types imports unit property integration e2e

lint: install
	$(BIN)/ruff check fma tests bench scripts
	$(BIN)/ruff format --check fma tests bench scripts

types: install
	$(BIN)/mypy

imports: install
	$(BIN)/lint-imports

## The chart's unit tests render it with the control plane's helm: built first (a no-op once
## cached), and required, so that they never skip.
unit: install
	$(BIN)/fma testcluster build
	FMA_REQUIRE_HELM=1 $(BIN)/pytest -q tests/unit

## The property tier of `make test`: the derandomized ci profile (with the mutation canaries),
## then a short random search under a fresh seed, printed in the header for replay.
property: install
	HYPOTHESIS_PROFILE=ci $(BIN)/pytest -q tests/property
	HYPOTHESIS_PROFILE=explore $(BIN)/pytest -q tests/property --deselect tests/property/test_mutants.py

integration: install
	$(BIN)/fma testcluster build
	$(BIN)/pytest -q tests/integration

e2e: install
	$(BIN)/python -m fma.launcher.vllm_env ensure
	$(BIN)/pytest -q tests/e2e

## Nightly: at least 10,000 examples per property under one session seed, printed in the
## header and in every failure; FMA_HYPOTHESIS_SEED=N make soak replays that session.
soak: install
	HYPOTHESIS_PROFILE=nightly $(BIN)/pytest -q tests/property

crds: install
	$(BIN)/fma crds --out-dir crds
	$(BIN)/fma policies > deploy/admission-policies.yaml
	cp $(addprefix crds/,$(CHART_CRDS)) charts/fma/crds/
	cp deploy/admission-policies.yaml charts/fma/files/admission-policies.yaml

## After an intended change to what the chart renders: rewrite its snapshots (review the diff).
chart-snapshots: install
	FMA_UPDATE_SNAPSHOTS=1 $(BIN)/pytest -q tests/unit/chart/test_snapshots.py

clean:
	rm -rf $(VENV) $(OUT) .mypy_cache .pytest_cache .ruff_cache .hypothesis
