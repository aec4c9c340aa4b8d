// The REST client of the consumer API. Every path and query parameter the dashboard uses is here,
// so a change on the server side is a change in this file only. Response types are generated from the
// consumer's OpenAPI document (see types.ts); what arrives is still checked at the top level, not trusted.

import type { ApiConfig } from './config'
import type {
  Alert,
  AnalyzedArticle,
  EntityTimeline,
  EntityTimelineQuery,
  TopEntitiesQuery,
  TopSubject,
  RankedStory,
  SearchQuery,
  SearchResult,
  SentimentStats,
  SentimentStatsQuery,
  ServerFilters,
  StoriesQuery,
  StoryDetail,
  Trends,
  TrendsQuery,
} from './types'

/** `aborted`: the caller cancelled the request (a newer search replaced it); not a failure to show. */
export type ApiErrorKind = 'unreachable' | 'unauthorized' | 'not_found' | 'http' | 'invalid' | 'aborted'

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

function buildQuery(params: Record<string, QueryValue>): string {
  const query = new URLSearchParams()
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '' && value !== false) query.set(key, String(value))
  }
  const text = query.toString()
  return text ? `?${text}` : ''
}

/** One page of `GET /stories` and the cursor of the next (null on the last page). */
export interface StoriesPage {
  stories: RankedStory[]
  nextCursor: string | null
}

export interface ApiClient {
  recent(limit?: number, filters?: ServerFilters): Promise<AnalyzedArticle[]>
  top(limit?: number, since?: Date | null, filters?: ServerFilters): Promise<AnalyzedArticle[]>
  article(id: string): Promise<AnalyzedArticle>
  sentimentStats(query?: SentimentStatsQuery): Promise<SentimentStats>
  trends(query?: TrendsQuery): Promise<Trends>
  stories(query?: StoriesQuery, signal?: AbortSignal): Promise<StoriesPage>
  story(id: string, signal?: AbortSignal): Promise<StoryDetail>
  /** `GET /search`; pass a signal to cancel it (a stale query), which rejects with kind `aborted`. */
  search(query: SearchQuery, signal?: AbortSignal): Promise<SearchResult>
  topEntities(query?: TopEntitiesQuery): Promise<TopSubject[]>
  entityTimeline(id: string, query?: EntityTimelineQuery, signal?: AbortSignal): Promise<EntityTimeline>
  alerts(limit?: number): Promise<Alert[]>
  /** A single-use ticket for the live WebSocket (`POST /ws/ticket`); "" when the API has no ticket route. */
  wsTicket(): Promise<string>
}

export function createApiClient(config: ApiConfig, fetchImpl: FetchLike = (i, init) => fetch(i, init)): ApiClient {
  async function get(path: string, params: Record<string, QueryValue> = {}, signal?: AbortSignal): Promise<unknown> {
    return (await request(path, params, signal)).body
  }

  async function request(
    path: string,
    params: Record<string, QueryValue> = {},
    signal?: AbortSignal,
    method: 'GET' | 'POST' = 'GET',
  ): Promise<{ body: unknown; headers: Headers }> {
    const url = `${config.apiBase}${path}${buildQuery(params)}`
    // No Authorization header: the dashboard holds no token (the proxy in front of it adds the read one).
    const headers: Record<string, string> = { Accept: 'application/json' }
    let response: Response
    try {
      response = await fetchImpl(url, { headers, ...(signal ? { signal } : {}), ...(method === 'GET' ? {} : { method }) })
    } catch (err) {
      if (signal?.aborted) throw new ApiError('aborted', `${path}: cancelled`)
      throw new ApiError('unreachable', `cannot reach ${config.apiBase || 'the API'}: ${String(err)}`)
    }
    if (response.status === 401 || response.status === 403) {
      throw new ApiError('unauthorized', `the API refused access (${response.status})`, response.status)
    }
    if (response.status === 404) throw new ApiError('not_found', `${path}: not found`, 404)
    if (response.status === 422) throw new ApiError('http', `${path}: ${await detail(response)}`, 422)
    if (!response.ok) throw new ApiError('http', `${path}: HTTP ${response.status}`, response.status)
    try {
      return { body: await response.json(), headers: response.headers }
    } catch {
      if (signal?.aborted) throw new ApiError('aborted', `${path}: cancelled`)
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
      return asSentimentStats(await get('/stats/sentiment', query))
    },
    async trends(query = {}) {
      return asTrends(await get('/trends', query))
    },
    async stories(query = {}, signal) {
      const { body, headers } = await request('/stories', query, signal)
      if (!Array.isArray(body)) throw new ApiError('invalid', 'expected a list of stories')
      return { stories: body.filter(isStory) as RankedStory[], nextCursor: headers.get('X-Next-Cursor') || null }
    },
    async story(id, signal) {
      const body = await get(`/stories/${encodeURIComponent(id)}`, {}, signal)
      const articles: unknown = isRecord(body) ? body.articles : undefined
      if (!isStory(body) || !Array.isArray(articles)) throw new ApiError('invalid', 'not a story')
      return { ...(body as StoryDetail), articles: articles.filter(isArticle) }
    },
    async search(query, signal) {
      return asSearchResult(await get('/search', query as Record<string, QueryValue>, signal))
    },
    async topEntities(query = {}) {
      const body = await get('/entities/top', query)
      if (!Array.isArray(body)) throw new ApiError('invalid', 'expected a list of entities')
      return body.filter((e): e is TopSubject => isRecord(e) && typeof e.id === 'string' && typeof e.count === 'number')
    },
    async entityTimeline(id, query = {}, signal) {
      const body = await get(`/entities/${encodeURIComponent(id)}/timeline`, query, signal)
      if (!isRecord(body) || !Array.isArray(body.points)) throw new ApiError('invalid', 'expected a timeline')
      return body as EntityTimeline
    },
    async alerts(limit = 50) {
      const body = await get('/alerts', { limit })
      if (!Array.isArray(body)) throw new ApiError('invalid', 'expected a list of alerts')
      return body.filter(isAlert)
    },
    async wsTicket() {
      let body: unknown
      try {
        body = (await request('/ws/ticket', {}, undefined, 'POST')).body
      } catch (err) {
        // An API from before tickets: connect without one (it is then open, or it answers 4401).
        if (err instanceof ApiError && err.kind === 'not_found') return ''
        throw err
      }
      if (!isRecord(body) || typeof body.ticket !== 'string') throw new ApiError('invalid', 'expected a ticket')
      return body.ticket
    },
  }
}

