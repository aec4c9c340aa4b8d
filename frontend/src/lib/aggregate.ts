// Client-side aggregates over the loaded articles: the fallback when the server has no
// /stats/sentiment or /trends (yet), and clearly labelled as such in the UI.

import type { AnalyzedArticle, SentimentBucket, Trends, TrendItem } from '@/api/types'

const NICE_BUCKETS_MS = [60_000, 300_000, 900_000, 3_600_000, 6 * 3_600_000, 86_400_000, 7 * 86_400_000, 30 * 86_400_000]

/** A round bucket width giving at most `target` buckets over [min, max]. */
export function pickBucketMs(minMs: number, maxMs: number, target = 24): number {
  const span = Math.max(0, maxMs - minMs)
  return NICE_BUCKETS_MS.find((size) => span / size <= target) ?? NICE_BUCKETS_MS[NICE_BUCKETS_MS.length - 1]!
}

/** When an article counts in time: when it was analysed, as the server's windowed statistics do. */
function eventTime(article: AnalyzedArticle): number {
  return Date.parse(article.analyzed_at ?? article.published_at)
}

/** Sentiment counts and mean score per time bucket (by analysis time), per source when asked. */
export function bucketSentiment(articles: AnalyzedArticle[], perSource = false): SentimentBucket[] {
  const times = articles.map(eventTime).filter((t) => !Number.isNaN(t))
  if (!times.length) return []
  const size = pickBucketMs(Math.min(...times), Math.max(...times))
  const buckets = new Map<string, SentimentBucket & { sum: number; n: number }>()
  for (const article of articles) {
    const t = eventTime(article)
    if (Number.isNaN(t)) continue
    const start = new Date(Math.floor(t / size) * size).toISOString()
    const source = perSource ? article.source : null
    const key = `${start}\u0000${source ?? ''}`
    let bucket = buckets.get(key)
    if (!bucket) {
      bucket = { start, source, positive: 0, neutral: 0, negative: 0, meanScore: 0, sum: 0, n: 0 }
      buckets.set(key, bucket)
    }
    bucket[article.analysis.sentiment] += 1
    bucket.sum += article.analysis.sentiment_score
    bucket.n += 1
    bucket.meanScore = bucket.sum / bucket.n
  }
  return [...buckets.values()]
    .map(({ sum: _sum, n: _n, ...bucket }) => bucket)
    .sort((a, b) => a.start.localeCompare(b.start) || (a.source ?? '').localeCompare(b.source ?? ''))
}

function top(counts: Map<string, TrendItem>, limit: number): TrendItem[] {
  return [...counts.values()].sort((a, b) => b.count - a.count || a.text.localeCompare(b.text)).slice(0, limit)
}

/** Most frequent keywords and entities among the loaded articles. */
export function countTrends(articles: AnalyzedArticle[], limit = 10): Trends {
  const keywords = new Map<string, TrendItem>()
  const entities = new Map<string, TrendItem>()
  for (const article of articles) {
    const seen = new Set<string>()
    for (const keyword of article.analysis.keywords) {
      const key = keyword.toLocaleLowerCase()
      if (seen.has(key)) continue
      seen.add(key)
      const item = keywords.get(key) ?? { text: keyword, count: 0 }
      item.count += 1
      keywords.set(key, item)
    }
    for (const entity of article.analysis.entities) {
      const key = `${entity.type}\u0000${entity.text.toLocaleLowerCase()}`
      const item = entities.get(key) ?? { text: entity.text, type: entity.type, count: 0 }
      item.count += 1
      entities.set(key, item)
    }
  }
  return { keywords: top(keywords, limit), entities: top(entities, limit) }
}
