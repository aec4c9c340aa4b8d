// Test doubles: a scripted WebSocket, a fake fetch, and article factories.
import type { ApiClient } from '@/api/http'
import type {
  Alert,
  AnalyzedArticle,
  Analysis,
  RankedStory,
  SearchHit,
  SearchResult,
  SentimentBucket,
  SentimentStats,
  StoryUpdateMessage,
  TrendItem,
  Trends,
} from '@/api/types'
import type { SocketLike } from '@/composables/useReconnectingSocket'

export class FakeSocket implements SocketLike {
  static instances: FakeSocket[] = []
  readyState = 0
  sent: string[] = []
  closedWith: number | null = null
  onopen: ((ev: Event) => unknown) | null = null
  onmessage: ((ev: MessageEvent) => unknown) | null = null
  onclose: ((ev: CloseEvent) => unknown) | null = null
  onerror: ((ev: Event) => unknown) | null = null

  constructor(readonly url: string) {
    FakeSocket.instances.push(this)
  }

  static reset(): void {
    FakeSocket.instances = []
  }

  static last(): FakeSocket {
    const s = FakeSocket.instances[FakeSocket.instances.length - 1]
    if (!s) throw new Error('no socket was created')
    return s
  }

  send(data: string): void {
    this.sent.push(data)
  }

  close(code = 1000): void {
    this.closedWith = code
    this.readyState = 3
  }

  // --- what the server does
  serverOpen(): void {
    this.readyState = 1
    this.onopen?.(new Event('open'))
  }

  serverSend(message: unknown): void {
    this.onmessage?.(new MessageEvent('message', { data: typeof message === 'string' ? message : JSON.stringify(message) }))
  }

  serverClose(code = 1006): void {
    this.readyState = 3
    this.onclose?.(new CloseEvent('close', { code }))
  }
}

let counter = 0

export function makeArticle(overrides: Partial<AnalyzedArticle> = {}, analysis: Partial<Analysis> = {}): AnalyzedArticle {
  counter += 1
  const id = overrides.id ?? counter.toString(16).padStart(32, '0')
  return {
    schema_version: 1,
    id,
    url: `https://news.example/${id}`,
    title: `Headline ${counter}`,
    description: 'A description',
    content: null,
    source: 'Example News',
    author: null,
    published_at: '2024-05-01T10:00:00Z',
    fetched_at: '2024-05-01T10:01:00Z',
    origin: 'rss',
    analyzed_at: '2024-05-01T10:02:00Z',
    ...overrides,
    analysis: {
      sentiment: 'neutral',
      sentiment_score: 0,
      keywords: ['economy'],
      entities: [{ text: 'Seoul', type: 'GPE' }],
      category: 'business',
      language: 'en',
      importance_score: 5,
      summary: null,
      providers: { sentiment: 'local' },
      models: { sentiment: 'test' },
      engine_version: '1',
      latency_ms: 3,
      ...analysis,
    },
  }
}

export function fakeClient(overrides: Partial<ApiClient> = {}): ApiClient {
  return {
    recent: async () => [],
    top: async () => [],
    article: async () => {
      throw new Error('not stubbed')
    },
    sentimentStats: async () => sentimentStats([]),
    trends: async () => trends([], []),
    stories: async () => ({ stories: [], nextCursor: null }),
    story: async () => {
      throw new Error('not stubbed')
    },
    search: async () => searchResult([]),
    topEntities: async () => [],
    entityTimeline: async () => {
      throw new Error('not stubbed')
    },
    alerts: async () => [],
    wsTicket: async () => 'tkt',
    ...overrides,
  }
}

export function jsonResponse(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } })
}

/** A `GET /stats/sentiment` body as the server sends it (5-minute buckets over the last 24 hours). */
export function sentimentStats(buckets: SentimentBucket[], source: string | null = null): SentimentStats {
  return { since: '2024-05-01T00:00:00Z', until: '2024-05-02T00:00:00Z', bucket_seconds: 300, source, buckets }
}

export function bucket(start: string, counts: Partial<SentimentBucket> = {}): SentimentBucket {
  const end = new Date(Date.parse(start) + 300_000).toISOString()
  const { positive = 0, neutral = 0, negative = 0 } = counts
  return { start, end, source: null, positive, neutral, negative, count: positive + neutral + negative, mean_score: null, ...counts }
}

/** A `GET /trends` body as the server sends it. */
export function trends(keywords: TrendItem[], entities: TrendItem[]): Trends {
  return { window_start: '2024-05-01T23:45:00Z', window_end: '2024-05-02T00:00:00Z', window_minutes: 15, keywords, entities }
}

/** A story as the server stores it (`story_update`'s data); `RankedStory` adds `score`. */
export function story(id: string, overrides: Partial<RankedStory> = {}): RankedStory {
  return {
    schema_version: 1,
    id,
    title: `Story ${id}`,
    language: 'en',
    first_seen: '2026-01-01T10:00:00Z',
    last_seen: '2026-01-01T11:00:00Z',
    article_count: 2,
    source_count: 2,
    sources: { 'Wire A': 1, 'Wire B': 1 },
    languages: { en: 2 },
    entities: [{ id: 'org:central_bank', name: 'Central Bank', type: 'ORG', count: 2 }],
    keywords: ['rates'],
    sentiment: { positive: 0, neutral: 2, negative: 0, mean_score: 0 },
    timeline: [{ start: '2026-01-01T10:00:00Z', count: 2 }],
    active: true,
    duplicate_count: 0,
    score: 1,
    ...overrides,
  }
}

/** A `story_update` message for a story (its score left out, as the WebSocket sends it). */
export function storyUpdate(s: RankedStory, created = false): StoryUpdateMessage {
  const { score: _score, ...data } = s
  return { type: 'story_update', data, article_id: s.id, created, duplicate_of: null }
}

export function searchHit(id: string, overrides: Partial<SearchHit> = {}): SearchHit {
  return {
    id,
    url: `https://example.com/${id}`,
    title: `Title ${id}`,
    description: null,
    source: 'Wire A',
    language: 'en',
    category: 'business',
    sentiment: 'neutral',
    sentiment_score: 0,
    importance_score: 5,
    published_at: '2026-01-01T10:00:00Z',
    story_id: null,
    score: 1,
    highlights: {},
    ...overrides,
  }
}

export function searchResult(hits: SearchHit[], nextCursor: string | null = null): SearchResult {
  return {
    total: hits.length,
    hits,
    next_cursor: nextCursor,
    facets: { source: [{ value: 'Wire A', count: hits.length }], language: [], category: [], sentiment: [], entity: [] },
    interval: '1h',
    histogram: [{ start: '2026-01-01T10:00:00Z', count: hits.length, mean_sentiment: 0 }],
  }
}

export function alert(id: string, createdAt: string, overrides: Partial<Alert> = {}): Alert {
  return {
    id,
    watchlist_id: 'w1',
    watchlist_name: 'Central banks',
    rule: { kind: 'entity', entity: 'org:bank_of_korea' },
    kind: 'spike',
    subject: 'org:bank_of_korea',
    message: `Bank of Korea surges (${id})`,
    created_at: createdAt,
    ...overrides,
  } as Alert
}
