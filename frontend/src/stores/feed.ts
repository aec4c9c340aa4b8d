// The live feed: articles by id in display order, what the WebSocket says about them, and the
// connection's state as the UI shows it. Messages arrive through handleMessage (see useLiveFeed).

import { defineStore } from 'pinia'
import { computed, ref, shallowReactive } from 'vue'

import { ApiError, type ApiClient } from '@/api/http'
import type { AnalyzedArticle, ServerMessage } from '@/api/types'
import type { SocketStatus } from '@/composables/useReconnectingSocket'
import { matchesFilters } from '@/lib/filters'
import { useFiltersStore } from '@/stores/filters'

/** How many articles the page keeps; the oldest fall off the end. */
export const MAX_ARTICLES = 500

/** Replace only with a strictly newer analysis: the same one again (a REST refill) changes nothing. */
function isNewer(candidate: AnalyzedArticle, current: AnalyzedArticle): boolean {
  const a = Date.parse(candidate.analyzed_at ?? '')
  const b = Date.parse(current.analyzed_at ?? '')
  return !Number.isNaN(a) && (Number.isNaN(b) || a > b)
}

export const useFeedStore = defineStore('feed', () => {
  const filters = useFiltersStore()

  const byId = shallowReactive(new Map<string, AnalyzedArticle>())
  const order = ref<string[]>([])
  /** The newest resume cursor the server sent (pings, articles, a resumed `initial_data`): `?since=` on reconnect. */
  const cursor = ref<string | null>(null)
  const initialLoaded = ref(false)
  const liveReceived = ref(0)
  /** Articles the server dropped for us because we were slow (sum of `lagged` notices). */
  const droppedTotal = ref(0)
  const lastLaggedAt = ref<number | null>(null)
  /** Ids that arrived live in this session (for the "new" marker). */
  const fresh = shallowReactive(new Set<string>())

  const connection = ref<SocketStatus>('idle')
  const retryAt = ref<number | null>(null)
  const apiError = ref<ApiError | null>(null)

  const selectedId = ref<string | null>(null)

  const articles = computed(() => order.value.map((id) => byId.get(id)).filter((a) => a !== undefined))
  const visible = computed(() => articles.value.filter((a) => matchesFilters(a, filters.current)))
  const selected = computed(() => (selectedId.value ? (byId.get(selectedId.value) ?? null) : null))
  const unauthorized = computed(() => connection.value === 'unauthorized' || apiError.value?.kind === 'unauthorized')
  const facets = computed(() => {
    const sources = new Set<string>()
    const categories = new Set<string>()
    const languages = new Set<string>()
    const entities = new Set<string>()
    for (const a of articles.value) {
      sources.add(a.source)
      categories.add(a.analysis.category)
      languages.add(a.analysis.language)
      for (const e of a.analysis.entities) entities.add(e.name ?? e.text)
    }
    const sorted = (s: Set<string>) => [...s].sort((x, y) => x.localeCompare(y))
    return { sources: sorted(sources), categories: sorted(categories), languages: sorted(languages), entities: sorted(entities) }
  })

  /** Insert or replace; new ids go to `where`, known ids keep their place unless the analysis is older. */
  function upsertMany(items: AnalyzedArticle[], where: 'front' | 'back'): void {
    const added: string[] = []
    for (const article of items) {
      const current = byId.get(article.id)
      if (current) {
        if (isNewer(article, current)) byId.set(article.id, article)
      } else {
        byId.set(article.id, article)
        added.push(article.id)
      }
    }
    if (!added.length) return
    order.value = where === 'front' ? [...added, ...order.value] : [...order.value, ...added]
    trim()
  }

  function trim(): void {
    if (order.value.length <= MAX_ARTICLES) return
    const keep = order.value.slice(0, MAX_ARTICLES)
    for (const id of order.value.slice(MAX_ARTICLES)) {
      if (id === selectedId.value) keep.push(id)
      else {
        byId.delete(id)
        fresh.delete(id)
      }
    }
    order.value = keep
  }

  function handleMessage(msg: ServerMessage): void {
    switch (msg.type) {
      case 'initial_data':
        // On a reconnect this is what we missed (or, `resumed: false`, the current snapshot): on top.
        upsertMany(msg.data, 'front')
        initialLoaded.value = true
        break
      case 'new_analysis':
        upsertMany([msg.data], 'front')
        fresh.add(msg.data.id)
        liveReceived.value += 1
        break
      case 'lagged':
        droppedTotal.value += msg.dropped
        lastLaggedAt.value = Date.now()
        break
      case 'ping':
        break // carries only the cursor, stored below
      case 'story_update': // the stories store's and the alerts store's (useLiveFeed routes them there)
      case 'alert':
      case 'pong':
      case 'subscribed':
      case 'error':
        return
    }
    // In stream order: each cursor is at or after the one before, and covers what came before it.
    if ('cursor' in msg && msg.cursor) cursor.value = msg.cursor
  }

  async function loadRecent(client: ApiClient, limit = 100): Promise<void> {
    try {
      upsertMany(await client.recent(limit, filters.server), 'back')
      apiError.value = null
    } catch (err) {
      apiError.value = err instanceof ApiError ? err : new ApiError('http', String(err))
    }
  }

  function select(id: string | null): void {
    selectedId.value = id
  }

  /** The whole record of an article held as a list item (same analysis or newer); kept in its place. */
  function complete(article: AnalyzedArticle): void {
    const current = byId.get(article.id)
    if (current && !isNewer(current, article)) byId.set(article.id, article)
  }

  function dismissLagged(): void {
    lastLaggedAt.value = null
  }

  return {
    byId,
    order,
    cursor,
    initialLoaded,
    liveReceived,
    droppedTotal,
    lastLaggedAt,
    fresh,
    connection,
    retryAt,
    apiError,
    selectedId,
    articles,
    visible,
    selected,
    unauthorized,
    facets,
    upsertMany,
    handleMessage,
    loadRecent,
    select,
    complete,
    dismissLagged,
  }
})
