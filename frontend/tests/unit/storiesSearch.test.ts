import { createPinia, setActivePinia } from 'pinia'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'

import { ApiError, createApiClient } from '@/api/http'
import { parseServerMessage } from '@/api/live'
import type { SearchQuery, SearchResult } from '@/api/types'
import { useFeedStore } from '@/stores/feed'
import { SEARCH_DEBOUNCE_MS, searchQuery, useSearchStore } from '@/stores/search'
import { useStoriesStore } from '@/stores/stories'
import { viewFromHash } from '@/stores/view'

import { fakeClient, jsonResponse, searchHit, searchResult, story, storyUpdate } from './helpers'

beforeEach(() => setActivePinia(createPinia()))
afterEach(() => vi.useRealTimers())

describe('stories store', () => {
  it('loads the first page in the server order, then appends the next by cursor', async () => {
    const pages = [
      { stories: [story('a', { score: 9 }), story('b', { score: 5 })], nextCursor: 'c1' },
      { stories: [story('b'), story('c', { score: 1 })], nextCursor: null },
    ]
    const calls: unknown[] = []
    const client = fakeClient({
      stories: async (q) => {
        calls.push(q)
        return pages.shift()!
      },
    })
    const s = useStoriesStore()
    await s.load(client)
    expect(s.stories.map((x) => x.id)).toEqual(['a', 'b'])
    expect(s.nextCursor).toBe('c1')
    await s.loadMore(client)
    expect(s.stories.map((x) => x.id)).toEqual(['a', 'b', 'c'])
    expect(s.nextCursor).toBeNull()
    expect(calls).toEqual([
      { order: 'score', limit: 30, language: undefined, cursor: undefined },
      { order: 'score', limit: 30, language: undefined, cursor: 'c1' },
    ])
  })

  it('a story_update changes a story in place (keeping its score) and puts a new story on top', async () => {
    const s = useStoriesStore()
    await s.load(fakeClient({ stories: async () => ({ stories: [story('a', { score: 9 }), story('b', { score: 5 })], nextCursor: null }) }))
    s.handleUpdate(storyUpdate(story('b', { article_count: 3, source_count: 3, last_seen: '2026-01-01T12:00:00Z' })))
    expect(s.stories.map((x) => x.id)).toEqual(['a', 'b'])
    expect(s.byId.get('b')).toMatchObject({ article_count: 3, source_count: 3, score: 5 })
    s.handleUpdate(storyUpdate(story('n'), true))
    expect(s.stories.map((x) => x.id)).toEqual(['n', 'a', 'b'])
    expect(s.fresh.has('n') && s.fresh.has('b')).toBe(true)
    expect([...s.unranked]).toEqual(['n'])
    expect(s.updatesReceived).toBe(2)
  })

  it('never goes back to an older state of a story', async () => {
    const s = useStoriesStore()
    s.handleUpdate(storyUpdate(story('a', { article_count: 5, last_seen: '2026-01-01T12:00:00Z' })))
    s.handleUpdate(storyUpdate(story('a', { article_count: 4, last_seen: '2026-01-01T11:00:00Z' })))
    expect(s.byId.get('a')?.article_count).toBe(5)
  })

  it('ignores updates in another language than the one chosen', () => {
    const s = useStoriesStore()
    s.language = 'ko'
    s.handleUpdate(storyUpdate(story('a', { language: 'en' })))
    expect(s.stories).toEqual([])
  })

  it('opens a story in detail and records a failure', async () => {
    const s = useStoriesStore()
    const detail = { ...story('a'), articles: [] }
    await s.open(fakeClient({ story: async () => detail }), 'a')
    expect(s.detail?.id).toBe('a')
    await s.open(fakeClient({ story: async () => Promise.reject(new ApiError('not_found', 'gone', 404)) }), 'b')
    expect(s.detail).toBeNull()
    expect(s.detailError?.kind).toBe('not_found')
    await s.open(fakeClient(), null)
    expect(s.detailId).toBeNull()
  })

  it('the feed ignores story_update; the parser checks its shape', () => {
    const feed = useFeedStore()
    const msg = parseServerMessage(JSON.stringify(storyUpdate(story('a'))))
    expect(msg?.type).toBe('story_update')
    feed.handleMessage(msg!)
    expect(feed.articles).toEqual([])
    expect(parseServerMessage(JSON.stringify({ type: 'story_update', data: { id: 'x' }, article_id: 'x' }))).toBeNull()
  })
})

