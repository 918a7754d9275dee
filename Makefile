# Every target creates the virtual environment on first use: a fresh clone needs only `make`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-dev
PORT   ?= 5000
DPORT  ?= 8080
MPORT  ?= 5001
RUN    ?=
SWEEP  ?= lr_activation
ARGS   ?=
GROUPS ?=
STORE  := $(CURDIR)/mlruns

.PHONY: help install test test-all lint train gradcheck reproduce-report verify-report sweep ui serve dashboard upload bench bench-sweeps mutate clean

help:
	@echo "make reproduce-report   the report's experiments, sweep, tables and figures -> reports/"
	@echo "make verify-report      re-derive every number of reports/report.md from the records"
	@echo "make test               the test suite (make test-all adds the full-data runs)"
	@echo "make train ARGS='experiment=relu optimizer.lr=0.05'"
	@echo "make gradcheck | make sweep SWEEP=lr_activation ARGS='n_trials=40 workers=2'"
	@echo "make ui [PORT=5000]     MLflow UI on 127.0.0.1 over mlruns/ (prints the links to open)"
	@echo "make serve RUN=<run id> [MPORT=5001]  a run's model over HTTP on 127.0.0.1"
	@echo "make dashboard [DPORT=8080]  optuna-dashboard on 127.0.0.1 over every study"
	@echo "make upload             send runs kept during a tracking outage to their store"
	@echo "make bench              seconds per epoch against the matrix-product floor, PyTorch, sklearn"
	@echo "make bench-sweeps       a sweep's share of time outside training; 1 vs 2 workers"
	@echo "make lint"
	@echo "make mutate [GROUPS=core]  mutation testing (mutmut; not part of make test): docs/mutation.md"

# `. .venv/bin/activate` then points plain MLflow (mlflow models serve, mlflow.search_runs) at
# the project's store instead of a new ./mlflow.db (tools/activate.py)
$(STAMP): pyproject.toml constraints.txt tools/activate.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	$(PY) -m tools.activate $(VENV)/bin/activate $(STORE)/mlflow.db
	touch $@

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadgroup -m "not slow"

test-all: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

train: $(STAMP)
	$(PY) -m pipeline.train $(ARGS)

gradcheck: $(STAMP)
	$(PY) -m pipeline.gradcheck $(ARGS)

reproduce-report: $(STAMP)
	$(PY) -m sweeps.report $(ARGS)

verify-report: $(STAMP)
	$(PY) -m verify $(ARGS)

sweep: $(STAMP)
	$(PY) -m sweeps sweep=$(SWEEP) $(ARGS)

ui: $(STAMP)
	$(PY) -m pipeline.tracking.ui --port $(PORT)

# as the README's `mlflow models serve`, from an activated venv: uvicorn on PATH, the store set;
# the model is named after its run (pipeline.serving finds the name)
serve: $(STAMP)
	@test -n "$(RUN)" || { echo "usage: make serve RUN=<run id> [MPORT=5001]"; exit 1; }
	@export PATH="$(CURDIR)/$(VENV)/bin:$$PATH" \
	    MLFLOW_TRACKING_URI="$${MLFLOW_TRACKING_URI:-sqlite:///$(STORE)/mlflow.db}"; \
	model=$$($(PY) -m pipeline.serving $(RUN)) || exit 1; \
	echo "mlflow models serve -m $$model --env-manager local --host 127.0.0.1 --port $(MPORT)"; \
	exec mlflow models serve -m "$$model" --env-manager local --host 127.0.0.1 --port $(MPORT)

dashboard: $(STAMP)
	@test -f $(STORE)/optuna/studies.journal || { echo "no study yet: run a sweep or make reproduce-report"; exit 1; }
	$(PY) -m sweeps.dashboard --port $(DPORT)

upload: $(STAMP)
	$(PY) -m pipeline.tracking.outbox

$(VENV)/.installed-bench: $(STAMP)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev,bench]'
	touch $@

bench: $(VENV)/.installed-bench
	$(PY) -m pipeline.bench $(ARGS)

bench-sweeps: $(STAMP)
	$(PY) -m sweeps.bench $(ARGS)

# Mutation testing, not part of `make test` or CI: [tool.mutmut] and [[tool.mutation.groups]] in
# pyproject.toml; the results go to mutants/ (git-ignored), the summary to mutants/summary.md.
mutate: $(STAMP)
	$(PY) -m tools.mutation.run $(GROUPS)

clean:
	rm -rf outputs reports .pytest_cache
