# Dashboard (issue 7): Vue 3 + Vite in frontend/. Needs Node >= 20.19 with npm; Chromium (Debian)
# drives the browser test in tests/e2e/test_dashboard.py through playwright-core.

# fonts-nanum: Korean glyphs in the browser test's screenshots (Debian's Chromium brings none).
APT_PACKAGES += chromium fonts-nanum
INSTALL_EXTRA += frontend-install frontend-build
TEST_EXTRA += frontend-test
LINT_EXTRA += frontend-typecheck contract-check

FRONTEND := frontend
NPM ?= npm
# What the build reads; dist/ is rebuilt only when one of these changed.
FRONTEND_SOURCES := $(shell find $(FRONTEND)/src $(FRONTEND)/public -type f 2>/dev/null) \
	$(wildcard $(FRONTEND)/index.html $(FRONTEND)/vite.config.ts $(FRONTEND)/tsconfig*.json $(FRONTEND)/env.d.ts)

.PHONY: frontend-install frontend-build frontend-test frontend-dev frontend-typecheck contract contract-check
frontend-install: $(FRONTEND)/node_modules/.installed ## dashboard dependencies (npm ci, from package-lock.json)

$(FRONTEND)/node_modules/.installed: $(FRONTEND)/package.json $(FRONTEND)/package-lock.json
	@command -v $(NPM) >/dev/null || { echo "npm not found: install Node.js >= 20.19 (with npm)"; exit 1; }
	cd $(FRONTEND) && $(NPM) ci --no-audit --no-fund --loglevel=error
	touch $@

frontend-build: $(FRONTEND)/dist/index.html ## build the dashboard into frontend/dist (type-checks with vue-tsc first)

$(FRONTEND)/dist/index.html: $(FRONTEND)/node_modules/.installed $(FRONTEND_SOURCES) $(FRONTEND)/package-lock.json
	cd $(FRONTEND) && $(NPM) run --silent build
	touch $@

frontend-test: frontend-install ## dashboard unit tests (Vitest)
	cd $(FRONTEND) && $(NPM) run --silent test

frontend-typecheck: frontend-install ## type-check the dashboard (vue-tsc)
	cd $(FRONTEND) && $(NPM) run --silent typecheck

frontend-dev: frontend-install ## dashboard dev server on :5173 with hot reload (API from frontend/public/config.js)
	cd $(FRONTEND) && $(NPM) run dev

# The dashboard's wire types are generated from the consumer's OpenAPI document and the WebSocket
# messages' JSON Schemas (common/messages.py) by openapi-typescript, and committed (issue 19).
CONTRACT_DIR := $(FRONTEND)/src/api/generated
CONTRACT := $(PY) scripts/export_contract.py

contract: frontend-install ## regenerate the dashboard's API types (frontend/src/api/generated) from the Python models
	$(CONTRACT) --out $(CONTRACT_DIR)

contract-check: frontend-install ## fail when the committed API types differ from what the Python models generate
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(CONTRACT) --out "$$tmp" >/dev/null && \
	if ! diff -ru $(CONTRACT_DIR) "$$tmp"; then \
	  echo "$(CONTRACT_DIR) is stale: run \`make contract\` and commit the result"; exit 1; \
	fi
