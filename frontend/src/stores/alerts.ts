// Alerts from the watchlists (issue 15): the recent ones from GET /alerts, then each WebSocket `alert`
// on top. An alert's id is deterministic (the same match is one alert), so a REST refill after a live
// arrival never shows it twice. `unseen` counts live arrivals since the panel was last looked at.

import { defineStore } from 'pinia'
import { computed, ref, shallowReactive } from 'vue'

import { ApiError, type ApiClient } from '@/api/http'
import type { Alert, AlertMessage } from '@/api/types'

export const MAX_ALERTS = 200

export const useAlertsStore = defineStore('alerts', () => {
  const byId = shallowReactive(new Map<string, Alert>())
  const unseen = ref(0)
  const loaded = ref(false)
  const error = ref<ApiError | null>(null)

  /** Newest first (by creation time, then id, so the order is stable). */
  const alerts = computed(() =>
    [...byId.values()].sort((a, b) => b.created_at.localeCompare(a.created_at) || a.id.localeCompare(b.id)),
  )

  function add(items: Alert[]): number {
    let added = 0
    for (const alert of items) {
      if (!byId.has(alert.id)) added += 1
      byId.set(alert.id, alert)
    }
    if (byId.size > MAX_ALERTS) {
      for (const old of alerts.value.slice(MAX_ALERTS)) byId.delete(old.id)
    }
    return added
  }

  async function load(client: ApiClient, limit = 100): Promise<void> {
    try {
      add(await client.alerts(limit))
      error.value = null
      loaded.value = true
    } catch (err) {
      error.value = err instanceof ApiError ? err : new ApiError('http', String(err))
    }
  }

  function handleAlert(msg: AlertMessage): void {
    unseen.value += add([msg.data])
  }

  function markSeen(): void {
    unseen.value = 0
  }

  return { byId, alerts, unseen, loaded, error, load, handleAlert, markSeen }
})
