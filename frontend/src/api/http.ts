// The REST client of the consumer API. Every path and query parameter the dashboard uses is here,
// so a change on the server side is a change in this file only.

import type { ApiConfig } from './config'
import type { AnalyzedArticle, SentimentBucket, ServerFilters, TrendItem, Trends } from './types'

export type ApiErrorKind = 'unreachable' | 'unauthorized' | 'not_found' | 'http' | 'invalid'

/** A failed API call, classified so the UI can say what went wrong. */
export class ApiError extends Error {
  constructor(
    readonly kind: ApiErrorKind,
    message: string,
    readonly status = 0,
  ) {
    super(message)
    this.name = 'ApiError'
  }
}

export type QueryValue = string | number | boolean | null | undefined
export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>

export interface StatsQuery {
  /** Bucket width, e.g. "5m", "1h". */
  bucket?: string
  /** How far back, e.g. "24h". */
  window?: string
  perSource?: boolean
  source?: string
}

export interface TrendsQuery {
  window?: string
  limit?: number
}

function buildQuery(params: Record<string, QueryValue>): string {
  const query = new URLSearchParams()
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '' && value !== false) query.set(key, String(value))
  }
  const text = query.toString()
  return text ? `?${text}` : ''
}

export interface ApiClient {
  recent(limit?: number, filters?: ServerFilters): Promise<AnalyzedArticle[]>
  top(limit?: number, since?: Date | null, filters?: ServerFilters): Promise<AnalyzedArticle[]>
  article(id: string): Promise<AnalyzedArticle>
  sentimentStats(query?: StatsQuery): Promise<SentimentBucket[]>
  trends(query?: TrendsQuery): Promise<Trends>
}

export function createApiClient(config: ApiConfig, fetchImpl: FetchLike = (i, init) => fetch(i, init)): ApiClient {
  async function get(path: string, params: Record<string, QueryValue> = {}): Promise<unknown> {
    const url = `${config.apiBase}${path}${buildQuery(params)}`
    const headers: Record<string, string> = { Accept: 'application/json' }
    if (config.token) headers.Authorization = `Bearer ${config.token}`
    let response: Response
    try {
      response = await fetchImpl(url, { headers })
    } catch (err) {
      throw new ApiError('unreachable', `cannot reach ${config.apiBase || 'the API'}: ${String(err)}`)
    }
    if (response.status === 401 || response.status === 403) {
      throw new ApiError('unauthorized', `the API refused the token (${response.status})`, response.status)
    }
    if (response.status === 404) throw new ApiError('not_found', `${path}: not found`, 404)
    if (!response.ok) throw new ApiError('http', `${path}: HTTP ${response.status}`, response.status)
    try {
      return await response.json()
    } catch {
      throw new ApiError('invalid', `${path}: the response is not JSON`, response.status)
    }
  }

  return {
    async recent(limit = 50, filters = {}) {
      return asArticles(await get('/news/recent', { limit, ...filters }))
    },
    async top(limit = 10, since = null, filters = {}) {
      return asArticles(await get('/news/top', { limit, since: since?.toISOString(), ...filters }))
    },
    async article(id) {
      const body = await get(`/news/${encodeURIComponent(id)}`)
      if (!isArticle(body)) throw new ApiError('invalid', 'not an article')
      return body
    },
    async sentimentStats(query = {}) {
      const body = await get('/stats/sentiment', {
        bucket: query.bucket,
        window: query.window,
        by_source: query.perSource,
        source: query.source,
      })
      return normaliseSentimentStats(body)
    },
    async trends(query = {}) {
      return normaliseTrends(await get('/trends', { window: query.window, limit: query.limit }))
    },
  }
}

// --- shape checks: the server is another team's code, so what arrives is checked, not trusted.

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

export function isArticle(value: unknown): value is AnalyzedArticle {
  if (!isRecord(value) || !isRecord(value.analysis)) return false
  return typeof value.id === 'string' && typeof value.title === 'string' && typeof value.url === 'string'
}

function asArticles(body: unknown): AnalyzedArticle[] {
  // A paged response may wrap the list: {"items": [...], "next_cursor": ...}.
  const list = Array.isArray(body) ? body : isRecord(body) && Array.isArray(body.items) ? body.items : null
  if (list === null) throw new ApiError('invalid', 'expected a list of articles')
  return list.filter(isArticle)
}

function num(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0
}

function firstList(body: unknown, keys: string[]): unknown[] {
  if (Array.isArray(body)) return body
  if (isRecord(body)) {
    for (const key of keys) {
      const value = body[key]
      if (Array.isArray(value)) return value
    }
  }
  return []
}

/**
 * Accepts the bucket list bare or under `buckets`/`series`/`data`, each bucket with its time under
 * `start`/`bucket`/`time`/`ts`, counts flat or under `counts`, and the mean as `mean_score`/`mean`.
 */
export function normaliseSentimentStats(body: unknown): SentimentBucket[] {
  const buckets: SentimentBucket[] = []
  for (const item of firstList(body, ['buckets', 'series', 'data'])) {
    if (!isRecord(item)) continue
    const rawTime = item.start ?? item.bucket ?? item.time ?? item.ts
    const start =
      typeof rawTime === 'number'
        ? new Date(rawTime < 1e12 ? rawTime * 1000 : rawTime).toISOString()
        : typeof rawTime === 'string'
          ? rawTime
          : null
    if (start === null || Number.isNaN(Date.parse(start))) continue
    const counts = isRecord(item.counts) ? item.counts : item
    const mean = item.mean_score ?? item.mean ?? item.mean_sentiment
    buckets.push({
      start,
      source: typeof item.source === 'string' ? item.source : null,
      positive: num(counts.positive),
      neutral: num(counts.neutral),
      negative: num(counts.negative),
      meanScore: typeof mean === 'number' ? mean : null,
    })
  }
  return buckets.sort((a, b) => Date.parse(a.start) - Date.parse(b.start))
}

function trendItems(list: unknown[]): TrendItem[] {
  const items: TrendItem[] = []
  for (const item of list) {
    if (typeof item === 'string') {
      items.push({ text: item, count: 0 })
    } else if (isRecord(item)) {
      const text = item.text ?? item.term ?? item.keyword ?? item.entity ?? item.name
      if (typeof text !== 'string' || !text) continue
      const count = item.count ?? item.score ?? item.weight
      items.push({ text, count: num(count), ...(typeof item.type === 'string' ? { type: item.type } : {}) })
    } else if (Array.isArray(item) && typeof item[0] === 'string') {
      items.push({ text: item[0], count: num(item[1]) }) // [text, count] pairs
    }
  }
  return items
}

export function normaliseTrends(body: unknown): Trends {
  if (!isRecord(body)) return { keywords: [], entities: [] }
  return {
    keywords: trendItems(firstList(body.keywords, ['items', 'top'])),
    entities: trendItems(firstList(body.entities, ['items', 'top'])),
  }
}