// --- shape checks: the server is another team's code, so what arrives is checked, not trusted.

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

export function isArticle(value: unknown): value is AnalyzedArticle {
  if (!isRecord(value) || !isRecord(value.analysis)) return false
  return typeof value.id === 'string' && typeof value.title === 'string' && typeof value.url === 'string'
}

/** The reason of a 422 (a bad query): FastAPI's `detail`, a string or a list of problems. */
async function detail(response: Response): Promise<string> {
  try {
    const body: unknown = await response.json()
    if (isRecord(body)) {
      if (typeof body.detail === 'string') return body.detail
      if (Array.isArray(body.detail)) {
        return body.detail.map((d) => (isRecord(d) && typeof d.msg === 'string' ? d.msg : String(d))).join('; ')
      }
    }
  } catch {
    // not JSON: the status says enough
  }
  return 'HTTP 422'
}

export function isAlert(value: unknown): value is Alert {
  return isRecord(value) && typeof value.id === 'string' && typeof value.message === 'string' && typeof value.created_at === 'string'
}

export function isStory(value: unknown): value is RankedStory {
  if (!isRecord(value)) return false
  return (
    typeof value.id === 'string' &&
    typeof value.title === 'string' &&
    isRecord(value.sources) &&
    isRecord(value.sentiment) &&
    Array.isArray(value.timeline) &&
    Array.isArray(value.entities)
  )
}

function asSearchResult(body: unknown): SearchResult {
  if (!isRecord(body) || !Array.isArray(body.hits) || !isRecord(body.facets) || typeof body.total !== 'number') {
    throw new ApiError('invalid', 'expected a search result')
  }
  const result = body as SearchResult
  return { ...result, histogram: result.histogram ?? [], next_cursor: result.next_cursor ?? null }
}

function asArticles(body: unknown): AnalyzedArticle[] {
  // The list is the body; the next page's cursor is in the X-Next-Cursor header.
  if (!Array.isArray(body)) throw new ApiError('invalid', 'expected a list of articles')
  return body.filter(isArticle).map(fromListItem)
}

/**
 * A list item as the dashboard keeps it. `/news/recent` and `/news/top` send the lean view (ArticleSummary:
 * a `lead` instead of `description` and `content`, no embedding); the lead is what a card shows as the
 * description. `content` stays absent (`isListItem`) until the whole record is fetched (`article(id)`).
 */
export function fromListItem(item: AnalyzedArticle): AnalyzedArticle {
  if (!('lead' in item)) return item
  const { lead, ...rest } = item as AnalyzedArticle & { lead?: string | null }
  return { ...rest, description: lead ?? null }
}

/** Whether an article came from a list (lean view) and lacks its body: the detail panel fetches the record. */
export function isListItem(article: AnalyzedArticle): boolean {
  return !('content' in article)
}

function asSentimentStats(body: unknown): SentimentStats {
  if (!isRecord(body) || !Array.isArray(body.buckets)) throw new ApiError('invalid', 'expected sentiment statistics')
  return body as SentimentStats
}

function asTrends(body: unknown): Trends {
  if (!isRecord(body) || typeof body.window_end !== 'string') throw new ApiError('invalid', 'expected trends')
  const trends = body as Trends
  return { ...trends, keywords: trends.keywords ?? [], entities: trends.entities ?? [] }
}
