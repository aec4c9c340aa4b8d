# Fault injection and hostile input (issue 10): tests/chaos (marker `chaos`) and tests/security.
# Both also run in `make test` (pytest collects every folder under tests/), so CI runs them there;
# `make chaos` runs them alone and rewrites the measured table of docs/RELIABILITY.md from their JSON.
# It includes tests/chaos/test_openapi_fuzz.py: schemathesis (--checks all, a fresh seed) against producer,
# consumer and inference, whose figures go to test-artifacts/fuzz/ (`FUZZ_SEED=<n>` repeats a run). That
# randomised run is the one chaos case `make test` leaves out (NEWS_LONG_FUZZ=1 selects it): the test suite
# fuzzes every service with a fixed seed in tests/integration, so a CI run is repeatable.

CHAOS_ARTIFACTS := test-artifacts/chaos

.PHONY: chaos chaos-quick chaos-report chaos-fuzz
chaos: install ## fault injection + hostile input on real processes; rewrites docs/RELIABILITY.md's table (~5 min)
	rm -rf $(CHAOS_ARTIFACTS)
	NEWS_LONG_FUZZ=1 $(PY) -m pytest tests/chaos tests/security; status=$$?; $(PY) -m tests.support.chaos_report; exit $$status

chaos-quick: install ## the chaos suite without the slow Kafka/Redis restart cases
	$(PY) -m pytest tests/chaos tests/security -m "not slow_chaos"

chaos-report: ## rewrite docs/RELIABILITY.md's table from the last run's $(CHAOS_ARTIFACTS)/*.json
	$(PY) -m tests.support.chaos_report

chaos-fuzz: install ## only the randomised schemathesis runs (all checks) against producer, consumer, inference (~7 min)
	NEWS_LONG_FUZZ=1 $(PY) -m pytest tests/chaos/test_openapi_fuzz.py
