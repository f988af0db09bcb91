# nikita-tasks. `make run` and `make test` set everything up from a fresh clone.
# DATABASE_URL=postgresql://... points any target at an existing cluster instead of the
# embedded one (scripts/db.sh).
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help run test migrate lint bench bench-scale schema db-up db-down psql setup venv packages cron cron-remove clean

help:
	@echo "make run       set up, migrate, schedule cron jobs, run the shim in the foreground"
	@echo "make test      set up, then every pgTAP and pytest suite and lint"
	@echo "make migrate   apply sql/, functions/, cron/ to DATABASE_URL or the embedded cluster"
	@echo "make lint      sqlfluff, plpgsql_check, ruff"
	@echo "make bench     benchmarks into bench/RESULTS.md"
	@echo "make bench-scale  decay over 10M players beside app writes (PLAYERS=...), bench/SCALE-RESULTS.md"
	@echo "make schema    regenerate docs/schema.sql (pg_dump of a fresh migrate)"
	@echo "make db-up | db-down | psql    the embedded PostgreSQL"

packages:
	@scripts/db.sh packages

$(STAMP): pyproject.toml
	@command -v python3 >/dev/null || { echo "python3 (>= 3.11) is required"; exit 1; }
	@python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "python3 >= 3.11 is required, found $$(python3 --version)"; exit 1; }
	@test -x $(PY) || python3 -m venv $(VENV) \
		|| { echo "python3 -m venv failed: install python3-venv"; exit 1; }
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[dev]'
	@touch $@

venv: $(STAMP)

setup: packages venv

db-up: packages
	@scripts/db.sh up

db-down:
	@scripts/db.sh down

psql:
	@psql "$${DATABASE_URL:-$$(scripts/db.sh up)}"

migrate: packages
	@DATABASE_URL="$${DATABASE_URL:-$$(scripts/db.sh up)}" scripts/migrate.sh

cron-remove:
	@DATABASE_URL="$${DATABASE_URL:-$$(scripts/db.sh up)}" scripts/cron.sh remove

# Re-apply the schedule (e.g. after nikita.set_job_schedule when pg_cron is in another database).
cron: packages
	@DATABASE_URL="$${DATABASE_URL:-$$(scripts/db.sh up)}" scripts/cron.sh schedule

run: setup migrate
	@export DATABASE_URL="$${DATABASE_URL:-$$(scripts/db.sh url)}"; \
		echo "nikita-tasks: database $$DATABASE_URL migrated, cron jobs scheduled"; \
		exec $(VENV)/bin/nikita-shim run

test: setup
	@scripts/test.sh

lint: setup
	@scripts/test.sh --lint-only

bench: setup
	@scripts/bench.sh

# Not part of bench: builds PLAYERS (default 10,000,000) players, several GB and minutes.
bench-scale: setup
	@bench/scale_bench.sh

# docs/schema.sql: the schema of a fresh migrate, compared by the tests (scripts/schema.sh).
schema: setup
	@scripts/schema.sh > docs/schema.sql.tmp && mv docs/schema.sql.tmp docs/schema.sql \
		|| { rm -f docs/schema.sql.tmp; exit 1; }
	@echo "docs/schema.sql regenerated"

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
