// The wire shapes of the consumer API, mirroring common/schemas.py (AnalyzedArticle) and the
// WebSocket protocol in DESIGN.md. Fields the server may add later are optional here.

export type Sentiment = 'positive' | 'neutral' | 'negative'
export const SENTIMENTS: readonly Sentiment[] = ['positive', 'neutral', 'negative']

/** Category labels the engine emits (common/schemas.py CATEGORIES). */
export const CATEGORIES = [
  'world',
  'politics',
  'business',
  'technology',
  'science',
  'health',
  'sports',
  'entertainment',
  'other',
] as const

export interface Entity {
  text: string
  type: string
  /** canonical id shared by every surface form of one entity (absent on older records) */
  id?: string | null
  /** canonical display name ("Donald Trump" for "Trump") */
  name?: string | null
}

export interface Analysis {
  sentiment: Sentiment
  sentiment_score: number
  keywords: string[]
  entities: Entity[]
  category: string
  language: string
  importance_score: number
  summary?: string | null
  providers?: Record<string, string>
  models?: Record<string, string>
  engine_version?: string
  latency_ms?: number
}

export interface AnalyzedArticle {
  schema_version?: number
  id: string
  url: string
  title: string
  description?: string | null
  content?: string | null
  source: string
  author?: string | null
  published_at: string
  fetched_at?: string
  origin?: string
  language_hint?: string | null
  analysis: Analysis
  analyzed_at?: string
}

/** Filters the server understands (REST query and WebSocket `subscribe`); all optional. */
export interface ServerFilters {
  sentiment?: Sentiment
  source?: string
  category?: string
  language?: string
  entity?: string
}

export type ServerMessage =
  | { type: 'initial_data'; data: AnalyzedArticle[]; cursor?: string }
  | { type: 'new_analysis'; data: AnalyzedArticle; cursor?: string }
  | { type: 'lagged'; dropped: number }
  | { type: 'pong' }
  | { type: 'error'; message: string }

/** One time bucket of sentiment statistics (per source when `source` is set). */
export interface SentimentBucket {
  start: string
  source: string | null
  positive: number
  neutral: number
  negative: number
  meanScore: number | null
}

export interface TrendItem {
  text: string
  count: number
  type?: string
}

export interface Trends {
  keywords: TrendItem[]
  entities: TrendItem[]
}
