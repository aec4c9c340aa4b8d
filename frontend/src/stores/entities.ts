// Entity pages (issue 15): the most named entities of a window (GET /entities/top) and one entity's
// counts over time (GET /entities/{id}/timeline). Opening another entity cancels the request for the last.

import { defineStore } from 'pinia'
import { ref } from 'vue'

import { ApiError, type ApiClient } from '@/api/http'
import type { EntityTimeline, EntityWindow, TimelineWidth, TopSubject } from '@/api/types'

export const ENTITY_WINDOWS: EntityWindow[] = ['1h', '24h', '7d']
export const TIMELINE_WIDTHS: TimelineWidth[] = ['15m', '1h', '1d']

function toError(err: unknown): ApiError {
  return err instanceof ApiError ? err : new ApiError('http', String(err))
}

export const useEntitiesStore = defineStore('entities', () => {
  const window = ref<EntityWindow>('24h')
  const top = ref<TopSubject[]>([])
  const topError = ref<ApiError | null>(null)

  const selectedId = ref<string | null>(null)
  /** The name to show before the timeline answers (from the list or the chip that opened it). */
  const selectedName = ref('')
  const width = ref<TimelineWidth>('1h')
  const timeline = ref<EntityTimeline | null>(null)
  const timelineError = ref<ApiError | null>(null)
  const loading = ref(false)
  let request: AbortController | null = null

  async function loadTop(client: ApiClient, limit = 30): Promise<void> {
    try {
      top.value = await client.topEntities({ window: window.value, limit })
      topError.value = null
      // An entity opened by id alone (an alert) gets its display name once the list knows it.
      const named = top.value.find((e) => e.id === selectedId.value)
      if (named && selectedName.value === selectedId.value) selectedName.value = named.name
    } catch (err) {
      topError.value = toError(err)
    }
  }

  async function loadTimeline(client: ApiClient): Promise<void> {
    request?.abort()
    const id = selectedId.value
    if (!id) {
      request = null
      timeline.value = null
      return
    }
    const controller = new AbortController()
    request = controller
    loading.value = true
    try {
      const answer = await client.entityTimeline(id, { bucket: width.value }, controller.signal)
      if (request !== controller) return
      timeline.value = answer
      timelineError.value = null
    } catch (err) {
      if (request !== controller) return
      const e = toError(err)
      if (e.kind !== 'aborted') timelineError.value = e
    } finally {
      if (request === controller) {
        request = null
        loading.value = false
      }
    }
  }

  async function open(client: ApiClient, id: string | null, name = ''): Promise<void> {
    selectedId.value = id
    selectedName.value = name || (id ? (top.value.find((e) => e.id === id)?.name ?? id) : '')
    timeline.value = null
    timelineError.value = null
    await loadTimeline(client)
  }

  return { window, top, topError, selectedId, selectedName, width, timeline, timelineError, loading, loadTop, loadTimeline, open }
})
