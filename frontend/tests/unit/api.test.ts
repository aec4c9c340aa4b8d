import { describe, expect, it, vi } from 'vitest'

import { deriveWsUrl, resolveConfig } from '@/api/config'
import { ApiError, createApiClient, isListItem } from '@/api/http'
import { liveUrl, parseServerMessage, subscribeMessage } from '@/api/live'

import { bucket, jsonResponse, makeArticle, sentimentStats, trends } from './helpers'

describe('runtime config', () => {
  it('derives the WebSocket URL from the API base', () => {
    expect(deriveWsUrl('http://127.0.0.1:8002', 'http://localhost:5173/')).toBe('ws://127.0.0.1:8002/ws')
    expect(deriveWsUrl('https://news.example/api/', 'https://x/')).toBe('wss://news.example/api/ws')
    expect(deriveWsUrl('', 'https://dash.example/app/')).toBe('wss://dash.example/ws')
  })

  it('takes what is set and defaults the rest, and never keeps a token', () => {
    // a config.js from before tickets may still carry a token: it is ignored
    const stale = { apiBase: 'http://h:1/', token: ' t ' } as NewsRuntimeConfig
    expect(resolveConfig(stale, 'http://p/')).toEqual({
      apiBase: 'http://h:1',
      wsUrl: 'ws://h:1/ws',
    })
    expect(resolveConfig(undefined, 'http://p:9/')).toEqual({ apiBase: '', wsUrl: 'ws://p:9/ws' })
    expect(resolveConfig({ apiBase: 'http://h', wsUrl: 'wss://other/live' }, 'http://p/').wsUrl).toBe('wss://other/live')
  })
})

describe('REST client', () => {
  const config = { apiBase: 'http://api.test', wsUrl: 'ws://api.test/ws' }

  it('sends the filters, no credential, and keeps only articles', async () => {
    const article = makeArticle()
    const fetch = vi.fn(async (_url: string, _init?: RequestInit) => jsonResponse([article, { junk: true }]))
    const client = createApiClient(config, fetch)
    expect(await client.recent(30, { sentiment: 'negative', source: 'BBC' })).toEqual([article])
    const [url, init] = fetch.mock.calls[0]!
    expect(url).toBe('http://api.test/news/recent?limit=30&sentiment=negative&source=BBC')
    expect((init?.headers as Record<string, string>).Authorization).toBeUndefined()
    expect(init?.method).toBeUndefined() // a GET
  })

  it('keeps a lean list item (ArticleSummary) with its lead as the description and no body', async () => {
    const { description: _d, content: _c, ...rest } = makeArticle({ description: 'Long form.' })
    const summary = { ...rest, lead: 'The lead.' }
    const client = createApiClient(config, async () => jsonResponse([summary]))
    const [item] = await client.top(10)
    expect(item).toEqual({ ...rest, description: 'The lead.' })
    expect(isListItem(item!)).toBe(true)
    expect(isListItem(makeArticle({ content: null }))).toBe(false)
  })

  it('encodes the since date', async () => {
    const fetch = vi.fn(async (_url: string, _init?: RequestInit) => jsonResponse([]))
    await createApiClient(config, fetch).top(10, new Date('2024-01-01T00:00:00Z'))
    expect(fetch.mock.calls[0]![0]).toBe('http://api.test/news/top?limit=10&since=2024-01-01T00%3A00%3A00.000Z')
  })

  it('asks POST /ws/ticket for a WebSocket ticket', async () => {
    const fetch = vi.fn(async (_url: string, _init?: RequestInit) => jsonResponse({ ticket: 'tkt-1', expires_in: 30 }))
    expect(await createApiClient({ ...config, apiBase: '/api' }, fetch).wsTicket()).toBe('tkt-1')
    const [url, init] = fetch.mock.calls[0]!
    expect(url).toBe('/api/ws/ticket')
    expect(init?.method).toBe('POST')
    expect((init?.headers as Record<string, string>).Authorization).toBeUndefined()
  })

  it('a refused ticket is unauthorized; an API without tickets gives none; a bad body is invalid', async () => {
    await expect(createApiClient(config, async () => jsonResponse({ detail: 'x' }, 401)).wsTicket()).rejects.toMatchObject({
      kind: 'unauthorized',
    })
    expect(await createApiClient(config, async () => jsonResponse({ detail: 'x' }, 404)).wsTicket()).toBe('')
    await expect(createApiClient(config, async () => jsonResponse({ nope: 1 })).wsTicket()).rejects.toMatchObject({
      kind: 'invalid',
    })
  })

  it.each([
    [401, 'unauthorized'],
    [403, 'unauthorized'],
    [404, 'not_found'],
    [500, 'http'],
  ])('classifies HTTP %i as %s', async (status, kind) => {
    const client = createApiClient(config, async () => jsonResponse({ detail: 'x' }, status))
    await expect(client.sentimentStats()).rejects.toMatchObject({ kind, status })
  })

  it('classifies a network failure as unreachable', async () => {
    const client = createApiClient(config, async () => {
      throw new TypeError('Failed to fetch')
    })
    const err = await client.recent().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ApiError)
    expect((err as ApiError).kind).toBe('unreachable')
  })

  it('refuses a list response that is not a list (the server sends the bare list; the cursor is a header)', async () => {
    const client = createApiClient(config, async () => jsonResponse({ items: [makeArticle()] }))
    await expect(client.recent()).rejects.toMatchObject({ kind: 'invalid' })
  })

  it('reads /stats/sentiment with the server query names', async () => {
    const body = sentimentStats([bucket('2024-05-01T10:00:00Z', { positive: 2, negative: 1, mean_score: 0.1 })])
    const fetch = vi.fn(async (_url: string, _init?: RequestInit) => jsonResponse(body))
    const client = createApiClient(config, fetch)
    expect(await client.sentimentStats({ by_source: true, bucket: '1h' })).toEqual(body)
    expect(fetch.mock.calls[0]![0]).toBe('http://api.test/stats/sentiment?by_source=true&bucket=1h')
    await expect(createApiClient(config, async () => jsonResponse([])).sentimentStats()).rejects.toMatchObject({
      kind: 'invalid',
    })
  })

  it('reads /trends', async () => {
    const body = trends([{ term: 'ai', count: 3, type: null }], [{ term: 'Seoul', count: 2, type: 'GPE' }])
    const fetch = vi.fn(async (_url: string, _init?: RequestInit) => jsonResponse(body))
    expect(await createApiClient(config, fetch).trends({ limit: 5 })).toEqual(body)
    expect(fetch.mock.calls[0]![0]).toBe('http://api.test/trends?limit=5')
    await expect(createApiClient(config, async () => jsonResponse({ keywords: [] })).trends()).rejects.toMatchObject({
      kind: 'invalid',
    })
  })
})

