// Runtime configuration: read from window.__NEWS_CONFIG__, which public/config.js (or whatever the
// server puts at /config.js) sets before the bundle loads. Nothing here is fixed at build time.

export interface ApiConfig {
  /** Base URL of the consumer API without a trailing slash; "" = the page's own origin. */
  apiBase: string
  /** Absolute ws:// or wss:// URL of the live endpoint. */
  wsUrl: string
  /** Bearer token, "" when none. */
  token: string
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
  const token = typeof raw?.token === 'string' ? raw.token.trim() : ''
  return { apiBase, wsUrl, token }
}

export function loadConfig(): ApiConfig {
  return resolveConfig(window.__NEWS_CONFIG__, window.location.href)
}
