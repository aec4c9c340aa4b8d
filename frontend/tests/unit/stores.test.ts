import { createPinia, setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it, vi } from 'vitest'

import { ApiError } from '@/api/http'
import { MAX_ARTICLES, useFeedStore } from '@/stores/feed'
import { useFiltersStore } from '@/stores/filters'
import { useInsightsStore, windowStart } from '@/stores/insights'

import { fakeClient, makeArticle } from './helpers'

beforeEach(() => setActivePinia(createPinia()))

describe('feed store', () => {
  it('loads initial_data, then puts new_analysis on top', () => {
    const feed = useFeedStore()
    const [a, b, c] = [makeArticle(), makeArticle(), makeArticle()]
    feed.handleMessage({ type: 'initial_data', data: [a, b] })
    expect(feed.initialLoaded).toBe(true)
    expect(feed.articles.map((x) => x.id)).toEqual([a.id, b.id])
    feed.handleMessage({ type: 'new_analysis', data: c })
    expect(feed.articles.map((x) => x.id)).toEqual([c.id, a.id, b.id])
    expect(feed.fresh.has(c.id)).toBe(true)
    expect(feed.liveReceived).toBe(1)
  })

  it('stores each article once; a newer analysis replaces, an older one does not', () => {
    const feed = useFeedStore()
    const a = makeArticle({ analyzed_at: '2024-05-01T10:00:00Z' }, { sentiment: 'neutral' })
    feed.handleMessage({ type: 'new_analysis', data: a })
    feed.handleMessage({ type: 'new_analysis', data: { ...a, analyzed_at: '2024-05-01T11:00:00Z', analysis: { ...a.analysis, sentiment: 'positive' } } })
    feed.handleMessage({ type: 'new_analysis', data: { ...a, analyzed_at: '2024-05-01T09:00:00Z', analysis: { ...a.analysis, sentiment: 'negative' } } })
    expect(feed.articles).toHaveLength(1)
    expect(feed.articles[0]!.analysis.sentiment).toBe('positive')
  })

  it('on a reconnect, merges the snapshot: missed articles on top, nothing twice', () => {
    const feed = useFeedStore()
    const [a, b, c] = [makeArticle(), makeArticle(), makeArticle()]
    feed.handleMessage({ type: 'initial_data', data: [b, a] })
    feed.handleMessage({ type: 'initial_data', data: [c, b, a] })
    expect(feed.articles.map((x) => x.id)).toEqual([c.id, b.id, a.id])
  })

  it('counts lagged notices', () => {
    const feed = useFeedStore()
    feed.handleMessage({ type: 'lagged', dropped: 3 })
    feed.handleMessage({ type: 'lagged', dropped: 4 })
    expect(feed.droppedTotal).toBe(7)
    expect(feed.lastLaggedAt).not.toBeNull()
    feed.dismissLagged()
    expect(feed.lastLaggedAt).toBeNull()
  })

  it('remembers the server resume cursor', () => {
    const feed = useFeedStore()
    feed.handleMessage({ type: 'new_analysis', data: makeArticle(), cursor: '42-0' })
    expect(feed.cursor).toBe('42-0')
    feed.handleMessage({ type: 'pong' })
    expect(feed.cursor).toBe('42-0')
  })

  it('keeps at most MAX_ARTICLES, but never drops the selected one', () => {
    const feed = useFeedStore()
    const first = makeArticle()
    feed.handleMessage({ type: 'new_analysis', data: first })
    feed.select(first.id)
    for (let i = 0; i < MAX_ARTICLES + 5; i++) feed.handleMessage({ type: 'new_analysis', data: makeArticle() })
    expect(feed.articles.length).toBe(MAX_ARTICLES + 1)
    expect(feed.selected?.id).toBe(first.id)
  })

  it('shows only what matches the filters, and lists the facets', () => {
    const feed = useFeedStore()
    const filters = useFiltersStore()
    const pos = makeArticle({ source: 'A' }, { sentiment: 'positive' })
    const neg = makeArticle({ source: 'B' }, { sentiment: 'negative' })
    feed.handleMessage({ type: 'initial_data', data: [pos, neg] })
    filters.sentiment = 'negative'
    expect(feed.visible.map((a) => a.id)).toEqual([neg.id])
    filters.reset()
    filters.text = 'nothing-matches-this'
    expect(feed.visible).toEqual([])
    expect(feed.facets.sources).toEqual(['A', 'B'])
  })

  it('loadRecent appends with the server filters and records API errors', async () => {
    const feed = useFeedStore()
    const filters = useFiltersStore()
    filters.source = 'BBC'
    filters.text = 'client only'
    const recent = vi.fn(async () => [makeArticle({ source: 'BBC' })])
    await feed.loadRecent(fakeClient({ recent }), 50)
    expect(recent).toHaveBeenCalledWith(50, { source: 'BBC' })
    expect(feed.articles).toHaveLength(1)
    await feed.loadRecent(
      fakeClient({
        recent: async () => {
          throw new ApiError('unauthorized', 'no', 401)
        },
      }),
    )
    expect(feed.unauthorized).toBe(true)
  })
})