describe('search store', () => {
  it('maps facets to the server query names', () => {
    expect(searchQuery(' bank ', { language: 'ko', sentiment: 'negative', entity: 'org:x' }, 'cur')).toEqual({
      q: 'bank',
      size: 20,
      lang: 'ko',
      sentiment: 'negative',
      entity: 'org:x',
      after: 'cur',
    })
  })

  it('debounces typing into one request for the last text', async () => {
    vi.useFakeTimers()
    const queries: SearchQuery[] = []
    const search = useSearchStore()
    search.bind(fakeClient({ search: async (q) => (queries.push(q), searchResult([searchHit('1')])) }))
    for (const text of ['b', 'ba', 'ban', 'bank']) {
      search.setText(text)
      await vi.advanceTimersByTimeAsync(SEARCH_DEBOUNCE_MS / 3)
    }
    expect(queries).toEqual([])
    await vi.advanceTimersByTimeAsync(SEARCH_DEBOUNCE_MS)
    expect(queries.map((q) => q.q)).toEqual(['bank'])
    expect(search.hits.map((h) => h.id)).toEqual(['1'])
    expect(search.shownText).toBe('bank')
  })

  it('cancels a stale request: a slow answer to an old query never replaces the new one', async () => {
    const pending: { q: string; signal: AbortSignal; resolve: (r: SearchResult) => void }[] = []
    const search = useSearchStore()
    search.bind(
      fakeClient({
        search: (q, signal) =>
          new Promise<SearchResult>((resolve, reject) => {
            pending.push({ q: q.q ?? '', signal: signal!, resolve })
            signal?.addEventListener('abort', () => reject(new ApiError('aborted', 'cancelled')))
          }),
      }),
    )
    search.text = 'old'
    const first = search.run()
    search.text = 'new'
    const second = search.run()
    expect(pending[0]!.signal.aborted).toBe(true)
    expect(pending[1]!.signal.aborted).toBe(false)
    pending[1]!.resolve(searchResult([searchHit('new')]))
    pending[0]!.resolve(searchResult([searchHit('old')])) // too late: aborted, ignored
    await Promise.all([first, second])
    expect(search.hits.map((h) => h.id)).toEqual(['new'])
    expect(search.error).toBeNull()
    expect(search.loading).toBe(false)
  })

  it('toggles facet filters and pages with after, without duplicates', async () => {
    const queries: SearchQuery[] = []
    const answers = [searchResult([searchHit('1'), searchHit('2')], 'next'), searchResult([searchHit('2'), searchHit('3')])]
    const search = useSearchStore()
    search.bind(fakeClient({ search: async (q) => (queries.push(q), answers.shift()!) }))
    search.toggleFacet('source', 'Wire A')
    await vi.waitFor(() => expect(search.hits.length).toBe(2))
    await search.loadMore()
    expect(search.hits.map((h) => h.id)).toEqual(['1', '2', '3'])
    expect(queries[1]).toMatchObject({ source: 'Wire A', after: 'next' })
    expect(search.result?.next_cursor).toBeNull()
    expect(search.activeFilters).toEqual([['source', 'Wire A']])
  })

  it('shows a bad query (422) with the server reason', async () => {
    const fetchImpl = async () => jsonResponse({ detail: 'unbalanced quote' }, 422)
    const client = createApiClient({ apiBase: 'http://api', wsUrl: 'ws://api/ws' }, fetchImpl)
    const search = useSearchStore()
    search.bind(client)
    search.text = '"bank'
    await search.run()
    expect(search.error?.message).toContain('unbalanced quote')
  })
})

describe('REST client: stories and search', () => {
  it('reads X-Next-Cursor and sends the server names', async () => {
    const urls: string[] = []
    const fetchImpl = async (url: string) => {
      urls.push(url)
      if (url.includes('/search')) return jsonResponse(searchResult([searchHit('1')]))
      return new Response(JSON.stringify([story('a'), { junk: true }]), { status: 200, headers: { 'X-Next-Cursor': 'abc' } })
    }
    const client = createApiClient({ apiBase: 'http://api', wsUrl: 'ws://api/ws' }, fetchImpl)
    const page = await client.stories({ order: 'recent', limit: 5 })
    expect(page.stories.map((s) => s.id)).toEqual(['a'])
    expect(page.nextCursor).toBe('abc')
    await client.search({ q: '삼성전자', lang: 'ko', size: 20 })
    expect(urls).toEqual(['http://api/stories?order=recent&limit=5', `http://api/search?q=${encodeURIComponent('삼성전자')}&lang=ko&size=20`])
  })
})

describe('view hash', () => {
  it('names the view', () => {
    expect(viewFromHash('#/stories')).toBe('stories')
    expect(viewFromHash('#/search?q=x')).toBe('search')
    expect(viewFromHash('')).toBe('feed')
    expect(viewFromHash('#/nope')).toBe('feed')
  })
})
