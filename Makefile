# claimwatch developer commands. `make demo` runs the service with demo data; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install demo test unit lint kafka-start kafka-stop kafka-status topics bench bench-parse bench-price schemas clean

help:
	@echo "make demo        run broker + worker with the simulated demo group (Ctrl-C stops everything)"
	@echo "make test        run the whole test suite (starts and stops its own Kafka)"
	@echo "make unit        unit tests only (no broker)"
	@echo "make lint        ruff"
	@echo "make bench       benchmarks (prints one table, writes BENCHMARKS.md)"
	@echo "make soak        a worker under a steady stream for 10 minutes: memory bounded? (not in CI)"
	@echo "make kafka-start | kafka-stop | kafka-status"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

test: $(STAMP)
	bash scripts/run_tests.sh

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit -q

lint: $(STAMP)
	$(BIN)/ruff check .

kafka-start:
	bash deploy/kafka/kafka.sh start

kafka-stop:
	bash deploy/kafka/kafka.sh stop

kafka-status:
	bash deploy/kafka/kafka.sh status

topics: $(STAMP)
	$(BIN)/claimwatch topics create

schemas: $(STAMP)
	$(BIN)/python -m schemas.export

bench: $(STAMP)
	bash scripts/with_kafka.sh $(BIN)/python scripts/bench.py

soak: $(STAMP)
	bash scripts/with_kafka.sh $(BIN)/python scripts/soak.py

bench-parse: $(STAMP)
	$(BIN)/python scripts/bench_parse.py

bench-price: $(STAMP)
	$(BIN)/python scripts/bench_price.py

clean:
	rm -rf .state demo-out bench-out .pytest_cache .ruff_cache