describe('filters store', () => {
  it('derives the server filters and a stable key', () => {
    const filters = useFiltersStore()
    expect(filters.serverKey).toBe('{}')
    filters.entity = 'Seoul'
    filters.text = 'x'
    expect(filters.server).toEqual({ entity: 'Seoul' })
    expect(filters.activeCount).toBe(2)
    filters.reset()
    expect(filters.activeCount).toBe(0)
  })
})

describe('insights store', () => {
  it('falls back to the loaded articles when the server has no stats or trends (404)', async () => {
    const insights = useInsightsStore()
    const notFound = async () => {
      throw new ApiError('not_found', 'nope', 404)
    }
    const feed = useFeedStore()
    feed.handleMessage({ type: 'initial_data', data: [makeArticle({}, { keywords: ['rates'], sentiment: 'negative' })] })
    await insights.refreshSentiment(fakeClient({ sentimentStats: notFound }))
    await insights.refreshTrends(fakeClient({ trends: notFound }))
    expect(insights.sentimentState).toBe('local')
    expect(insights.sentiment[0]?.negative).toBe(1)
    expect(insights.trendsState).toBe('local')
    expect(insights.trends.keywords[0]?.text).toBe('rates')
    // ...and follow the articles as they arrive.
    feed.handleMessage({ type: 'new_analysis', data: makeArticle({}, { keywords: ['rates'], sentiment: 'positive' }) })
    expect(insights.trends.keywords[0]).toEqual({ text: 'rates', count: 2 })
    expect(insights.sentiment.reduce((n, b) => n + b.positive, 0)).toBe(1)
  })

  it('uses the server answer when there is one, and reports other failures', async () => {
    const insights = useInsightsStore()
    await insights.refreshTrends(fakeClient({ trends: async () => ({ keywords: [{ text: 'k', count: 1 }], entities: [] }) }))
    expect(insights.trendsState).toBe('ok')
    await insights.refreshSentiment(
      fakeClient({
        sentimentStats: async () => {
          throw new ApiError('http', 'boom', 500)
        },
      }),
    )
    expect(insights.sentimentState).toBe('error')
  })

  it('keeps the top stories of the window, by importance', async () => {
    const insights = useInsightsStore()
    const now = Date.parse('2024-05-02T00:00:00Z')
    const old = makeArticle({ published_at: '2024-04-01T00:00:00Z' }, { importance_score: 9 })
    const low = makeArticle({ published_at: '2024-05-01T23:00:00Z' }, { importance_score: 2 })
    const high = makeArticle({ published_at: '2024-05-01T22:00:00Z' }, { importance_score: 8 })
    const top = vi.fn(async () => [old, low, high])
    insights.topWindow = '24h'
    await insights.refreshTop(fakeClient({ top }), now)
    expect(insights.top.map((a) => a.id)).toEqual([high.id, low.id])
    expect(top).toHaveBeenCalledWith(50, windowStart('24h', now))
    insights.topWindow = 'all'
    await insights.refreshTop(fakeClient({ top }), now)
    expect(insights.top.map((a) => a.id)).toEqual([old.id, high.id, low.id])
  })
})
