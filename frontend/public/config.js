// Runtime configuration of the dashboard, loaded before the app (see frontend/README.md).
// This file is a default for development; whoever serves dist/ replaces it
// (scripts/serve_dashboard.py generates it, the containers' nginx serves its own).
// It never holds a token: a protected API is reached through a proxy that adds the read token itself.
window.__NEWS_CONFIG__ = window.__NEWS_CONFIG__ || {
  apiBase: 'http://127.0.0.1:8002',
}
