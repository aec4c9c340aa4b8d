// Top stories, sentiment over time and trends: read from the REST API on demand. Where the
// server has no such endpoint yet (404), the panels fall back to the loaded articles and say so.

import { defineStore } from 'pinia'
import { computed, ref } from 'vue'

import { ApiError, type ApiClient } from '@/api/http'
import type { AnalyzedArticle, SentimentBucket, Trends } from '@/api/types'
import { bucketSentiment, countTrends } from '@/lib/aggregate'
import { useFeedStore } from '@/stores/feed'

/** `ok`: from the server; `local`: the server lacks the endpoint, computed from loaded articles. */
export type PanelState = 'idle' | 'loading' | 'ok' | 'local' | 'error'

export const TOP_WINDOWS = ['1h', '24h', '7d', 'all'] as const
export type TopWindow = (typeof TOP_WINDOWS)[number]

const WINDOW_MS: Record<TopWindow, number | null> = {
  '1h': 3_600_000,
  '24h': 86_400_000,
  '7d': 7 * 86_400_000,
  all: null,
}

export function windowStart(window: TopWindow, now = Date.now()): Date | null {
  const span = WINDOW_MS[window]
  return span === null ? null : new Date(now - span)
}

export const TOP_LIMIT = 10

export const useInsightsStore = defineStore('insights', () => {
  const feed = useFeedStore()
  const topWindow = ref<TopWindow>('all')
  const top = ref<AnalyzedArticle[]>([])
  const topState = ref<PanelState>('idle')

  const perSource = ref(false)
  const serverSentiment = ref<SentimentBucket[]>([])
  const sentimentState = ref<PanelState>('idle')
  /** The server's buckets, or (state `local`) buckets of the loaded articles, kept up to date as they arrive. */
  const sentiment = computed(() =>
    sentimentState.value === 'local' ? bucketSentiment(feed.articles, perSource.value) : serverSentiment.value,
  )

  const serverTrends = ref<Trends>({ keywords: [], entities: [] })
  const trendsState = ref<PanelState>('idle')
  const trends = computed(() => (trendsState.value === 'local' ? countTrends(feed.articles, 10) : serverTrends.value))

  const lastError = ref<ApiError | null>(null)

  function failed(err: unknown): PanelState {
    lastError.value = err instanceof ApiError ? err : new ApiError('http', String(err))
    return 'error'
  }

  async function refreshTop(client: ApiClient, now = Date.now()): Promise<void> {
    if (topState.value === 'idle') topState.value = 'loading'
    const since = windowStart(topWindow.value, now)
    try {
      // Ask for more than shown: a server that ignores `since` is corrected here.
      const items = await client.top(TOP_LIMIT * 5, since)
      top.value = items
        .filter((a) => since === null || Date.parse(a.published_at) >= since.getTime())
        .sort((a, b) => b.analysis.importance_score - a.analysis.importance_score)
        .slice(0, TOP_LIMIT)
      topState.value = 'ok'
    } catch (err) {
      topState.value = failed(err)
    }
  }

  async function refreshSentiment(client: ApiClient): Promise<void> {
    if (sentimentState.value === 'idle') sentimentState.value = 'loading'
    try {
      serverSentiment.value = await client.sentimentStats({ perSource: perSource.value })
      sentimentState.value = 'ok'
    } catch (err) {
      if (err instanceof ApiError && err.kind === 'not_found') {
        sentimentState.value = 'local'
      } else {
        sentimentState.value = failed(err)
      }
    }
  }

  async function refreshTrends(client: ApiClient): Promise<void> {
    if (trendsState.value === 'idle') trendsState.value = 'loading'
    try {
      serverTrends.value = await client.trends({ limit: 10 })
      trendsState.value = 'ok'
    } catch (err) {
      if (err instanceof ApiError && err.kind === 'not_found') {
        trendsState.value = 'local'
      } else {
        trendsState.value = failed(err)
      }
    }
  }

  return {
    topWindow,
    top,
    topState,
    perSource,
    sentiment,
    sentimentState,
    trends,
    trendsState,
    lastError,
    refreshTop,
    refreshSentiment,
    refreshTrends,
  }
})
