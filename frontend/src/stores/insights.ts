// Top stories, sentiment over time and trends: served by the consumer's REST API (the stream worker's
// windowed statistics), read on demand. The dashboard computes none of them itself.

import { defineStore } from 'pinia'
import { ref } from 'vue'

import { ApiError, type ApiClient } from '@/api/http'
import type { AnalyzedArticle, SentimentBucket, TrendItem } from '@/api/types'

export type PanelState = 'idle' | 'loading' | 'ok' | 'error'

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
export const TRENDS_LIMIT = 10

export const useInsightsStore = defineStore('insights', () => {
  const topWindow = ref<TopWindow>('all')
  const top = ref<AnalyzedArticle[]>([])
  const topState = ref<PanelState>('idle')

  const perSource = ref(false)
  /** `GET /stats/sentiment` buckets, oldest first (one per source and time when `perSource`). */
  const sentiment = ref<SentimentBucket[]>([])
  const sentimentState = ref<PanelState>('idle')

  const trends = ref<{ keywords: TrendItem[]; entities: TrendItem[] }>({ keywords: [], entities: [] })
  const trendsState = ref<PanelState>('idle')

  const lastError = ref<ApiError | null>(null)

  function failed(err: unknown): PanelState {
    lastError.value = err instanceof ApiError ? err : new ApiError('http', String(err))
    return 'error'
  }

  async function refreshTop(client: ApiClient, now = Date.now()): Promise<void> {
    if (topState.value === 'idle') topState.value = 'loading'
    try {
      // The server filters by `since` and orders by importance.
      top.value = await client.top(TOP_LIMIT, windowStart(topWindow.value, now))
      topState.value = 'ok'
    } catch (err) {
      topState.value = failed(err)
    }
  }

  async function refreshSentiment(client: ApiClient): Promise<void> {
    if (sentimentState.value === 'idle') sentimentState.value = 'loading'
    try {
      sentiment.value = (await client.sentimentStats({ by_source: perSource.value })).buckets
      sentimentState.value = 'ok'
    } catch (err) {
      sentimentState.value = failed(err)
    }
  }

  async function refreshTrends(client: ApiClient): Promise<void> {
    if (trendsState.value === 'idle') trendsState.value = 'loading'
    try {
      const { keywords, entities } = await client.trends({ limit: TRENDS_LIMIT })
      trends.value = { keywords: keywords ?? [], entities: entities ?? [] }
      trendsState.value = 'ok'
    } catch (err) {
      trendsState.value = failed(err)
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
