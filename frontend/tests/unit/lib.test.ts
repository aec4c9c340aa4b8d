import { describe, expect, it } from 'vitest'

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
