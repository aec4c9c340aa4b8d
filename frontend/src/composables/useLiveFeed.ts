// Connects the feed store to the consumer's WebSocket: messages into the store, filters out as
// subscriptions, and gap-filling after a reconnect or a `lagged` notice when the server cannot resume.

import { watch } from 'vue'

import type { ApiConfig } from '@/api/config'
import type { ApiClient } from '@/api/http'
import { liveUrl, parseServerMessage, subscribeMessage } from '@/api/live'
import { useReconnectingSocket, type ReconnectingSocketOptions } from '@/composables/useReconnectingSocket'
import { useFeedStore } from '@/stores/feed'
import { useFiltersStore } from '@/stores/filters'
import { useAlertsStore } from '@/stores/alerts'
import { useStoriesStore } from '@/stores/stories'

export interface LiveFeedOptions {
  config: ApiConfig
  client: ApiClient
  /** Socket options for tests (fake socket, timers). */
  socket?: Partial<Omit<ReconnectingSocketOptions, 'url' | 'onMessage' | 'onOpen'>>
  /** How many recent articles to fetch over REST to fill a gap the server could not replay. */
  refillLimit?: number
  subscribeDebounceMs?: number
}

export function useLiveFeed(options: LiveFeedOptions) {
  const { config, client, refillLimit = 100, subscribeDebounceMs = 250 } = options
  const feed = useFeedStore()
  const filters = useFiltersStore()
  const stories = useStoriesStore()
  const alerts = useAlertsStore()

  function sendSubscription(): void {
    // Sent even when empty, so clearing the filters also clears them on the server.
    socket.send(subscribeMessage(filters.server))
  }

  const socket = useReconnectingSocket({
    ...options.socket,
    // A fresh single-use ticket for every attempt (docs/security.md); the cursor is read after it arrives.
    url: async () => {
      const ticket = await client.wsTicket()
      return liveUrl(config.wsUrl, ticket, feed.cursor)
    },
    onOpen: ({ reconnect }) => {
      if (filters.serverKey !== '{}' || reconnect) sendSubscription()
      // Without a cursor (none received yet: no ping, no article), `initial_data` only covers the newest
      // few: fetch more to close the gap.
      // The same refill clears an "unreachable" banner once the API is back.
      if ((reconnect && !feed.cursor) || feed.apiError) void feed.loadRecent(client, refillLimit)
    },
    onMessage: (text) => {
      const msg = parseServerMessage(text)
      if (!msg) return
      if (msg.type === 'story_update') {
        stories.handleUpdate(msg)
        return
      }
      if (msg.type === 'alert') {
        alerts.handleAlert(msg)
        return
      }
      feed.handleMessage(msg)
      if (msg.type === 'lagged') void feed.loadRecent(client, Math.min(200, msg.dropped + 20))
      // The server could not replay everything after our cursor (too old or too much): it sent its
      // current snapshot instead, so fetch more to close the gap.
      if (msg.type === 'initial_data' && msg.resumed === false) void feed.loadRecent(client, refillLimit)
    },
  })

  watch(socket.status, (status) => (feed.connection = status), { immediate: true })
  watch(socket.retryAt, (at) => (feed.retryAt = at), { immediate: true })

  let debounce: ReturnType<typeof setTimeout> | null = null
  watch(
    () => filters.serverKey,
    () => {
      if (debounce !== null) clearTimeout(debounce)
      debounce = setTimeout(() => {
        debounce = null
        sendSubscription()
        void feed.loadRecent(client, refillLimit) // older matches the page had not loaded
      }, subscribeDebounceMs)
    },
  )

  return socket
}
