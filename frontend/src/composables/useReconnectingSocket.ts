// A WebSocket that reconnects with backoff, keeps itself alive with pings, and stops retrying
// when the server refuses access (a 4401 close, or a 401/403 for the ticket). The protocol on top of it is
// the caller's business.

import { getCurrentScope, onScopeDispose, readonly, ref } from 'vue'

import { ApiError } from '@/api/http'
import { CLOSE_UNAUTHORIZED, PING } from '@/api/live'
import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from '@/lib/backoff'

export type SocketStatus = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'unauthorized' | 'closed'

/** The part of the browser WebSocket this composable uses (tests pass a fake). */
export interface SocketLike {
  readonly readyState: number
  send(data: string): void
  close(code?: number, reason?: string): void
  onopen: ((ev: Event) => unknown) | null
  onmessage: ((ev: MessageEvent) => unknown) | null
  onclose: ((ev: CloseEvent) => unknown) | null
  onerror: ((ev: Event) => unknown) | null
}

const OPEN = 1

export interface ReconnectingSocketOptions {
  /**
   * Called before every attempt, so a resume cursor in the URL is always the latest. It may be async (a
   * single-use ticket is fetched first): a rejection is retried with backoff, except an `ApiError` of kind
   * `unauthorized`, which stops like a 4401 close.
   */
  url: () => string | Promise<string>
  onMessage: (text: string) => void
  /** After each successful open; `reconnect` is false the first time. */
  onOpen?: (info: { reconnect: boolean }) => void
  backoff?: BackoffOptions
  /** How often to ping (ms). */
  heartbeatMs?: number
  /** With nothing received for this long (ms) the connection is taken as dead and replaced. */
  staleMs?: number
  createSocket?: (url: string) => SocketLike
  random?: () => number
  now?: () => number
}

export function useReconnectingSocket(options: ReconnectingSocketOptions) {
  const {
    backoff = DEFAULT_BACKOFF,
    heartbeatMs = 20_000,
    staleMs = 50_000,
    createSocket = (url: string) => new WebSocket(url) as SocketLike,
    random = Math.random,
    now = () => Date.now(),
  } = options

  const status = ref<SocketStatus>('idle')
  /** Failed attempts since the last healthy connection. */
  const attempt = ref(0)
  /** When the next attempt is due (epoch ms), while reconnecting. */
  const retryAt = ref<number | null>(null)
  const lastCloseCode = ref<number | null>(null)

  let socket: SocketLike | null = null
  let retryTimer: ReturnType<typeof setTimeout> | null = null
  let heartbeat: ReturnType<typeof setInterval> | null = null
  let lastReceived = 0
  let everOpened = false
  let stopped = true
  /** Bumped by every attempt and by close(): an async URL that resolves for an older one is dropped. */
  let generation = 0

  function clearTimers(): void {
    if (retryTimer !== null) clearTimeout(retryTimer)
    if (heartbeat !== null) clearInterval(heartbeat)
    retryTimer = heartbeat = null
  }

  function detach(s: SocketLike): void {
    s.onopen = s.onmessage = s.onclose = s.onerror = null
  }

  function open(): void {
    clearTimers()
    retryAt.value = null
    status.value = everOpened || attempt.value > 0 ? 'reconnecting' : 'connecting'
    const current = ++generation
    let target: string | Promise<string>
    try {
      target = options.url()
    } catch {
      scheduleRetry()
      return
    }
    if (typeof target === 'string') {
      attach(target)
      return
    }
    target.then(
      (url) => {
        if (current === generation && !stopped) attach(url)
      },
      (err: unknown) => {
        if (current !== generation || stopped) return
        if (err instanceof ApiError && err.kind === 'unauthorized') status.value = 'unauthorized'
        else scheduleRetry() // the ticket could not be fetched (API down): keep trying, the UI shows it
      },
    )
  }

  function attach(url: string): void {
    let s: SocketLike
    try {
      s = createSocket(url)
    } catch {
      scheduleRetry() // a malformed URL or a blocked port: keep trying, the UI shows it
      return
    }
    socket = s
    s.onopen = () => {
      const reconnect = everOpened
      everOpened = true
      status.value = 'open'
      lastReceived = now()
      heartbeat = setInterval(beat, heartbeatMs)
      options.onOpen?.({ reconnect })
    }
    s.onmessage = (ev: MessageEvent) => {
      lastReceived = now()
      attempt.value = 0 // the server talked to us: the connection is healthy again
      if (typeof ev.data === 'string') options.onMessage(ev.data)
    }
    s.onclose = (ev: CloseEvent) => dropped(s, ev.code)
    s.onerror = () => {
      /* a close event always follows */
    }
  }

  function beat(): void {
    if (!socket) return
    if (now() - lastReceived > staleMs) {
      // No pong, no data: the TCP connection may be half-open; replace it rather than wait.
      const s = socket
      try {
        s.close(4000, 'stale')
      } catch {
        /* already closing */
      }
      dropped(s, 4000)
      return
    }
    send(PING)
  }

  function dropped(s: SocketLike, code: number): void {
    if (s !== socket) return
    detach(s)
    socket = null
    clearTimers()
    lastCloseCode.value = code
    if (stopped) {
      status.value = 'closed'
    } else if (code === CLOSE_UNAUTHORIZED) {
      status.value = 'unauthorized' // refused by the server: retrying would not help
    } else {
      scheduleRetry()
    }
  }

  function scheduleRetry(): void {
    const delay = backoffDelay(attempt.value, backoff, random)
    attempt.value += 1
    status.value = 'reconnecting'
    retryAt.value = now() + delay
    retryTimer = setTimeout(open, delay)
  }

  function connect(): void {
    if (!stopped) return
    stopped = false
    attempt.value = 0
    open()
  }

  /** Skip the wait (e.g. the browser says it is back online). */
  function retryNow(): void {
    if (stopped || status.value !== 'reconnecting' || socket) return
    open()
  }

  function close(): void {
    stopped = true
    generation += 1
    clearTimers()
    retryAt.value = null
    if (socket) {
      const s = socket
      detach(s)
      socket = null
      try {
        s.close(1000, 'bye')
      } catch {
        /* already closed */
      }
    }
    status.value = 'closed'
  }

  /** Send if open; returns false otherwise (callers resend what matters from `onOpen`). */
  function send(text: string): boolean {
    if (socket && socket.readyState === OPEN) {
      socket.send(text)
      return true
    }
    return false
  }

  if (getCurrentScope()) onScopeDispose(close)

  return {
    status: readonly(status),
    attempt: readonly(attempt),
    retryAt: readonly(retryAt),
    lastCloseCode: readonly(lastCloseCode),
    connect,
    close,
    send,
    retryNow,
  }
}

export type ReconnectingSocket = ReturnType<typeof useReconnectingSocket>
