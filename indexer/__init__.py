"""The search indexer (issue 16): `news.analyzed` -> OpenSearch, as its own process (see indexer.main)."""
