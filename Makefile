# continust: every target sets up what it needs (virtualenv, packages, Kafka jars, broker).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
# kustomize renders k8s/ in the tests: built from source with Go into a project-local folder
GO ?= $(shell command -v go || echo /usr/local/go/bin/go)
TOOLS := .tools/bin
KUSTOMIZE_VERSION := v5.8.0
KUSTOMIZE_STAMP := $(TOOLS)/.kustomize-$(KUSTOMIZE_VERSION)
OTEL_STAMP := $(VENV)/.installed-otel
# Debian's packages, installed one make at a time (flock: two checkouts running make test side by
# side would otherwise race for dpkg's lock), waiting for any other apt run to let go of it
APT := flock /var/lock/continust-apt.lock env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600
APT_UPDATE := flock /var/lock/continust-apt.lock apt-get -o DPkg::Lock::Timeout=600 update -qq
BENCH_ARGS ?=
SHAPES_ARGS ?=
QUERY_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv prometheus tools tini demo test test-unit test-integration bench lint format kafka-up kafka-down kafka-status clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "event=setup.error reason=\"$(PYTHON) not found\""; exit 1; }
	@echo "event=setup.venv path=$(VENV)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "event=setup.install extras=dev"
	@$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

$(BENCH_STAMP): $(STAMP) pyproject.toml
	@echo "event=setup.install extras=dev,bench"
	@$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	@touch $(BENCH_STAMP)

$(OTEL_STAMP): $(STAMP) pyproject.toml
	@echo "event=setup.install extras=dev,otel"
	@$(BIN)/python -m pip install --quiet -e '.[dev,otel]'
	@touch $(OTEL_STAMP)

venv: $(STAMP) ## create the virtualenv and install continust with its dev tools

# Debian's prometheus package (prometheus, promtool) for the alert-rule and scrape tests; only
# when promtool is missing. policy-rc.d (exit 101) keeps the package's scripts from starting a
# daemon; a policy this recipe did not write stays as it was.
prometheus: ## install Prometheus and promtool (Debian's package, as root) unless promtool is there
	@command -v promtool >/dev/null 2>&1 || { \
		echo "event=setup.install package=prometheus"; \
		test "$$(id -u)" -eq 0 || { echo "event=setup.error reason=\"installing prometheus needs root\""; exit 1; }; \
		own_policy=0; test -e /usr/sbin/policy-rc.d || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; \
			chmod +x /usr/sbin/policy-rc.d; own_policy=1; }; \
		{ $(APT) install -y -qq --no-install-recommends prometheus >/dev/null \
			|| { $(APT_UPDATE) && $(APT) install -y -qq \
				--no-install-recommends prometheus >/dev/null; }; }; status=$$?; \
		test $$own_policy -eq 0 || rm -f /usr/sbin/policy-rc.d; \
		test $$status -eq 0 && command -v promtool >/dev/null 2>&1; }

$(KUSTOMIZE_STAMP):
	@test -x $(GO) || { echo "event=setup.error reason=\"go not found (GO=$(GO))\""; exit 1; }
	@echo "event=setup.install tool=kustomize version=$(KUSTOMIZE_VERSION) path=$(TOOLS)"
	@mkdir -p $(TOOLS)
	@GOBIN=$(CURDIR)/$(TOOLS) $(GO) install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)
	@touch $(KUSTOMIZE_STAMP)

# tini is the image's entrypoint; the deployment test runs the worker under it as PID 1.
tini: ## install tini (Debian's package, as root) unless it is there
	@command -v tini >/dev/null 2>&1 || { \
		echo "event=setup.install package=tini"; \
		test "$$(id -u)" -eq 0 || { echo "event=setup.error reason=\"installing tini needs root\""; exit 1; }; \
		$(APT) install -y -qq --no-install-recommends tini >/dev/null \
			|| { $(APT_UPDATE) && $(APT) install -y -qq \
				--no-install-recommends tini >/dev/null; }; \
		command -v tini >/dev/null 2>&1; }

