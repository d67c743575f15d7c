# Two commands on a fresh machine (python3, pip, make): `make run` and `make test`.
# uv is installed into .tools/ if it is not on PATH; the environment comes from uv.lock.
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
export UV_PYTHON_DOWNLOADS := never
# Precompiled bytecode: saves ~6 s per run where PYTHONDONTWRITEBYTECODE is set (GX is large).
export UV_COMPILE_BYTECODE := 1

.PHONY: run status sql test bench dev serve sample bulletins lint clean

$(CURDIR)/.tools/bin/uv:
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --target $(CURDIR)/.tools uv==$(UV_VERSION)

.venv/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen
	@touch $@

# The environment's own console scripts: no `uv` needed on PATH, and no re-sync on every call.
GOVMETRICS := .venv/bin/govmetrics

run: .venv/.synced  ## the whole pipeline on the bundled sample: progress, then the run summary
	@$(GOVMETRICS) refresh

status: .venv/.synced  ## freshness per dataset and department, last batches, failing checks
	@$(GOVMETRICS) status

sql: .venv/.synced  ## read-only SQL shell on the published warehouse (analysts)
	@$(GOVMETRICS) sql

test: .venv/.synced  ## the test suite (real DuckDB files, real Dagster runs, real GX)
	$(UV) run pytest

ROWS ?= 1M
ENCODING ?= utf-8
bench: .venv/.synced  ## whole refresh vs bare DuckDB vs pandas+GX: make bench [ROWS=10M|full] [ENCODING=gbk] [INCREMENTAL=1] [KEEP=1]
	$(UV) run python bench/bench_refresh.py --rows $(ROWS) --encoding $(ENCODING) $(if $(INCREMENTAL),--incremental) \
		$(if $(BENCH_DIR),--workdir $(BENCH_DIR)) $(if $(KEEP),--keep)

dev: .venv/.synced  ## the Dagster UI on http://127.0.0.1:3000 with the bundled-sample defaults
	@.venv/bin/python -m pipelines.dev

bulletins: .venv/.synced  ## the bulletin of every month of the published warehouse (after `make run`)
	$(UV) run python -m pipelines.archive

serve: .venv/.synced  ## webserver + daemon (sensor, schedule, run queue) on the configured instance, as deploy/ does
	$(UV) run python -m pipelines.serve

sample: .venv/.synced  ## regenerate the bundled sample deterministically
	$(UV) run python data/generate_sample.py

lint: .venv/.synced
	$(UV) run ruff check .

clean:
	rm -rf var .venv .tools
