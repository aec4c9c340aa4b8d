# Search engine: OpenSearch from Maven Central (scripts/opensearch.sh; docs/SEARCH.md).
INSTALL_EXTRA += opensearch-fetch

.PHONY: opensearch-fetch opensearch-up opensearch-down
opensearch-fetch: ## fetch OpenSearch and its analysis-common module from Maven Central (cached in ~/.cache/news-suite)
	scripts/opensearch.sh fetch
opensearch-up: ## start OpenSearch only (OPENSEARCH_PORT, default 9200)
	scripts/opensearch.sh start
opensearch-down: ## stop OpenSearch
	scripts/opensearch.sh stop

.PHONY: reindex bench-indexing bench-search
reindex: ## rebuild the search index from news.analyzed, then its story links (fresh consumer groups; docs/SEARCH.md)
	$(PY) -m indexer.reindex
bench-indexing: ## bulk-indexing throughput and index size per article on 20,000 real texts (~2 min; saves `indexing`)
	$(PY) -m bench.indexing --articles 20000 --save
bench-search: ## search p95 over 100,000 real-text articles, disk and Redis per article (15+ min on 2 cores; saves `search`)
	$(PY) -m bench.search --docs 100000 --rounds 5 --save
