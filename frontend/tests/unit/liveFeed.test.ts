import { createPinia, setActivePinia } from 'pinia'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { effectScope, nextTick } from 'vue'

import { ApiError, type ApiClient } from '@/api/http'
import { useLiveFeed } from '@/composables/useLiveFeed'
import { useFeedStore } from '@/stores/feed'
import { useFiltersStore } from '@/stores/filters'

import { fakeClient, FakeSocket, makeArticle } from './helpers'

const config = { apiBase: 'http://api.test', wsUrl: 'ws://api.test/ws' }

// The socket opens once the ticket (an async call) is in: let pending promises settle.
const settle = () => vi.advanceTimersByTimeAsync(0)

async function start(client: ApiClient = fakeClient()) {
  const scope = effectScope()
  const live = scope.run(() =>
    useLiveFeed({
      config,
      client,
      subscribeDebounceMs: 100,
      socket: { createSocket: (url) => new FakeSocket(url), backoff: { baseMs: 1000, maxMs: 1000, jitter: 0 } },
    }),
  )!
  live.connect()
  await settle()
  return { live, scope }
}

const sentJson = (s: FakeSocket) => s.sent.map((m) => JSON.parse(m) as unknown)

describe('useLiveFeed', () => {
  beforeEach(() => {
    setActivePinia(createPinia())
    vi.useFakeTimers()
    FakeSocket.reset()
  })
  afterEach(() => vi.useRealTimers())

  it('feeds server messages into the store and mirrors the connection state', async () => {
    await start()
    const feed = useFeedStore()
    const socket = FakeSocket.last()
    expect(socket.url).toBe('ws://api.test/ws?ticket=tkt')
    socket.serverOpen()
    await nextTick()
    expect(feed.connection).toBe('open')
    const a = makeArticle()
    socket.serverSend({ type: 'initial_data', data: [a] })
    socket.serverSend({ type: 'new_analysis', data: makeArticle(), cursor: '1700-0' })
    socket.serverSend('garbage')
    expect(feed.articles).toHaveLength(2)
    socket.serverClose(1006)
    await nextTick()
    expect(feed.connection).toBe('reconnecting')
    expect(feed.retryAt).not.toBeNull()
  })

  it('subscribes with the server-side filters when they change (debounced)', async () => {
    const recent = vi.fn(async () => [])
    await start(fakeClient({ recent }))
    const filters = useFiltersStore()
    const socket = FakeSocket.last()
    socket.serverOpen()
    expect(socket.sent).toEqual([]) // nothing to subscribe to yet
    filters.sentiment = 'negative'
    await nextTick()
    filters.source = 'BBC'
    await nextTick()
    filters.text = 'client only' // not a server filter: no new subscription
    await nextTick()
    vi.advanceTimersByTime(100)
    expect(sentJson(socket)).toEqual([{ type: 'subscribe', filters: { sentiment: 'negative', source: 'BBC' } }])
    expect(recent).toHaveBeenCalledTimes(1) // older matches fetched once
  })

  it('on reconnect resumes from the cursor and re-subscribes', async () => {
    const recent = vi.fn(async () => [])
    useFiltersStore().category = 'sports' // set before the feed starts: no debounced refetch follows
    await start(fakeClient({ recent }))
    let socket = FakeSocket.last()
    socket.serverOpen()
    socket.serverSend({ type: 'new_analysis', data: makeArticle(), cursor: '1700-3' })
    socket.serverClose(1012)
    await vi.advanceTimersByTimeAsync(1000)
    socket = FakeSocket.last()
    expect(socket.url).toBe('ws://api.test/ws?ticket=tkt&since=1700-3')
    socket.serverOpen()
    expect(sentJson(socket)).toEqual([{ type: 'subscribe', filters: { category: 'sports' } }])
    expect(recent).not.toHaveBeenCalled() // the server replays the gap itself
  })

  it("a quiet connection resumes from the heartbeat's cursor, with nothing fetched over REST", async () => {
    const recent = vi.fn(async () => [])
    await start(fakeClient({ recent }))
    const feed = useFeedStore()
    let socket = FakeSocket.last()
    socket.serverOpen()
    // The first connection's initial_data carries no cursor (the seed's shape), and no article arrives:
    // the server's ping is the only thing that says where this client is in the stream.
    socket.serverSend({ type: 'initial_data', data: [makeArticle()] })
    expect(feed.cursor).toBeNull()
    socket.serverSend({ type: 'ping', cursor: '1700-5' })
    expect(feed.cursor).toBe('1700-5')
    socket.serverClose(1006)
    await vi.advanceTimersByTimeAsync(1000)
    socket = FakeSocket.last()
    expect(socket.url).toBe('ws://api.test/ws?ticket=tkt&since=1700-5')
    socket.serverOpen()
    socket.serverSend({ type: 'initial_data', data: [], cursor: '1700-9', resumed: true })
    expect(feed.cursor).toBe('1700-9')
    await nextTick()
    expect(recent).not.toHaveBeenCalled() // the server replayed the gap itself
  })

  it('a later ping moves the cursor past the last article', async () => {
    await start()
    const feed = useFeedStore()
    const socket = FakeSocket.last()
    socket.serverOpen()
    socket.serverSend({ type: 'new_analysis', data: makeArticle(), cursor: '1700-3' })
    socket.serverSend({ type: 'ping', cursor: '1800-0' })
    socket.serverSend({ type: 'pong' })
    expect(feed.cursor).toBe('1800-0')
  })

  it('when the server could not resume (resumed: false), fills the gap over REST', async () => {
    const missed = makeArticle()
    const recent = vi.fn(async () => [missed])
    await start(fakeClient({ recent }))
    const feed = useFeedStore()
    FakeSocket.last().serverOpen()
    FakeSocket.last().serverSend({ type: 'ping', cursor: '1-0' })
    FakeSocket.last().serverClose(1006)
    await vi.advanceTimersByTimeAsync(1000)
    FakeSocket.last().serverOpen()
    expect(recent).not.toHaveBeenCalled()
    FakeSocket.last().serverSend({ type: 'initial_data', data: [], cursor: '1900-0', resumed: false })
    await vi.waitFor(() => expect(feed.byId.has(missed.id)).toBe(true))
    expect(recent).toHaveBeenCalledWith(100, {})
    expect(feed.cursor).toBe('1900-0')
  })

  it('without a server cursor, fills the gap over REST after a reconnect', async () => {
    const missed = makeArticle()
    const recent = vi.fn(async () => [missed])
    await start(fakeClient({ recent }))
    const feed = useFeedStore()
    FakeSocket.last().serverOpen()
    FakeSocket.last().serverClose(1006)
    await vi.advanceTimersByTimeAsync(1000)
    FakeSocket.last().serverOpen()
    await vi.waitFor(() => expect(feed.byId.has(missed.id)).toBe(true))
    expect(recent).toHaveBeenCalledWith(100, {})
  })

  it('clears an API error once the connection comes up', async () => {
    const recent = vi.fn(async () => [])
    await start(fakeClient({ recent }))
    const feed = useFeedStore()
    feed.apiError = new ApiError('unreachable', 'down')
    FakeSocket.last().serverOpen()
    await vi.waitFor(() => expect(feed.apiError).toBeNull())
  })

  it('a lagged notice is shown and the skipped articles are fetched', async () => {
    const recent = vi.fn(async () => [makeArticle()])
    await start(fakeClient({ recent }))
    const feed = useFeedStore()
    FakeSocket.last().serverOpen()
    FakeSocket.last().serverSend({ type: 'lagged', dropped: 30 })
    expect(feed.droppedTotal).toBe(30)
    await vi.waitFor(() => expect(feed.articles).toHaveLength(1))
    expect(recent).toHaveBeenCalledWith(50, {})
  })

  it('a 4401 close leaves the feed unauthorized, without retrying', async () => {
    await start()
    const feed = useFeedStore()
    FakeSocket.last().serverClose(4401)
    await nextTick()
    expect(feed.unauthorized).toBe(true)
    await vi.advanceTimersByTimeAsync(60_000)
    expect(FakeSocket.instances).toHaveLength(1)
  })

  it('asks for a fresh single-use ticket before every attempt', async () => {
    let n = 0
    const wsTicket = vi.fn(async () => `t${++n}`)
    await start(fakeClient({ wsTicket }))
    expect(FakeSocket.last().url).toBe('ws://api.test/ws?ticket=t1')
    FakeSocket.last().serverOpen()
    FakeSocket.last().serverClose(1006)
    await vi.advanceTimersByTimeAsync(1000)
    expect(FakeSocket.last().url).toBe('ws://api.test/ws?ticket=t2')
    expect(wsTicket).toHaveBeenCalledTimes(2)
  })

  it('a refused ticket leaves the feed unauthorized without opening a socket', async () => {
    await start(fakeClient({ wsTicket: async () => Promise.reject(new ApiError('unauthorized', 'no', 401)) }))
    await nextTick()
    expect(useFeedStore().unauthorized).toBe(true)
    await vi.advanceTimersByTimeAsync(60_000)
    expect(FakeSocket.instances).toHaveLength(0)
  })

  it('a ticket that cannot be fetched (API down) is retried with backoff', async () => {
    let calls = 0
    const wsTicket = async () => {
      calls += 1
      if (calls === 1) throw new ApiError('unreachable', 'down')
      return 'later'
    }
    await start(fakeClient({ wsTicket }))
    expect(FakeSocket.instances).toHaveLength(0)
    expect(useFeedStore().connection).toBe('reconnecting')
    await vi.advanceTimersByTimeAsync(1000)
    expect(FakeSocket.last().url).toBe('ws://api.test/ws?ticket=later')
  })
})
