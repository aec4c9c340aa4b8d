// The WebSocket protocol of the consumer (`/ws`): URL, parsing of server messages, and the messages
// the dashboard sends. Reconnection lives in composables/useReconnectingSocket.ts.

import { isArticle } from './http'
import type { ServerFilters, ServerMessage } from './types'

/** Close code the server uses for a missing or wrong token: do not retry with the same one. */
export const CLOSE_UNAUTHORIZED = 4401
export const PING = JSON.stringify({ type: 'ping' })

/** `?token=` (browsers cannot set headers on a WebSocket) and `?since=` to resume after a reconnect. */
export function liveUrl(wsUrl: string, token: string, since: string | null): string {
  const url = new URL(wsUrl)
  if (token) url.searchParams.set('token', token)
  if (since) url.searchParams.set('since', since)
  return url.toString()
}

export function subscribeMessage(filters: ServerFilters): string {
  return JSON.stringify({ type: 'subscribe', filters })
}

/** A server message, or null for anything unknown or malformed (ignored, never thrown). */
export function parseServerMessage(text: string): ServerMessage | null {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return null
  }
  if (typeof value !== 'object' || value === null) return null
  const msg = value as Record<string, unknown>
  const cursor = typeof msg.cursor === 'string' ? { cursor: msg.cursor } : {}
  switch (msg.type) {
    case 'initial_data':
      return Array.isArray(msg.data) ? { type: 'initial_data', data: msg.data.filter(isArticle), ...cursor } : null
    case 'new_analysis':
      return isArticle(msg.data) ? { type: 'new_analysis', data: msg.data, ...cursor } : null
    case 'lagged':
      return { type: 'lagged', dropped: typeof msg.dropped === 'number' ? msg.dropped : 0 }
    case 'pong':
      return { type: 'pong' }
    case 'error':
      return { type: 'error', message: typeof msg.message === 'string' ? msg.message : 'error' }
    default:
      return null
  }
}
