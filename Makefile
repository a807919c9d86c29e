# slicebroker — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON   ?= python3
VENV     ?= .venv
PY       := $(VENV)/bin/python
STAMP    := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
PROTO_SRC := $(wildcard protos/slicebroker/v1/*.proto)
# The Go client (clients/go): generator versions are pinned; `go install` caches under GOPATH, not here.
GO                  ?= go
PROTOC_GEN_GO       := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.6
PROTOC_GEN_GO_GRPC  := google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.5.1
GO_MODULE           := slicebroker.io/go
GO_MAP = $(subst $(eval) ,,$(foreach f,$(PROTO_SRC),M$(f:protos/%=%)=$(GO_MODULE)/gen/slicebroker/v1;slicebrokerv1,))
GOOGLEAPIS = $(shell $(PY) -c 'import google.rpc, os; print(os.path.dirname(os.path.dirname(google.rpc.__path__[0])))')

.PHONY: soak help setup run test test-unit test-integration test-api lint fmt protos check-protos bench clean k8s-bins chart-check go-client check-go

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[1m%-16s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

setup: $(STAMP) ## create .venv and install slicebroker with its dev tools

run: $(STAMP) ## start Redis, the four services and a demo facility; Ctrl-C stops all
	$(VENV)/bin/slicebroker-mesh --facility examples/facility.yaml --tenants examples/tenants.yaml \
	  --price-book examples/pricebook.yaml

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

go-client: $(STAMP) ## regenerate the Go stubs in clients/go/gen from protos/ (needs go)
	$(GO) install $(PROTOC_GEN_GO)
	$(GO) install $(PROTOC_GEN_GO_GRPC)
	rm -rf clients/go/gen/slicebroker
	PATH="$$($(GO) env GOPATH)/bin:$$PATH" $(PY) -m grpc_tools.protoc -Iprotos -I$(GOOGLEAPIS) \
	  --go_out=clients/go/gen "--go_opt=module=$(GO_MODULE)/gen,$(GO_MAP)" \
	  --go-grpc_out=clients/go/gen "--go-grpc_opt=module=$(GO_MODULE)/gen,$(GO_MAP)" $(PROTO_SRC)

check-go: ## build, vet and test the Go client (its mesh tests skip unless SLICEBROKER_BROKER_ADDR is set)
	cd clients/go && $(GO) build ./... && $(GO) vet ./... && $(GO) test ./...

bench: $(STAMP) ## run the benchmarks; results go to bench/results/*.json
	$(PY) -m bench $(BENCH_ARGS)

SOAK_MINUTES ?= 10
soak: $(STAMP) ## kill -9 faults, fuzzing, isolation probes, SOAK_MINUTES of load and a 10,000-request burst → bench/results/soak.json
	SLICEBROKER_SOAK_MINUTES=$(SOAK_MINUTES) $(PY) -m bench soak

k8s-bins: ## build/install kube-apiserver, etcd, kwok, helm, kubectl into ~/.cache/slicebroker/k8s (tests/k8s needs them)
	nice -n 10 scripts/k8s-test-bins.sh

chart-check: $(STAMP) ## helm lint + render (helm/slicebroker/ci/*.yaml) + server-side dry run and install on a test API server
	$(PY) scripts/chart_schema.py --check
	SLICEBROKER_K8S_REQUIRED=1 $(PY) -m pytest -q -p no:cacheprovider tests/k8s/test_chart.py

clean: ## remove .run/ state (Redis data of `make run`)
	rm -rf .run
