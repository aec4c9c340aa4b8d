import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { effectScope } from 'vue'

import { useReconnectingSocket, type ReconnectingSocketOptions } from '@/composables/useReconnectingSocket'

import { FakeSocket } from './helpers'

function setup(overrides: Partial<ReconnectingSocketOptions> = {}) {
  const scope = effectScope()
  const received: string[] = []
  const opens: boolean[] = []
  const socket = scope.run(() =>
    useReconnectingSocket({
      url: () => 'ws://test/ws',
      onMessage: (text) => received.push(text),
      onOpen: ({ reconnect }) => opens.push(reconnect),
      backoff: { baseMs: 1000, maxMs: 8000, jitter: 0 },
      heartbeatMs: 10_000,
      staleMs: 25_000,
      createSocket: (url) => new FakeSocket(url),
      ...overrides,
    }),
  )!
  return { scope, socket, received, opens }
}

describe('useReconnectingSocket', () => {
  beforeEach(() => {
    vi.useFakeTimers()
    FakeSocket.reset()
  })
  afterEach(() => vi.useRealTimers())

  it('connects, delivers messages and reports open', () => {
    const { socket, received, opens } = setup()
    socket.connect()
    expect(socket.status.value).toBe('connecting')
    FakeSocket.last().serverOpen()
    FakeSocket.last().serverSend({ type: 'pong' })
    expect(socket.status.value).toBe('open')
    expect(received).toEqual(['{"type":"pong"}'])
    expect(opens).toEqual([false])
  })

  it('reconnects with exponential backoff, capped, and resets after a healthy connection', () => {
    const { socket, opens } = setup()
    socket.connect()
    FakeSocket.last().serverOpen()
    const delays: number[] = []
    for (let i = 0; i < 5; i++) {
      const before = FakeSocket.instances.length
      FakeSocket.last().serverClose(1006)
      expect(socket.status.value).toBe('reconnecting')
      const at = socket.retryAt.value!
      delays.push(at - Date.now())
      vi.advanceTimersByTime(at - Date.now() - 1)
      expect(FakeSocket.instances.length).toBe(before) // not yet
      vi.advanceTimersByTime(1)
      expect(FakeSocket.instances.length).toBe(before + 1)
    }
    expect(delays).toEqual([1000, 2000, 4000, 8000, 8000])
    // A connection that opens and gets data resets the backoff.
    FakeSocket.last().serverOpen()
    FakeSocket.last().serverSend('{"type":"pong"}')
    expect(socket.attempt.value).toBe(0)
    expect(opens).toEqual([false, true])
    FakeSocket.last().serverClose(1011)
    expect(socket.retryAt.value! - Date.now()).toBe(1000)
  })

  it('uses the URL builder on every attempt (for the resume cursor)', () => {
    let since = 'a'
    const { socket } = setup({ url: () => `ws://test/ws?since=${since}` })
    socket.connect()
    expect(FakeSocket.last().url).toBe('ws://test/ws?since=a')
    since = 'b'
    FakeSocket.last().serverClose()
    vi.advanceTimersByTime(1000)
    expect(FakeSocket.last().url).toBe('ws://test/ws?since=b')
  })

  it('does not retry after 4401 (missing, used or expired ticket)', () => {
    const { socket } = setup()
    socket.connect()
    FakeSocket.last().serverClose(4401)
    expect(socket.status.value).toBe('unauthorized')
    vi.advanceTimersByTime(120_000)
    expect(FakeSocket.instances.length).toBe(1)
  })

  it('pings, and replaces a connection that has gone silent', () => {
    const { socket } = setup()
    socket.connect()
    const first = FakeSocket.last()
    first.serverOpen()
    vi.advanceTimersByTime(10_000)
    expect(first.sent).toEqual(['{"type":"ping"}'])
    first.serverSend('{"type":"pong"}')
    vi.advanceTimersByTime(20_000) // 20 s since the pong: still fine
    expect(first.closedWith).toBeNull()
    vi.advanceTimersByTime(10_000) // 30 s of silence > staleMs
    expect(first.closedWith).toBe(4000)
    expect(socket.status.value).toBe('reconnecting')
    vi.advanceTimersByTime(1000)
    expect(FakeSocket.instances.length).toBe(2)
  })

  it('send() reports whether the message went out', () => {
    const { socket } = setup()
    socket.connect()
    expect(socket.send('x')).toBe(false)
    FakeSocket.last().serverOpen()
    expect(socket.send('x')).toBe(true)
    expect(FakeSocket.last().sent).toEqual(['x'])
  })

  it('retryNow skips the wait', () => {
    const { socket } = setup()
    socket.connect()
    FakeSocket.last().serverClose()
    socket.retryNow()
    expect(FakeSocket.instances.length).toBe(2)
  })

  it('close() stops everything, and so does disposing the scope', () => {
    const { socket, scope } = setup()
    socket.connect()
    FakeSocket.last().serverOpen()
    socket.close()
    expect(socket.status.value).toBe('closed')
    expect(FakeSocket.last().closedWith).toBe(1000)
    vi.advanceTimersByTime(60_000)
    expect(FakeSocket.instances.length).toBe(1)

    socket.connect()
    FakeSocket.last().serverClose()
    scope.stop()
    vi.advanceTimersByTime(60_000)
    expect(FakeSocket.instances.length).toBe(2)
  })

  it('keeps retrying when the socket cannot even be created', () => {
    let fail = true
    const { socket } = setup({
      createSocket: (url) => {
        if (fail) throw new SyntaxError('bad url')
        return new FakeSocket(url)
      },
    })
    socket.connect()
    expect(socket.status.value).toBe('reconnecting')
    fail = false
    vi.advanceTimersByTime(1000)
    expect(FakeSocket.instances.length).toBe(1)
  })

  it('waits for an async URL (a ticket), and drops one that resolves after close()', async () => {
    let release: (url: string) => void = () => {}
    const { socket } = setup({ url: () => new Promise<string>((resolve) => (release = resolve)) })
    socket.connect()
    expect(FakeSocket.instances.length).toBe(0)
    release('ws://test/ws?ticket=a')
    await vi.advanceTimersByTimeAsync(0)
    expect(FakeSocket.last().url).toBe('ws://test/ws?ticket=a')
    FakeSocket.last().serverClose(1006)
    await vi.advanceTimersByTimeAsync(1000) // the retry asks for a new URL
    socket.close()
    release('ws://test/ws?ticket=late')
    await vi.advanceTimersByTimeAsync(0)
    expect(FakeSocket.instances.length).toBe(1)
    expect(socket.status.value).toBe('closed')
  })
})
