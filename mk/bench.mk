# Benchmarks (issue 9): the engine, the whole pipeline on real Kafka and Redis, serving, scaling; each beside
# its baseline in the same run. Results: bench/results/latest.json, rendered into docs/BENCHMARKS.md.
# Knobs (environment; defaults in each bench/ module's docstring):
#   engine    BENCH_TIERS, BENCH_ENGINE_N, BENCH_FAST_N, BENCH_BATCHES, BENCH_ROUNDS, BENCH_PROFILE
#   pipeline  BENCH_PIPELINE_SECONDS, BENCH_PACED_SECONDS, BENCH_PACED_FLUSH, BENCH_SCALE_SECONDS
#   serving   BENCH_REST_ARTICLES, BENCH_REST_SECONDS, BENCH_REST_CONNECTIONS, BENCH_REST_RATE,
#             BENCH_REST_ROUNDS, BENCH_REST_WORKERS2
#   websocket BENCH_WS_CLIENTS, BENCH_WS_MESSAGES, BENCH_WS_RATE, BENCH_WS_CLIENT_PROCS, BENCH_WS_STUCK, BENCH_WS_DEFLATE
#   stream_layer  BENCH_STREAM_ARTICLES, BENCH_STREAM_CODECS;  story_stage  BENCH_STORY_ARTICLES
#   indexing  BENCH_INDEXING_ARTICLES;  search  BENCH_SEARCH_DOCS, BENCH_SEARCH_ROUNDS (make bench-search: 100,000)
#   all       BENCH_QUICK=1 shrinks every stage (a smoke run, not figures to publish); BENCH_KEEP_LOGS=1 keeps
#             the services' logs; BENCH_TIMEOUT (s) bounds the whole command (SIGTERM, then everything is stopped).
# Kafka and Redis are reused when they listen on KAFKA_PORT/REDIS_PORT, else started and stopped again.

BENCH_TIMEOUT ?= 2700
BENCH_PY_TOOLS := py-spy
BENCH_RUN := timeout -k 30 $(BENCH_TIMEOUT) $(PY) -m bench

.PHONY: bench bench-tools bench-engine bench-pipeline bench-serving bench-websocket bench-stream-layer bench-stories bench-report
bench-tools: $(VENV)/.installed inference-models ## benchmark tools: py-spy (pinned in the dev extra), wrk (apt)
	@test -x $(VENV)/bin/py-spy || $(PIP) install -q $$($(PY) -c "import tomllib; dev = tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['dev']; print(' '.join(d for d in dev if d.split('==')[0] in '$(BENCH_PY_TOOLS)'.split()))")
	@command -v wrk >/dev/null || { if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq wrk >/dev/null 2>&1 \
	  || echo "wrk not installed: REST throughput falls back to the Python load generator"; }

bench: bench-tools ## every benchmark (~25 min on 2 cores, bounded at 45): docs/BENCHMARKS.md + bench/results/latest.json
	$(BENCH_RUN) all

bench-engine: bench-tools ## inference engine only, per tier, with its baselines (1-4 min), then the report
	$(BENCH_RUN) engine report

bench-pipeline: bench-tools ## whole pipeline on real Kafka/Redis: max rate, half rate, 1 vs 2 workers (~6 min)
	$(BENCH_RUN) pipeline report

bench-serving: bench-tools ## REST under load (wrk), beside a bare FastAPI+Redis endpoint (~3 min)
	$(BENCH_RUN) serving report

bench-websocket: bench-tools ## WebSocket fan-out: one consumer process, 10,000 clients (~1 min)
	$(BENCH_RUN) websocket report

bench-stream-layer: bench-tools ## the stream layer alone (no-op analyser): one worker, produce -> stored, per codec (~2 min)
	$(BENCH_RUN) stream_layer report

bench-stories: bench-tools ## the story stage: CPU per article and memory over 100,000 articles (~4 min)
	$(BENCH_RUN) story_stage report

bench-report: ## render docs/BENCHMARKS.md from bench/results/latest.json (no measuring)
	$(PY) -m bench report
