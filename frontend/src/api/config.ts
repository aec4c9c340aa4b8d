// Runtime configuration: read from window.__NEWS_CONFIG__, which public/config.js (or whatever the
// server puts at /config.js) sets before the bundle loads. Nothing here is fixed at build time.
// It holds no credential: the server in front of the dashboard adds the API's read token to what it proxies
// (scripts/serve_dashboard.py, the containers' nginx), and the live feed uses single-use tickets.

export interface ApiConfig {
  /** Base URL of the consumer API without a trailing slash; "" = the page's own origin. */
  apiBase: string
  /** Absolute ws:// or wss:// URL of the live endpoint. */
  wsUrl: string
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '')
}

/** ws(s) URL of `/ws` under an http(s) base, resolved against the page when the base is relative. */
export function deriveWsUrl(apiBase: string, pageHref: string): string {
  const url = new URL(`${trimSlash(apiBase)}/ws`, pageHref)
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:'
  return url.toString()
}

export function resolveConfig(raw: NewsRuntimeConfig | undefined, pageHref: string): ApiConfig {
  const apiBase = trimSlash(typeof raw?.apiBase === 'string' ? raw.apiBase.trim() : '')
  const wsUrl = typeof raw?.wsUrl === 'string' && raw.wsUrl.trim() ? raw.wsUrl.trim() : deriveWsUrl(apiBase, pageHref)
  // A `token` in an old config.js is ignored on purpose: a browser must never hold an API token.
  return { apiBase, wsUrl }
}

export function loadConfig(): ApiConfig {
  return resolveConfig(window.__NEWS_CONFIG__, window.location.href)
}