describe('WebSocket protocol', () => {
  it('puts the ticket and the resume cursor in the URL', () => {
    expect(liveUrl('ws://h/ws', 'a b', '1700-0')).toBe('ws://h/ws?ticket=a+b&since=1700-0')
    expect(liveUrl('ws://h/ws', '', null)).toBe('ws://h/ws')
  })

  it('parses the server messages and ignores anything else', () => {
    const a = makeArticle()
    expect(parseServerMessage(JSON.stringify({ type: 'initial_data', data: [a, 1] }))).toEqual({ type: 'initial_data', data: [a] })
    expect(parseServerMessage(JSON.stringify({ type: 'new_analysis', data: a, cursor: '5-0' }))).toEqual({
      type: 'new_analysis',
      data: a,
      cursor: '5-0',
    })
    expect(parseServerMessage('{"type":"lagged","dropped":7}')).toEqual({ type: 'lagged', dropped: 7 })
    expect(parseServerMessage('{"type":"pong"}')).toEqual({ type: 'pong' })
    expect(parseServerMessage('{"type":"ping","cursor":"1700-2"}')).toEqual({ type: 'ping', cursor: '1700-2' })
    expect(parseServerMessage('{"type":"ping"}')).toBeNull()
    const resumed = { type: 'initial_data', data: [a], cursor: '9-1', resumed: true }
    expect(parseServerMessage(JSON.stringify(resumed))).toEqual(resumed)
    expect(parseServerMessage('{"type":"subscribed","filters":{"source":"BBC"}}')).toEqual({
      type: 'subscribed',
      filters: { source: 'BBC' },
    })
    expect(parseServerMessage('{"type":"error","message":"subscribe: bad"}')).toEqual({ type: 'error', message: 'subscribe: bad' })
    expect(parseServerMessage('{"type":"new_analysis","data":{"id":1}}')).toBeNull()
    expect(parseServerMessage('{"type":"surprise"}')).toBeNull()
    expect(parseServerMessage('not json')).toBeNull()
    expect(parseServerMessage('null')).toBeNull()
  })

  it('builds the subscribe message', () => {
    expect(JSON.parse(subscribeMessage({ sentiment: 'positive' }))).toEqual({ type: 'subscribe', filters: { sentiment: 'positive' } })
  })
})