tools: $(KUSTOMIZE_STAMP) tini ## kustomize (built with Go into .tools/bin) and tini, for the deployment tests

kafka-up: $(STAMP) ## fetch the Kafka jars (first time) and start the local broker on 127.0.0.1:9092
	@$(BIN)/continust kafka start

kafka-down: $(STAMP) ## stop the local broker this folder started
	@$(BIN)/continust kafka stop

kafka-status: $(STAMP) ## is the local broker running?
	@$(BIN)/continust kafka status

demo: $(STAMP) ## the main job and a Python pipeline: broker, topics, a worker each and live event generators (Ctrl-C stops all)
	@$(BIN)/continust demo -c examples/pipelines.toml -c examples/big_purchases.py

test: $(STAMP) $(BENCH_STAMP) $(OTEL_STAMP) prometheus tools ## all tests: unit (beside) and integration on a real broker (started on port 19092); the bench extra too, for the bench run test, and the otel extra, for the tracing tests
	@echo "event=test.unit log=.unit-tests.log detail=\"the unit tests, then the integration tests marked beside (a broker of their own), run beside the other integration tests\""
	@{ CONTINUST_FULL_SUITE=1 $(BIN)/python -m pytest -p no:cacheprovider -q -ra -m "not integration" tests; first=$$?; \
		CONTINUST_FULL_SUITE=1 $(BIN)/python -m pytest -p no:cacheprovider -q -ra --durations=5 -m "integration and beside" tests; \
		second=$$?; test $$first -eq 0 -a $$second -eq 0; } > .unit-tests.log 2>&1 & unit=$$!; \
		CONTINUST_FULL_SUITE=1 $(BIN)/python -m pytest -p no:cacheprovider -q -ra --durations=15 -m "integration and not beside" tests; \
		integration=$$?; wait $$unit; units=$$?; echo "event=test.unit.done status=$$units"; cat .unit-tests.log; \
		test $$integration -eq 0 -a $$units -eq 0

test-unit: $(STAMP) $(OTEL_STAMP) prometheus tools ## the unit tests only (no broker)
	@$(BIN)/python -m pytest -p no:cacheprovider -q -m "not integration" tests

test-integration: $(STAMP) $(BENCH_STAMP) $(OTEL_STAMP) prometheus tools ## the integration tests only (real broker)
	@CONTINUST_FULL_SUITE=1 $(BIN)/python -m pytest -p no:cacheprovider -q -ra -m integration tests

bench: $(STAMP) $(BENCH_STAMP) ## throughput and latency against the raw consumer, Faust and Quix Streams, the state shapes, the query API under load, then queries through a rolling restart (docs/benchmarks.md; BENCH_ARGS="--events 200000", SHAPES_ARGS="--scale 0.1", QUERY_ARGS="--seconds 10", SCALE_ARGS="--keys 20000", AVAILABILITY_ARGS="--backlog 20000")
	@$(BIN)/python -m bench $(BENCH_ARGS); main=$$?; $(BIN)/python -m bench.shapes $(SHAPES_ARGS); shapes=$$?; \
		$(BIN)/python -m bench.query_load $(QUERY_ARGS); query=$$?; \
		$(BIN)/python -m bench.query_scale $(SCALE_ARGS); scale=$$?; \
		$(BIN)/python -m bench.availability $(AVAILABILITY_ARGS); availability=$$?; \
		test $$main -eq 0 -a $$shapes -eq 0 -a $$query -eq 0 -a $$scale -eq 0 -a $$availability -eq 0

lint: $(STAMP) ## ruff, mypy and import-linter (layers agents > streams > windows, no import cycle)
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .
	@$(BIN)/mypy
	@$(BIN)/lint-imports

format: $(STAMP) ## apply ruff's fixes and formatting
	@$(BIN)/ruff check --fix .
	@$(BIN)/ruff format .

clean: ## remove the virtualenv, broker data and caches (keeps nothing running)
	-@test -x $(BIN)/continust && $(BIN)/continust kafka stop
	rm -rf $(VENV) .tools .kafka .data .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .hypothesis .unit-tests.log
