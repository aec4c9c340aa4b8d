# Benchmarks (issue 9): the engine, the whole pipeline on real Kafka and Redis, serving, scaling; each beside
# its baseline in the same run. Results: bench/results/latest.json, rendered into docs/BENCHMARKS.md.
# Knobs (environment): BENCH_ENGINE_N, BENCH_FAST_N, BENCH_TIERS, BENCH_BATCHES, BENCH_PROFILE,
# BENCH_PIPELINE_SECONDS, BENCH_PACED_SECONDS, BENCH_SCALE_SECONDS, BENCH_REST_SECONDS, BENCH_WS_CLIENTS,
# BENCH_WS_MESSAGES; BENCH_QUICK=1 shortens every stage (a smoke run, not figures to publish).

BENCH_TIMEOUT ?= 900
BENCH_PY_TOOLS := py-spy
BENCH_RUN := timeout -k 30 $(BENCH_TIMEOUT) $(PY) -m bench

.PHONY: bench bench-tools bench-engine bench-pipeline bench-serving bench-report
bench-tools: $(VENV)/.installed inference-models ## benchmark tools: py-spy (pinned in the dev extra), wrk (apt)
	@test -x $(VENV)/bin/py-spy || $(PIP) install -q $$($(PY) -c "import tomllib; dev = tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['dev']; print(' '.join(d for d in dev if d.split('==')[0] in '$(BENCH_PY_TOOLS)'.split()))")
	@command -v wrk >/dev/null || { if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq wrk >/dev/null 2>&1 \
	  || echo "wrk not installed: REST throughput falls back to the Python load generator"; }

bench: bench-tools ## every benchmark (<15 min on 2 cores): docs/BENCHMARKS.md + bench/results/latest.json
	$(BENCH_RUN) all

bench-engine: bench-tools ## inference engine only, per tier, with its baselines (~3 min), then the report
	$(BENCH_RUN) engine report

bench-pipeline: bench-tools ## whole pipeline on real Kafka/Redis: max rate, half rate, 1 vs 2 workers (~7 min)
	$(BENCH_RUN) pipeline report

bench-serving: bench-tools ## REST under load (wrk) and WebSocket fan-out to 1,000 clients (~2 min)
	$(BENCH_RUN) serving report

bench-report: ## render docs/BENCHMARKS.md from bench/results/latest.json (no measuring)
	$(PY) -m bench report
