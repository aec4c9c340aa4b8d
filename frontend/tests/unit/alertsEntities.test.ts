import { createPinia, setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it } from 'vitest'

import { ApiError } from '@/api/http'
import { parseServerMessage } from '@/api/live'
import type { EntityTimeline, EntityTimelineQuery } from '@/api/types'
import { useAlertsStore } from '@/stores/alerts'
import { useEntitiesStore } from '@/stores/entities'
import { useFeedStore } from '@/stores/feed'

import { alert, fakeClient } from './helpers'

beforeEach(() => setActivePinia(createPinia()))

function timeline(id: string, counts: number[]): EntityTimeline {
  return {
    id,
    kind: 'entity',
    bucket: '1h',
    since: '2026-01-01T00:00:00Z',
    until: '2026-01-01T03:00:00Z',
    points: counts.map((count, i) => ({ start: `2026-01-01T0${i}:00:00Z`, count })),
  }
}

describe('alerts store', () => {
  it('lists newest first, counts live arrivals as unseen once, and a REST refill never doubles one', async () => {
    const alerts = useAlertsStore()
    await alerts.load(fakeClient({ alerts: async () => [alert('a', '2026-01-01T10:00:00Z')] }))
    const live = parseServerMessage(JSON.stringify({ type: 'alert', data: alert('b', '2026-01-01T11:00:00Z') }))
    expect(live?.type).toBe('alert')
    if (live?.type !== 'alert') throw new Error('not an alert')
    alerts.handleAlert(live)
    alerts.handleAlert(live) // the same match again: one alert
    expect(alerts.alerts.map((a) => a.id)).toEqual(['b', 'a'])
    expect(alerts.unseen).toBe(1)
    await alerts.load(fakeClient({ alerts: async () => [alert('b', '2026-01-01T11:00:00Z'), alert('a', '2026-01-01T10:00:00Z')] }))
    expect(alerts.alerts).toHaveLength(2)
    alerts.markSeen()
    expect(alerts.unseen).toBe(0)
  })

  it('keeps the error and the feed ignores alerts', async () => {
    const alerts = useAlertsStore()
    await alerts.load(fakeClient({ alerts: async () => Promise.reject(new ApiError('http', 'boom', 503)) }))
    expect(alerts.error?.status).toBe(503)
    const feed = useFeedStore()
    feed.handleMessage({ type: 'alert', data: alert('x', '2026-01-01T10:00:00Z') })
    expect(feed.articles).toEqual([])
    expect(parseServerMessage(JSON.stringify({ type: 'alert', data: { id: 'x' } }))).toBeNull()
  })
})

describe('entities store', () => {
  it('loads the top entities of the window and opens one with its timeline', async () => {
    const asked: [string, EntityTimelineQuery | undefined][] = []
    const client = fakeClient({
      topEntities: async (q) => [{ id: 'org:bank_of_korea', name: 'Bank of Korea', type: 'ORG', count: q?.window === '24h' ? 7 : 1 }],
      entityTimeline: async (id, q) => (asked.push([id, q]), timeline(id, [1, 0, 3])),
    })
    const entities = useEntitiesStore()
    await entities.loadTop(client)
    expect(entities.top[0]?.count).toBe(7)
    await entities.open(client, 'org:bank_of_korea')
    expect(entities.selectedName).toBe('Bank of Korea')
    expect(entities.timeline?.points.map((p) => p.count)).toEqual([1, 0, 3])
    entities.width = '1d'
    await entities.loadTimeline(client)
    expect(asked).toEqual([
      ['org:bank_of_korea', { bucket: '1h' }],
      ['org:bank_of_korea', { bucket: '1d' }],
    ])
  })

  it('a slow answer for the entity opened before never replaces the current one', async () => {
    const resolvers: ((t: EntityTimeline) => void)[] = []
    const client = fakeClient({
      entityTimeline: (_id, _q, signal) =>
        new Promise<EntityTimeline>((resolve, reject) => {
          resolvers.push(resolve)
          signal?.addEventListener('abort', () => reject(new ApiError('aborted', 'cancelled')))
        }),
    })
    const entities = useEntitiesStore()
    const first = entities.open(client, 'person:a', 'A')
    const second = entities.open(client, 'person:b', 'B')
    resolvers[1]!(timeline('person:b', [2]))
    resolvers[0]!(timeline('person:a', [9]))
    await Promise.all([first, second])
    expect(entities.timeline?.id).toBe('person:b')
    expect(entities.timelineError).toBeNull()
    expect(entities.loading).toBe(false)
  })
})
