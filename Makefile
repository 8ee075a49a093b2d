# Two entry points for a fresh machine: `make demo` and `make test`.
# Both bootstrap their own toolchain: a pinned uv in .tools/, then `uv sync --locked` into .venv/.

UV_VERSION := 0.13.8
PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: demo test lint typecheck pytest bench bench-pipeline sync clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --locked --python $(PYTHON)
	touch $@

sync: $(VENV)/.synced

demo: sync
	$(BIN)/recon demo

lint: sync
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: sync
	$(BIN)/mypy

pytest: sync
	$(BIN)/pytest

test: lint typecheck pytest

bench: sync
	$(BIN)/python -m bench.match_bench

bench-pipeline: sync
	$(BIN)/python -m bench.pipeline_bench

clean:
	rm -rf $(VENV) $(TOOLS) .mypy_cache .ruff_cache .pytest_cache .import_linter_cache
