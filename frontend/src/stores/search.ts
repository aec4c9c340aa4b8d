// Server-side search (GET /search): the query and the facet filters the reader chose, the hits so
// far (pages joined with `after`), the facets and the volume/sentiment histogram of the query.
// Typing is debounced, and every new query cancels the request of the one before it (AbortController),
// so an answer to a stale query can never replace the answer to the current one.

import { defineStore } from 'pinia'
import { computed, ref } from 'vue'

import { ApiError, type ApiClient } from '@/api/http'
import type { SearchFacetName, SearchHit, SearchQuery, SearchResult, Sentiment } from '@/api/types'

export const SEARCH_DEBOUNCE_MS = 300
export const SEARCH_PAGE = 20
/** Facets in display order; each is a query parameter of the same meaning (`language` is `lang`). */
export const FACET_NAMES: SearchFacetName[] = ['source', 'language', 'category', 'sentiment', 'entity']

export type SearchFilters = Partial<Record<SearchFacetName, string>>

/** The `GET /search` parameters for a query text and facet filters (empty values left out). */
export function searchQuery(q: string, filters: SearchFilters, after: string | null = null): SearchQuery {
  const query: SearchQuery = { q: q.trim(), size: SEARCH_PAGE }
  if (filters.source) query.source = filters.source
  if (filters.language) query.lang = filters.language
  if (filters.category) query.category = filters.category
  if (filters.sentiment) query.sentiment = filters.sentiment as Sentiment
  if (filters.entity) query.entity = filters.entity
  if (after) query.after = after
  return query
}

export const useSearchStore = defineStore('search', () => {
  const text = ref('')
  const filters = ref<SearchFilters>({})
  const result = ref<SearchResult | null>(null)
  const hits = ref<SearchHit[]>([])
  const loading = ref(false)
  const error = ref<ApiError | null>(null)
  /** The query text of the result shown (what the chart and counts describe). */
  const shownText = ref('')

  let client: ApiClient | null = null
  let timer: ReturnType<typeof setTimeout> | null = null
  let inFlight: AbortController | null = null

  const activeFilters = computed(() => FACET_NAMES.filter((f) => filters.value[f]).map((f) => [f, filters.value[f] as string] as const))
  const canLoadMore = computed(() => !!result.value?.next_cursor && !loading.value)

  function bind(api: ApiClient): void {
    client = api
  }

  function cancel(): void {
    if (timer !== null) clearTimeout(timer)
    timer = null
    inFlight?.abort()
    inFlight = null
  }

  /** Run the current query now (first page), cancelling any request still out. */
  async function run(): Promise<void> {
    if (!client) return
    cancel()
    const controller = new AbortController()
    inFlight = controller
    loading.value = true
    const q = text.value
    try {
      const answer = await client.search(searchQuery(q, filters.value), controller.signal)
      if (inFlight !== controller) return // a newer query started meanwhile
      result.value = answer
      hits.value = answer.hits
      shownText.value = q.trim()
      error.value = null
    } catch (err) {
      if (inFlight !== controller) return
      const e = err instanceof ApiError ? err : new ApiError('http', String(err))
      if (e.kind !== 'aborted') error.value = e
    } finally {
      if (inFlight === controller) {
        inFlight = null
        loading.value = false
      }
    }
  }

  /** The text changed (typing): run it once the typing pauses. */
  function setText(value: string): void {
    text.value = value
    if (timer !== null) clearTimeout(timer)
    timer = setTimeout(() => {
      timer = null
      void run()
    }, SEARCH_DEBOUNCE_MS)
  }

  /** Click on a facet value: filter by it (again: remove the filter), and search at once. */
  function toggleFacet(name: SearchFacetName, value: string): void {
    const next = { ...filters.value }
    if (next[name] === value) delete next[name]
    else next[name] = value
    filters.value = next
    void run()
  }

  function clearFilters(): void {
    filters.value = {}
    void run()
  }

  /** The next page (`after` = the last answer's `next_cursor`), appended. */
  async function loadMore(): Promise<void> {
    const after = result.value?.next_cursor
    if (!client || !after || loading.value) return
    const controller = new AbortController()
    inFlight = controller
    loading.value = true
    try {
      const answer = await client.search(searchQuery(shownText.value, filters.value, after), controller.signal)
      if (inFlight !== controller) return
      const known = new Set(hits.value.map((h) => h.id))
      hits.value = [...hits.value, ...answer.hits.filter((h) => !known.has(h.id))]
      result.value = { ...answer, facets: result.value?.facets ?? answer.facets, histogram: result.value?.histogram ?? answer.histogram }
      error.value = null
    } catch (err) {
      if (inFlight !== controller) return
      const e = err instanceof ApiError ? err : new ApiError('http', String(err))
      if (e.kind !== 'aborted') error.value = e
    } finally {
      if (inFlight === controller) {
        inFlight = null
        loading.value = false
      }
    }
  }

  return {
    text,
    filters,
    result,
    hits,
    loading,
    error,
    shownText,
    activeFilters,
    canLoadMore,
    bind,
    cancel,
    run,
    setText,
    toggleFacet,
    clearFilters,
    loadMore,
  }
})
