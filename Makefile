# Two commands on a fresh machine (python3, pip, make): `make run` and `make test`.
# uv is installed into .tools/ if it is not on PATH; the environment comes from uv.lock.
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
export UV_PYTHON_DOWNLOADS := never
# Precompiled bytecode: saves ~6 s per run where PYTHONDONTWRITEBYTECODE is set (GX is large).
export UV_COMPILE_BYTECODE := 1

.PHONY: run test bench dev serve sample lint clean

$(CURDIR)/.tools/bin/uv:
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --target $(CURDIR)/.tools uv==$(UV_VERSION)

.venv/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen
	@touch $@

run: .venv/.synced  ## the whole pipeline on the bundled sample; prints the KPI table
	$(UV) run govmetrics refresh

test: .venv/.synced  ## the test suite (real DuckDB files, real Dagster runs, real GX)
	$(UV) run pytest

bench: .venv/.synced  ## 1,000,000-row case export: pipeline vs bare DuckDB; writes bench/results/
	$(UV) run python bench/bench_cases.py

dev: .venv/.synced  ## the Dagster UI on http://127.0.0.1:3000 with the bundled-sample defaults
	$(UV) run python -m pipelines.dev

serve: .venv/.synced  ## webserver + daemon (sensor, schedule, run queue) on the configured instance, as deploy/ does
	$(UV) run python -m pipelines.serve

sample: .venv/.synced  ## regenerate the bundled sample deterministically
	$(UV) run python data/generate_sample.py

lint: .venv/.synced
	$(UV) run ruff check .

clean:
	rm -rf var .venv .tools
