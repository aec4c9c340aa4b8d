/// <reference types="vite/client" />

interface NewsRuntimeConfig {
  /** Consumer API base URL, e.g. "http://127.0.0.1:8002"; "" means the page's own origin (behind a proxy). */
  apiBase?: string
  /** WebSocket URL; derived from apiBase + "/ws" when absent. */
  wsUrl?: string
}

interface Window {
  __NEWS_CONFIG__?: NewsRuntimeConfig
}
