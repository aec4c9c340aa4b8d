// Runtime configuration of the dashboard, loaded before the app (see frontend/README.md).
// This file is a default for development; whoever serves dist/ replaces it
// (scripts/serve_dashboard.py generates it, nginx can mount its own).
window.__NEWS_CONFIG__ = window.__NEWS_CONFIG__ || {
  apiBase: 'http://127.0.0.1:8002',
  token: '',
}
