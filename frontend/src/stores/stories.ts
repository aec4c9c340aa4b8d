// The Stories view's state: stories ranked by the server's score (GET /stories), kept current by the
// WebSocket's `story_update` messages, and the one story opened in detail (GET /stories/{id}).
// Ranking is the server's: a live update changes a story in place and keeps its last known score;
// a story that appears live goes on top (marked new) until the next refresh ranks it.

import { defineStore } from 'pinia'
import { computed, ref, shallowReactive } from 'vue'

import { ApiError, type ApiClient } from '@/api/http'
import type { RankedStory, StoriesQuery, Story, StoryDetail, StoryUpdateMessage } from '@/api/types'

/** How many stories the view keeps (the page size times a few "more" clicks). */
export const MAX_STORIES = 200
export const STORIES_PAGE = 30

function toError(err: unknown): ApiError {
  return err instanceof ApiError ? err : new ApiError('http', String(err))
}

function isAfter(a: string, b: string): boolean {
  const x = Date.parse(a)
  const y = Date.parse(b)
  return !Number.isNaN(x) && (Number.isNaN(y) || x >= y)
}

export const useStoriesStore = defineStore('stories', () => {
  const byId = shallowReactive(new Map<string, RankedStory>())
  const order = ref<string[]>([])
  const nextCursor = ref<string | null>(null)
  const loading = ref(false)
  const loaded = ref(false)
  const error = ref<ApiError | null>(null)
  /** Stories that started or grew live since the last load (for the "new"/"updated" marker). */
  const fresh = shallowReactive(new Set<string>())
  const updatesReceived = ref(0)
  /** Stories that appeared live, not yet ranked by the server (no score until the next load). */
  const unranked = shallowReactive(new Set<string>())

  const order_by = ref<NonNullable<StoriesQuery['order']>>('score')
  const language = ref('')

  const detail = ref<StoryDetail | null>(null)
  const detailId = ref<string | null>(null)
  const detailLoading = ref(false)
  const detailError = ref<ApiError | null>(null)
  let detailRequest: AbortController | null = null

  const stories = computed(() => order.value.map((id) => byId.get(id)).filter((s) => s !== undefined))

  function query(cursor: string | null): StoriesQuery {
    return { order: order_by.value, limit: STORIES_PAGE, language: language.value || undefined, cursor: cursor ?? undefined }
  }

  /** The first page again, in the server's order (it replaces what was shown). */
  async function load(client: ApiClient): Promise<void> {
    loading.value = true
    try {
      const page = await client.stories(query(null))
      byId.clear()
      for (const s of page.stories) byId.set(s.id, s)
      order.value = page.stories.map((s) => s.id)
      nextCursor.value = page.nextCursor
      fresh.clear()
      unranked.clear()
      error.value = null
      loaded.value = true
    } catch (err) {
      error.value = toError(err)
    } finally {
      loading.value = false
    }
  }

  async function loadMore(client: ApiClient): Promise<void> {
    if (!nextCursor.value || loading.value) return
    loading.value = true
    try {
      const page = await client.stories(query(nextCursor.value))
      const added = page.stories.filter((s) => !byId.has(s.id))
      for (const s of page.stories) byId.set(s.id, s)
      order.value = [...order.value, ...added.map((s) => s.id)].slice(0, MAX_STORIES)
      nextCursor.value = order.value.length >= MAX_STORIES ? null : page.nextCursor
      error.value = null
    } catch (err) {
      error.value = toError(err)
    } finally {
      loading.value = false
    }
  }

  /** A `story_update` from the WebSocket: the story's new state, in place; a story not shown yet goes on top. */
  function handleUpdate(msg: StoryUpdateMessage): void {
    const story: Story = msg.data
    if (language.value && story.language !== language.value) return
    const current = byId.get(story.id)
    // Updates of one story arrive in order, but a REST page fetched meanwhile may be newer: never go back.
    if (current && !isAfter(story.last_seen, current.last_seen)) return
    if (current && story.article_count < current.article_count) return
    byId.set(story.id, { ...story, score: current?.score ?? 0 })
    if (!current) {
      unranked.add(story.id)
      order.value = [story.id, ...order.value.filter((id) => id !== story.id)].slice(0, MAX_STORIES)
    }
    fresh.add(story.id)
    updatesReceived.value += 1
    if (detail.value && detail.value.id === story.id) {
      detail.value = { ...detail.value, ...story }
    }
  }

  /** Open one story in detail (its articles, timeline and entities); null closes it. */
  async function open(client: ApiClient, id: string | null): Promise<void> {
    detailRequest?.abort()
    detailRequest = null
    if (detail.value?.id !== id) detail.value = null
    detailId.value = id
    detailError.value = null
    if (id === null) {
      detail.value = null
      return
    }
    const controller = new AbortController()
    detailRequest = controller
    detailLoading.value = true
    try {
      const story = await client.story(id, controller.signal)
      if (detailRequest !== controller) return
      detail.value = story
    } catch (err) {
      if (detailRequest !== controller) return
      const e = toError(err)
      if (e.kind !== 'aborted') detailError.value = e
    } finally {
      if (detailRequest === controller) {
        detailLoading.value = false
        detailRequest = null
      }
    }
  }

  return {
    byId,
    order,
    stories,
    nextCursor,
    loading,
    loaded,
    error,
    fresh,
    unranked,
    updatesReceived,
    orderBy: order_by,
    language,
    detail,
    detailId,
    detailLoading,
    detailError,
    load,
    loadMore,
    handleUpdate,
    open,
  }
})
