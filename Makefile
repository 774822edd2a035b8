# The two commands: `make demo` and `make test`. Each creates .venv if missing.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --disable-pip-version-check -q
# The CPU build of torch that is served locally; pinned first so that no later
# requirement pulls a CUDA build from the registry.
TORCH  := torch==2.13.0

.PHONY: demo test lint typecheck pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Stamps re-run the install when pyproject.toml changes.
$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(PIP) $(TORCH)
	$(PIP) -e ".[torch]"
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(PIP) $(TORCH)
	$(PIP) -e ".[all]"
# CrypTen (bench/bench_mpc.py): the exact pin is its last release (0.4.1, 2022); --no-deps
# because its metadata requires the deprecated `sklearn` package, whose build fails on
# purpose (and torchvision); what it imports is in the bench extra.
	$(PIP) --no-deps crypten==0.4.1
	touch $@ $(VENV)/.demo-installed

demo: $(VENV)/.demo-installed
	$(BIN)/privet demo

lint: $(VENV)/.test-installed
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples

typecheck: $(VENV)/.test-installed
	$(BIN)/mypy

pytest: $(VENV)/.test-installed
	$(BIN)/python -m pytest -n 2 --dist loadgroup --durations=15

test: lint typecheck pytest

bench: $(VENV)/.test-installed
	@for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
