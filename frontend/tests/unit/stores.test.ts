import { createPinia, setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it, vi } from 'vitest'

import { ApiError } from '@/api/http'
import { MAX_ARTICLES, useFeedStore } from '@/stores/feed'
import { useFiltersStore } from '@/stores/filters'
import { TOP_LIMIT, TRENDS_LIMIT, useInsightsStore, windowStart } from '@/stores/insights'

import { bucket, fakeClient, makeArticle, sentimentStats as stats, trends } from './helpers'

beforeEach(() => setActivePinia(createPinia()))

describe('feed store', () => {
  it('loads initial_data, then puts new_analysis on top', () => {
    const feed = useFeedStore()
    const [a, b, c] = [makeArticle(), makeArticle(), makeArticle()]
    feed.handleMessage({ type: 'initial_data', data: [a, b] })
    expect(feed.initialLoaded).toBe(true)
    expect(feed.articles.map((x) => x.id)).toEqual([a.id, b.id])
    feed.handleMessage({ type: 'new_analysis', data: c, cursor: '1-0' })
    expect(feed.articles.map((x) => x.id)).toEqual([c.id, a.id, b.id])
    expect(feed.fresh.has(c.id)).toBe(true)
    expect(feed.liveReceived).toBe(1)
  })

  it('stores each article once; a newer analysis replaces, an older one does not', () => {
    const feed = useFeedStore()
    const a = makeArticle({ analyzed_at: '2024-05-01T10:00:00Z' }, { sentiment: 'neutral' })
    feed.handleMessage({ type: 'new_analysis', data: a, cursor: '2-0' })
    feed.handleMessage({ type: 'new_analysis', data: { ...a, analyzed_at: '2024-05-01T11:00:00Z', analysis: { ...a.analysis, sentiment: 'positive' } }, cursor: '2-0' })
    feed.handleMessage({ type: 'new_analysis', data: { ...a, analyzed_at: '2024-05-01T09:00:00Z', analysis: { ...a.analysis, sentiment: 'negative' } }, cursor: '3-0' })
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
    feed.handleMessage({ type: 'initial_data', data: [] })
    expect(feed.cursor).toBeNull() // the seed's shape: no cursor on a first connection
    feed.handleMessage({ type: 'ping', cursor: '41-0' })
    expect(feed.cursor).toBe('41-0')
    feed.handleMessage({ type: 'new_analysis', data: makeArticle(), cursor: '42-0' })
    expect(feed.cursor).toBe('42-0')
    feed.handleMessage({ type: 'pong' })
    feed.handleMessage({ type: 'subscribed', filters: { source: 'BBC' } })
    feed.handleMessage({ type: 'error', message: 'subscribe: bad' })
    expect(feed.cursor).toBe('42-0')
    expect(feed.articles).toHaveLength(1)
    feed.handleMessage({ type: 'initial_data', data: [], cursor: '50-1', resumed: true })
    expect(feed.cursor).toBe('50-1')
  })

  it('keeps at most MAX_ARTICLES, but never drops the selected one', () => {
    const feed = useFeedStore()
    const first = makeArticle()
    feed.handleMessage({ type: 'new_analysis', data: first, cursor: '3-0' })
    feed.select(first.id)
    for (let i = 0; i < MAX_ARTICLES + 5; i++) feed.handleMessage({ type: 'new_analysis', data: makeArticle(), cursor: '4-0' })
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

  it('completes a list item with its whole record, in place; never with an older analysis', () => {
    const feed = useFeedStore()
    const full = makeArticle({ analyzed_at: '2024-05-01T10:00:00Z', content: 'The body.' })
    const { content: _body, ...listItem } = full
    const other = makeArticle()
    feed.upsertMany([listItem as typeof full, other], 'back')
    feed.complete(full)
    expect(feed.byId.get(full.id)?.content).toBe('The body.')
    expect(feed.articles.map((x) => x.id)).toEqual([full.id, other.id])
    feed.complete({ ...other, analyzed_at: '2000-01-01T00:00:00Z', content: 'stale' })
    expect(feed.byId.get(other.id)?.content).not.toBe('stale')
    feed.complete(makeArticle()) // not held: not added
    expect(feed.articles).toHaveLength(2)
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
  it('shows the server statistics, with its query names', async () => {
    const insights = useInsightsStore()
    const buckets = [
      bucket('2024-05-01T10:00:00Z', { source: 'A', negative: 1, mean_score: -0.5 }),
      bucket('2024-05-01T10:00:00Z', { source: 'B', positive: 2, mean_score: 0.5 }),
    ]
    const sentimentStats = vi.fn(async () => stats(buckets))
    insights.perSource = true
    await insights.refreshSentiment(fakeClient({ sentimentStats }))
    expect(sentimentStats).toHaveBeenCalledWith({ by_source: true })
    expect(insights.sentimentState).toBe('ok')
    expect(insights.sentiment).toEqual(buckets)
    const body = trends([{ term: 'rates', count: 4, type: null }], [{ term: 'Seoul', count: 2, type: 'GPE' }])
    const trendsCall = vi.fn(async () => body)
    await insights.refreshTrends(fakeClient({ trends: trendsCall }))
    expect(trendsCall).toHaveBeenCalledWith({ limit: TRENDS_LIMIT })
    expect(insights.trendsState).toBe('ok')
    expect(insights.trends).toEqual({ keywords: body.keywords, entities: body.entities })
  })

  it('computes nothing from the loaded articles: a missing endpoint is an error, not a local chart', async () => {
    const insights = useInsightsStore()
    const feed = useFeedStore()
    feed.handleMessage({ type: 'initial_data', data: [makeArticle({}, { keywords: ['rates'], sentiment: 'negative' })] })
    const notFound = async () => {
      throw new ApiError('not_found', 'nope', 404)
    }
    await insights.refreshSentiment(fakeClient({ sentimentStats: notFound }))
    await insights.refreshTrends(fakeClient({ trends: notFound }))
    expect(insights.sentimentState).toBe('error')
    expect(insights.sentiment).toEqual([])
    expect(insights.trendsState).toBe('error')
    expect(insights.trends.keywords).toEqual([])
    expect(insights.lastError?.kind).toBe('not_found')
  })

  it('keeps the last good answer when a refresh fails', async () => {
    const insights = useInsightsStore()
    const buckets = [bucket('2024-05-01T10:00:00Z', { neutral: 3 })]
    await insights.refreshSentiment(fakeClient({ sentimentStats: async () => stats(buckets) }))
    await insights.refreshSentiment(
      fakeClient({
        sentimentStats: async () => {
          throw new ApiError('http', 'boom', 500)
        },
      }),
    )
    expect(insights.sentimentState).toBe('error')
    expect(insights.sentiment).toEqual(buckets)
  })

  it('asks the server for the top stories of the window, in its order', async () => {
    const insights = useInsightsStore()
    const now = Date.parse('2024-05-02T00:00:00Z')
    const [high, low] = [makeArticle({}, { importance_score: 8 }), makeArticle({}, { importance_score: 2 })]
    const top = vi.fn(async () => [high, low])
    insights.topWindow = '24h'
    await insights.refreshTop(fakeClient({ top }), now)
    expect(top).toHaveBeenCalledWith(TOP_LIMIT, windowStart('24h', now))
    expect(insights.top.map((a) => a.id)).toEqual([high.id, low.id])
    expect(insights.topState).toBe('ok')
    insights.topWindow = 'all'
    await insights.refreshTop(fakeClient({ top }), now)
    expect(top).toHaveBeenLastCalledWith(TOP_LIMIT, null)
  })
})
