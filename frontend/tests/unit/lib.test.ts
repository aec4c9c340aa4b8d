import { describe, expect, it } from 'vitest'

import { bucketSentiment, countTrends, pickBucketMs } from '@/lib/aggregate'
import { backoffDelay } from '@/lib/backoff'
import { activeFilterCount, matchesFilters, toServerFilters } from '@/lib/filters'
import { dateLocale, formatScore, safeHref } from '@/lib/format'

import { makeArticle } from './helpers'

describe('backoffDelay', () => {
  const opts = { baseMs: 1000, maxMs: 30_000, jitter: 0.5 }

  it('doubles from the base up to the ceiling without jitter', () => {
    const noJitter = { ...opts, jitter: 0 }
    expect([0, 1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, noJitter))).toEqual([
      1000, 2000, 4000, 8000, 16000, 30000, 30000,
    ])
  })

  it('takes away at most `jitter` of the delay', () => {
    expect(backoffDelay(3, opts, () => 0)).toBe(8000)
    expect(backoffDelay(3, opts, () => 0.999999)).toBe(4000)
    expect(backoffDelay(1000, opts, () => 0)).toBe(30000)
  })
})

describe('matchesFilters', () => {
  const article = makeArticle(
    { title: '서울 증시 급등', source: 'Yonhap', description: 'KOSPI rallies' },
    {
      sentiment: 'positive',
      category: 'business',
      language: 'ko',
      keywords: ['증시', 'KOSPI'],
      entities: [
        { text: '서울', type: 'LOC' },
        { text: 'Samsung Electronics', type: 'ORG' },
      ],
    },
  )

  it('matches with no filters', () => {
    expect(matchesFilters(article, {})).toBe(true)
  })

  it.each([
    [{ sentiment: 'positive' as const }, true],
    [{ sentiment: 'negative' as const }, false],
    [{ source: 'yonhap' }, true],
    [{ source: 'BBC' }, false],
    [{ category: 'Business' }, true],
    [{ category: 'sports' }, false],
    [{ language: 'ko-KR' }, true],
    [{ language: 'en' }, false],
    [{ entity: 'samsung electronics' }, true],
    [{ entity: 'Samsung' }, false],
    [{ text: '증시' }, true],
    [{ text: 'kospi 서울' }, true],
    [{ text: 'kospi london' }, false],
    [{ text: '  ' }, true],
    [{ sentiment: 'positive' as const, source: 'Yonhap', entity: '서울', text: 'rallies' }, true],
    [{ sentiment: 'positive' as const, source: 'Reuters' }, false],
  ])('%j -> %s', (filters, expected) => {
    expect(matchesFilters(article, filters)).toBe(expected)
  })

  it('compares Unicode forms alike (NFKC)', () => {
    const halfwidth = makeArticle({ title: 'ＡＢＣ News' })
    expect(matchesFilters(halfwidth, { text: 'abc' })).toBe(true)
  })

  it('sends only non-empty, server-side filters', () => {
    expect(toServerFilters({ sentiment: 'negative', source: ' ', text: 'x', entity: 'Seoul' })).toEqual({
      sentiment: 'negative',
      entity: 'Seoul',
    })
    expect(activeFilterCount({ sentiment: 'negative', source: '', text: 'x' })).toBe(2)
  })
})

describe('aggregates', () => {
  it('picks a round bucket width', () => {
    expect(pickBucketMs(0, 10 * 60_000)).toBe(60_000)
    expect(pickBucketMs(0, 20 * 3_600_000)).toBe(3_600_000)
    expect(pickBucketMs(0, 90 * 86_400_000)).toBe(7 * 86_400_000)
  })

  it('buckets sentiment with counts and mean, per source when asked', () => {
    const articles = [
      makeArticle({ analyzed_at: '2024-05-01T10:05:00Z', source: 'A' }, { sentiment: 'positive', sentiment_score: 0.8 }),
      makeArticle({ analyzed_at: '2024-05-01T10:10:00Z', source: 'B' }, { sentiment: 'negative', sentiment_score: -0.4 }),
      makeArticle({ analyzed_at: '2024-05-01T12:10:00Z', source: 'A' }, { sentiment: 'neutral', sentiment_score: 0 }),
    ]
    const all = bucketSentiment(articles)
    expect(all.length).toBeGreaterThanOrEqual(2)
    const first = all[0]!
    expect(first.positive + first.negative).toBe(2)
    expect(first.meanScore).toBeCloseTo(0.2)
    const perSource = bucketSentiment(articles, true)
    expect(new Set(perSource.map((b) => b.source))).toEqual(new Set(['A', 'B']))
    expect(bucketSentiment([])).toEqual([])
  })

  it('counts keywords once per article and entities by type', () => {
    const trends = countTrends([
      makeArticle({}, { keywords: ['AI', 'ai', 'chips'], entities: [{ text: 'Seoul', type: 'GPE' }] }),
      makeArticle({}, { keywords: ['chips'], entities: [{ text: 'Seoul', type: 'GPE' }] }),
    ])
    expect(trends.keywords[0]).toEqual({ text: 'chips', count: 2 })
    expect(trends.keywords.find((k) => k.text.toLowerCase() === 'ai')?.count).toBe(1)
    expect(trends.entities).toEqual([{ text: 'Seoul', type: 'GPE', count: 2 }])
  })
})

describe('format', () => {
  it('signs scores', () => {
    expect(formatScore(0.8)).toBe('+0.80')
    expect(formatScore(-0.256)).toBe('-0.26')
    expect(formatScore(0)).toBe('0.00')
  })

  it('links only http(s)', () => {
    expect(safeHref('https://a.example/x')).toBe('https://a.example/x')
    expect(safeHref('javascript:alert(1)')).toBeNull()
    expect(safeHref('data:text/html,<script>')).toBeNull()
    expect(safeHref('not a url')).toBeNull()
  })

  it('keeps the reader region for dates in the UI language', () => {
    expect(dateLocale('en', ['en-GB', 'ko-KR'])).toBe('en-GB')
    expect(dateLocale('ko', ['en-GB', 'ko-KR'])).toBe('ko-KR')
    expect(dateLocale('ko', ['en-US'])).toBe('ko')
  })
})
