# Search engine: OpenSearch from Maven Central (scripts/opensearch.sh; docs/SEARCH.md).
INSTALL_EXTRA += opensearch-fetch

.PHONY: opensearch-fetch opensearch-up opensearch-down
opensearch-fetch: ## fetch OpenSearch and its analysis-common module from Maven Central (cached in ~/.cache/news-suite)
	scripts/opensearch.sh fetch
opensearch-up: ## start OpenSearch only (OPENSEARCH_PORT, default 9200)
	scripts/opensearch.sh start
opensearch-down: ## stop OpenSearch
	scripts/opensearch.sh stop

.PHONY: reindex bench-indexing
reindex: ## rebuild the search index from news.analyzed (fresh consumer group, earliest offset; docs/SEARCH.md)
	$(PY) -m indexer.reindex
bench-indexing: ## bulk-indexing throughput and index size per article on real texts (docs/SEARCH.md)
	$(PY) -m bench.indexing --articles 20000
