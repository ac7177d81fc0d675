# The README's commands. Each target creates what it needs on a fresh machine and is
# quick when everything is already installed (stamp files track the installs).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BENCH_VENV := .venv-bench
EVIDENTLY_VENV := .venv-evidently
QUICK := $(if $(FULL),,--quick)
CHROMIUM := /usr/bin/chromium
# The suite runs on this many processes (pytest-xdist), a test file per process at a time.
TEST_WORKERS ?= 2

.PHONY: demo test lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[demo,serve]'
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.demo-installed

$(BENCH_VENV)/.bench-installed: pyproject.toml
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install -q -e '.[bench]'
	touch $@

# Evidently does not import under pandas 3: it gets an environment of its own, which
# bench/data.py calls in a subprocess.
$(EVIDENTLY_VENV)/.evidently-installed:
	test -x $(EVIDENTLY_VENV)/bin/python || $(PYTHON) -m venv $(EVIDENTLY_VENV)
	$(EVIDENTLY_VENV)/bin/python -m pip install -q --upgrade pip
	$(EVIDENTLY_VENV)/bin/python -m pip install -q 'evidently==0.7.23' 'pandas<3' pyarrow
	touch $@

# The MLflow client of the MLflow-compatibility tests (tests/mlflow_compat): MLflow's own
# packages in an environment of their own, driving a real `loopwise server` as a subprocess.
# MLflow 3 and MLflow 2 clients, one environment each.
MLFLOW_VENV := .venv-mlflow
MLFLOW_CLIENT := mlflow-skinny==3.17.2 scikit-learn pandas numpy skops
MLFLOW2_VENV := .venv-mlflow2
MLFLOW2_CLIENT := mlflow-skinny==2.22.4 scikit-learn pandas numpy
# The full MLflow (its tracking database, `mlflow server`) of the importer's tests
# (tests/interop): MLflow writes a real database and serves it; loopwise imports it.
MLFLOW_SERVER_VENV := .venv-mlflow-server
MLFLOW_SERVER := mlflow==3.17.2 scikit-learn

$(MLFLOW_VENV)/.mlflow-installed:
	test -x $(MLFLOW_VENV)/bin/python || $(PYTHON) -m venv $(MLFLOW_VENV)
	$(MLFLOW_VENV)/bin/python -m pip install -q --upgrade pip
	$(MLFLOW_VENV)/bin/python -m pip install -q $(MLFLOW_CLIENT)
	touch $@

$(MLFLOW2_VENV)/.mlflow-installed:
	test -x $(MLFLOW2_VENV)/bin/python || $(PYTHON) -m venv $(MLFLOW2_VENV)
	$(MLFLOW2_VENV)/bin/python -m pip install -q --upgrade pip
	$(MLFLOW2_VENV)/bin/python -m pip install -q $(MLFLOW2_CLIENT)
	touch $@

$(MLFLOW_SERVER_VENV)/.mlflow-installed:
	test -x $(MLFLOW_SERVER_VENV)/bin/python || $(PYTHON) -m venv $(MLFLOW_SERVER_VENV)
	$(MLFLOW_SERVER_VENV)/bin/python -m pip install -q --upgrade pip
	$(MLFLOW_SERVER_VENV)/bin/python -m pip install -q $(MLFLOW_SERVER)
	touch $@

## make demo: install loopwise and run the examples on a store of their own (./.loopwise-demo),
## reset on every run so each shows its own results; your ./.loopwise is never touched
demo: $(VENV)/.demo-installed
	$(BIN)/python examples/demo.py

## make test: lint, then the whole test suite (SQLite and PostgreSQL; the HTML reports in
## Debian's Chromium, installed here when missing)
test: lint $(MLFLOW_VENV)/.mlflow-installed $(MLFLOW2_VENV)/.mlflow-installed \
		$(MLFLOW_SERVER_VENV)/.mlflow-installed | $(CHROMIUM)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

# The browser tests (tests/reports) drive the system's Chromium through Playwright; they
# never download a browser (no `playwright install`).
$(CHROMIUM):
	command -v chromium >/dev/null 2>&1 || apt-get install -y chromium \
		|| (apt-get update && apt-get install -y chromium)

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.dev-installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## make bench: every benchmark against its leading alternative (FULL=1 for full sizes)
bench: $(BENCH_VENV)/.bench-installed $(EVIDENTLY_VENV)/.evidently-installed
	@for script in bench/*.py; do \
		case $$script in bench/_*) continue;; esac; \
		echo "== $$script"; \
		$(BENCH_VENV)/bin/python $$script $(QUICK) || exit 1; \
	done

clean:
	rm -rf $(VENV) $(BENCH_VENV) $(EVIDENTLY_VENV) $(MLFLOW_VENV) $(MLFLOW2_VENV) \
		$(MLFLOW_SERVER_VENV) .loopwise-demo .pytest_cache .ruff_cache
