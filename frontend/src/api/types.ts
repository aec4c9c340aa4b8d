// Readable names for the consumer's wire shapes. The shapes themselves are generated from the Python
// models (`make contract`: scripts/export_contract.py -> ./generated), never written here by hand:
// REST from the consumer's OpenAPI document, WebSocket messages from common/messages.py.

import type { components as rest, operations } from './generated/consumer'
import type { components as wire } from './generated/messages'

type Rest = rest['schemas']
type Wire = wire['schemas']

/** `A`, provided it can be used where `B` is expected: a compile-time check that two contracts agree. */
type Fits<A extends B, B> = A

// REST and the WebSocket carry the same stored record (common.schemas.AnalyzedArticle). The messages'
// schema marks the fields the server always writes as required (FastAPI's marks only those without a
// default), so it is the one named here; each also has to fit the REST type, or this fails to compile.
export type AnalyzedArticle = Fits<Wire['AnalyzedArticle'], Rest['AnalyzedArticle']>
export type Analysis = Fits<Wire['Analysis'], Rest['Analysis']>
export type Entity = Fits<Wire['Entity'], Rest['Entity']>
export type Sentiment = Analysis['sentiment']

/** `GET /stats/sentiment`: counts per sentiment and mean score per time bucket. */
export type SentimentStats = Rest['SentimentStats']
export type SentimentBucket = Rest['SentimentBucket']
/** `GET /trends`: most frequent keywords and entities of the window that ends now. */
export type Trends = Rest['TrendsSnapshot']
export type TrendItem = Rest['TrendItem']

/** `GET /stats/sentiment` and `GET /trends` query parameters, as the server names them. */
export type SentimentStatsQuery = NonNullable<operations['sentiment_stats_stats_sentiment_get']['parameters']['query']>
export type TrendsQuery = NonNullable<operations['trends_trends_get']['parameters']['query']>

/** Filters the server understands (REST query and WebSocket `subscribe`); all optional. */
export type ServerFilters = Wire['ArticleFilters']

/** What the server sends on `/ws`. */
export type ServerMessage = Wire['ServerMessage']
/** What the server accepts on `/ws`. */
export type ClientMessage = Wire['ClientMessage']
export type ServerMessageType = ServerMessage['type']

// Display order; `satisfies` makes a sentiment added to (or removed from) the contract fail to compile here.
const SENTIMENT_ORDER = { positive: 0, neutral: 1, negative: 2 } satisfies Record<Sentiment, number>
/** Every sentiment, in display order. */
export const SENTIMENTS = Object.keys(SENTIMENT_ORDER) as Sentiment[]

/**
 * Category labels the engine emits (common/schemas.py CATEGORIES), offered in the filter before any
 * article carries them. The wire types declare `category` as a string, so this list is not generated.
 */
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

// --- stories (issue 15): GET /stories, GET /stories/{id}, WebSocket `story_update`.

/** A story as stored (the WebSocket's `story_update` carries this; REST adds `score`). */
export type Story = Wire['Story']
export type StoryEntity = Fits<Wire['StoryEntity'], Rest['StoryEntity']>
export type TimelineBucket = Rest['TimelineBucket']
/** `GET /stories`: a story with its importance from coverage at the time of the request. */
export type RankedStory = Rest['RankedStory']
/** `GET /stories/{id}`: the ranked story and its stored member articles, newest first. */
export type StoryDetail = Rest['StoryDetail']
export type StoryUpdateMessage = Wire['StoryUpdateMessage']
/** `GET /stories` query parameters, as the server names them. */
export type StoriesQuery = NonNullable<operations['list_stories_stories_get']['parameters']['query']>

// --- search (issue 16): GET /search.

export type SearchResult = Rest['SearchResult']
export type SearchHit = Rest['SearchHit']
export type SearchFacets = Rest['Facets']
export type FacetCount = Rest['FacetCount']
export type HistogramBucket = Rest['HistogramBucket']
/** `GET /search` query parameters, as the server names them. */
export type SearchQuery = NonNullable<operations['search_search_get']['parameters']['query']>
/** The facets one can click to filter a search, each the name of its query parameter. */
export type SearchFacetName = keyof SearchFacets

// --- entity timelines and alerts (issue 15 items 4-5): GET /entities/top, GET /entities/{id}/timeline,
// GET /alerts, WebSocket `alert`.

/** An entity (or keyword) and how many articles named it in the window. */
export type TopSubject = Rest['TopSubject']
export type TopEntitiesQuery = NonNullable<operations['top_entities_entities_top_get']['parameters']['query']>
export type EntityWindow = NonNullable<TopEntitiesQuery['window']>
/** `GET /entities/{id}/timeline`: articles naming it per bucket, oldest first, zeros included. */
export type EntityTimeline = Rest['Timeline']
export type EntityTimelineQuery = NonNullable<
  operations['entity_timeline_entities__entity_id__timeline_get']['parameters']['query']
>
export type TimelineWidth = NonNullable<EntityTimelineQuery['bucket']>
/** A watchlist match (`GET /alerts`, WebSocket `alert`). */
export type Alert = Fits<Wire['Alert'], Rest['Alert']>
export type AlertMessage = Wire['AlertMessage']
