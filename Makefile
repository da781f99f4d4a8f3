# The two commands a newcomer needs: `make run` and `make test`. Both set everything up.
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup services run test lint bench

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

setup: $(VENV)/.installed

services:
	bash scripts/services-up.sh

run: setup services
	bash scripts/run-gateway.sh

lint: setup
	$(BIN)/ruff check gateway connectors tests bench
	$(BIN)/ruff format --check gateway connectors tests bench

test: setup services lint
	$(BIN)/pytest -q -p no:cacheprovider

bench: setup services
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench.mapping
	$(BIN)/python -m bench.intake
	$(BIN)/python -m bench.delivery
