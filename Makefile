# tradestream: `make run` and `make test` are all a new machine needs (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
DURATION ?=

.PHONY: run test services down status install lint bench bench-peers clean

run: services install  ## start everything and run a paper session (DURATION=seconds to stop and summarise)
	$(BIN)/tradestream run $(if $(DURATION),--duration $(DURATION))

test: services install lint  ## the whole suite against the real Kafka, Postgres and Redis
	$(BIN)/pytest -q

services:  ## install what is missing and start Kafka, Postgres and Redis (idempotent)
	infra/up

down:
	infra/down

status:
	infra/status

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: services install
	$(BIN)/python bench/tick_path.py
	$(BIN)/python bench/order_latency.py
	$(BIN)/python bench/risk_check.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# backtrader and NautilusTrader are only for the comparison bench. NautilusTrader pins an older uvloop than the
# platform, so it is installed without its dependency resolution (its own other needs are listed explicitly).
BENCH_PEERS := backtrader==1.9.78.123 msgspec==0.22.0 portion==2.6.3 fsspec==2025.12.0 tqdm==4.70.1
bench-peers: install
	$(BIN)/python -m pip install -q $(BENCH_PEERS)
	$(BIN)/python -m pip install -q --no-deps nautilus_trader==1.221.0
	$(BIN)/python bench/backtest_vs_peers.py
