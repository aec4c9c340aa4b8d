// The WebSocket protocol of the consumer (`/ws`): URL, parsing of server messages, and the messages
// the dashboard sends. Message types are generated from common/messages.py (see types.ts).
// Reconnection lives in composables/useReconnectingSocket.ts.

import { isAlert, isArticle, isRecord, isStory } from './http'
import type { ClientMessage, ServerFilters, ServerMessage } from './types'

/** Close code the server uses for a missing, used or expired ticket. */
export const CLOSE_UNAUTHORIZED = 4401
export const PING = JSON.stringify({ type: 'ping' } satisfies ClientMessage)

/**
 * `?ticket=`: a single-use ticket from `POST /ws/ticket`, good for one connection within seconds (browsers
 * cannot set headers on a WebSocket, and a token must never be in a URL); `?since=` to resume after a reconnect.
 */
export function liveUrl(wsUrl: string, ticket: string, since: string | null): string {
  const url = new URL(wsUrl)
  if (ticket) url.searchParams.set('ticket', ticket)
  if (since) url.searchParams.set('since', since)
  return url.toString()
}

export function subscribeMessage(filters: ServerFilters): string {
  return JSON.stringify({ type: 'subscribe', filters } satisfies ClientMessage)
}

/**
 * A server message, or null for anything unknown or malformed (ignored, never thrown). The server's
 * frames are trusted to follow the contract as far as the dashboard relies on them: what each kind
 * carries is checked, and articles that are not articles are left out of `initial_data`.
 */
export function parseServerMessage(text: string): ServerMessage | null {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return null
  }
  if (!isRecord(value)) return null
  const msg = value as ServerMessage
  switch (msg.type) {
    case 'initial_data':
      return Array.isArray(msg.data) && optionalCursor(msg.cursor) ? { ...msg, data: msg.data.filter(isArticle) } : null
    case 'new_analysis':
      return isArticle(msg.data) && typeof msg.cursor === 'string' ? msg : null
    case 'ping':
      // The heartbeat carries the resume cursor: the only one a quiet connection ever gets.
      return typeof msg.cursor === 'string' ? msg : null
    case 'alert':
      return isAlert(msg.data) ? msg : null
    case 'story_update':
      return isStory(msg.data) && typeof msg.article_id === 'string' ? msg : null
    case 'lagged':
      return typeof msg.dropped === 'number' ? msg : null
    case 'subscribed':
      return isRecord(msg.filters) ? msg : null
    case 'error':
      return typeof msg.message === 'string' ? msg : null
    case 'pong':
      return msg
    default:
      return null
  }
}

function optionalCursor(cursor: unknown): boolean {
  return cursor === undefined || cursor === null || typeof cursor === 'string'
}
