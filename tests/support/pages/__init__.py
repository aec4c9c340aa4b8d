"""Saved article pages (written for these tests: nothing is downloaded) and the local HTTP server that
serves them to the full-text fetcher (producer/fulltext.py)."""
