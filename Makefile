# The two commands a newcomer needs: `make run` (the demo) and `make test`. Both set everything up.
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup services run serve test lint bench

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

setup: $(VENV)/.installed

services:
	bash scripts/services-up.sh

# The whole product with sandboxes for ERP, WMS, carrier and CRM, a few returns, their paths printed.
run: setup services
	$(BIN)/returns-gateway demo

# The gateway alone on :8080 with a fresh API key (routing by routes.yaml).
serve: setup services
	bash scripts/run-gateway.sh

# ruff, then which way dependencies may run (import-linter contracts in pyproject.toml).
lint: setup
	$(BIN)/ruff check gateway connectors tests bench
	$(BIN)/ruff format --check gateway connectors tests bench
	$(BIN)/lint-imports --no-cache

test: setup services lint
	$(BIN)/pytest -q -p no:cacheprovider

bench: setup services
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench.mapping
	$(BIN)/python -m bench.edi
	$(BIN)/python -m bench.intake --duration 10 --rounds 9
	$(BIN)/python -m bench.delivery
