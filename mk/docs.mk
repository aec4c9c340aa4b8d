# The documentation site (MkDocs, Material theme; both pinned in the dev extra). `make lint` builds it, so a
# broken link, a page missing from mkdocs.yml's navigation or an undocumented setting fails CI.
.PHONY: docs docs-serve docs-reference
LINT_EXTRA += docs

docs-reference: $(VENV)/.installed ## generate the site's reference pages (configuration, HTTP API) and front page from the code
	$(PY) scripts/gen_docs.py

docs: docs-reference ## build the documentation site into site/ (strict: broken links fail)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

docs-serve: docs-reference ## serve the documentation site on :8008 with live reload
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve --dev-addr 127.0.0.1:8008
