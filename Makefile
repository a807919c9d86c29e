# slicebroker — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON   ?= python3
VENV     ?= .venv
PY       := $(VENV)/bin/python
STAMP    := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
PROTO_SRC := $(wildcard protos/slicebroker/v1/*.proto)
GOOGLEAPIS = $(shell $(PY) -c 'import google.rpc, os; print(os.path.dirname(os.path.dirname(google.rpc.__path__[0])))')

.PHONY: help setup run test test-unit test-integration test-api lint fmt protos check-protos bench clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[1m%-16s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

setup: $(STAMP) ## create .venv and install slicebroker with its dev tools

run: $(STAMP) ## start Redis, the four services and a demo facility; Ctrl-C stops all
	$(VENV)/bin/slicebroker-mesh --facility examples/facility.yaml --tenants examples/tenants.yaml

test: $(STAMP) ## run the whole test suite (starts its own Redis servers)
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-unit: $(STAMP) ## unit tests only
	$(PY) -m pytest -q tests/unit $(PYTEST_ARGS)

lint: $(STAMP) ## ruff, mypy and import-linter
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy services clients
	$(VENV)/bin/lint-imports

fmt: $(STAMP) ## format and autofix
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

protos: $(STAMP) ## regenerate Python code from protos/
	$(PY) -m grpc_tools.protoc -Iprotos -I$(GOOGLEAPIS) \
	  --python_out=protos --pyi_out=protos --grpc_python_out=protos $(PROTO_SRC)

check-protos: $(STAMP) ## fail if the generated code in protos/ differs from what the .proto files give
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(PY) -m grpc_tools.protoc -Iprotos -I$(GOOGLEAPIS) \
	  --python_out=$$tmp --pyi_out=$$tmp --grpc_python_out=$$tmp $(PROTO_SRC) && \
	for f in $$(cd $$tmp && find . -type f); do \
	  cmp -s "$$tmp/$$f" "protos/$$f" || { echo "stale: protos/$${f#./} (run 'make protos')"; exit 1; }; \
	done && echo "generated code matches protos/"

bench: $(STAMP) ## run the benchmarks; results go to bench/results/*.json
	$(PY) -m bench $(BENCH_ARGS)

clean: ## remove .run/ state (Redis data of `make run`)
	rm -rf .run
