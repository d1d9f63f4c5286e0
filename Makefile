# One entry point for people and CI. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO := demo

.PHONY: help demo test e2e airflow lint fmt mutants bench bench-ingest bench-reconcile postgres-bin sshd-bin chromium-bin db-stop clean

help:  ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): setup.cfg constraints.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	  echo "python3 -m venv failed: installing Debian's python3-venv" >&2; \
	  apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install -q -U pip
	$(BIN)/pip install -q -c constraints.txt setuptools wheel
	$(BIN)/pip install -q -c constraints.txt --no-build-isolation -e '.[test,airflow,quality]'
	@touch $@

postgres-bin:  ## install Debian's PostgreSQL server when it is missing (needs root)
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null; \
	  else echo "PostgreSQL server binaries are missing: sudo apt-get install postgresql" >&2; exit 1; fi; \
	fi

sshd-bin:  ## install Debian's OpenSSH server when it is missing (needs root; the SFTP tests)
	@if [ ! -x /usr/sbin/sshd ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-server >/dev/null; \
	  else echo "sshd is missing: the SFTP tests will be skipped (sudo apt-get install openssh-server)" >&2; fi; \
	fi

chromium-bin:  ## install Debian's Chromium when it is missing (needs root; the report's browser test)
	@if ! command -v chromium >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
	  else echo "chromium is missing: the report's browser test will be skipped (sudo apt-get install chromium)" >&2; fi; \
	fi

# The demo keeps its own embedded database inside demo/, so that every run starts afresh.
DEMO_HOME := $(abspath $(DEMO))/.cnss-edi

demo: $(STAMP) postgres-bin  ## sample files in, declarations, acknowledgements and a summary out
	@CNSS_EDI_HOME=$(DEMO_HOME) $(MAKE) --no-print-directory db-stop
	rm -rf $(DEMO)
	$(BIN)/cnss-edi sample --affiliate 1234567 --period 202610 --employees 250 --employers 3 --seed 7 --with-errors --out $(DEMO)/cnss
	@# CNSS's operators load the préétablis; each employer drops its declarations in its own box.
	CNSS_EDI_HOME=$(DEMO_HOME) $(BIN)/cnss-edi load-preetabli $(DEMO)/cnss/AFFEBDS_*.txt
	@for file in $(DEMO)/cnss/DS_*.txt; do box=$(DEMO)/inbox/$$(basename $$file | cut -d_ -f2)/in; \
	  mkdir -p $$box && mv $$file $$box/ && echo "dropped $$box/$$(basename $$file)"; done
	@# exit 1 means "some file rejected": the demo's _ERREURS file is meant to be
	CNSS_EDI_HOME=$(DEMO_HOME) $(BIN)/cnss-edi process --inbox $(DEMO)/inbox --outbox $(DEMO)/outbox \
	  || test $$? -eq 1
	@# The month to come: each sample employer gets an account; who would be reminded, when.
	@for file in $(DEMO)/cnss/AFFEBDS_*.txt; do affiliate=$$(basename $$file | cut -d_ -f2); \
	  CNSS_EDI_HOME=$(DEMO_HOME) $(BIN)/cnss-edi account add emp-$$affiliate --affiliate $$affiliate >/dev/null; done
	CNSS_EDI_HOME=$(DEMO_HOME) $(BIN)/cnss-edi deadline 202611
	CNSS_EDI_HOME=$(DEMO_HOME) $(BIN)/cnss-edi reminders 202611
	@# Today's penalties: 202610 was due on 10 November; its declarations arrive now, unpaid.
	CNSS_EDI_HOME=$(DEMO_HOME) $(BIN)/cnss-edi penalties run --outbox $(DEMO)/outbox
	CNSS_EDI_HOME=$(DEMO_HOME) $(BIN)/cnss-edi quality --period 202610 --out $(DEMO)/reports
	@CNSS_EDI_HOME=$(DEMO_HOME) $(BIN)/cnss-edi report --period 202610 --out $(DEMO)/reports

test: $(STAMP) postgres-bin sshd-bin chromium-bin  ## lint and type-check, then every test (starts its own PostgreSQL)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest -q

e2e: $(STAMP) postgres-bin sshd-bin  ## SFTP uploads through sshd and edi_ingest (dag.test()); last line JSON
	$(BIN)/python -m tests.e2e

# Options go through ARGS, e.g. make airflow ARGS='--every 10 --port 8081'.
airflow: $(STAMP) postgres-bin sshd-bin  ## Airflow on localhost:8080 with its own sshd, PostgreSQL and sample uploads
	$(BIN)/python -m tests.airflow_dev $(ARGS)

lint: $(STAMP)  ## ruff check, format check and mypy
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

fmt: $(STAMP)  ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

mutants: $(STAMP) postgres-bin  ## break each safety net on purpose: a test must notice every time
	$(BIN)/python tests/mutants.py

bench: $(STAMP) postgres-bin  ## throughput and memory figures on 1,000,000 employees, one JSON line
	$(BIN)/python -m cnss_edi.bench

bench-ingest: $(STAMP) postgres-bin sshd-bin  ## SFTP + edi_ingest figures: one big file, a 1,000-file deadline day
	$(BIN)/python -m tests.bench_ingest

bench-reconcile: $(STAMP) postgres-bin  ## a month of 160,000 employers and 3,000,000 lines reconciled, one JSON line
	$(BIN)/python -m cnss_edi.bench_reconcile

db-stop:  ## stop the embedded PostgreSQL that `make demo` (or `cnss-edi process`) left running
	@test ! -x $(BIN)/python || $(BIN)/python -c "from cnss_edi.postgres import LocalPostgres, \
	default_data_dir; LocalPostgres(default_data_dir()).stop()"

clean: db-stop  ## stop the embedded databases, remove them, the venv, demo output and .airflow
	@CNSS_EDI_HOME=$(DEMO_HOME) $(MAKE) --no-print-directory db-stop
	rm -rf $(VENV) .cnss-edi .airflow $(DEMO) *.egg-info
