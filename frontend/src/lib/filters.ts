// What "matches the filters" means, in one place: the feed applies it to what is loaded, and the
// server-side part (everything but free text) is what the WebSocket subscription sends.

import type { AnalyzedArticle, ServerFilters } from '@/api/types'

export interface FeedFilters extends ServerFilters {
  /** Free text over what is loaded (title, description, source, keywords, entities, summary); client only. */
  text?: string
}

export const SERVER_FILTER_KEYS = ['sentiment', 'source', 'category', 'language', 'entity'] as const

/** Case- and width-insensitive form used for comparisons (Korean and Latin alike). */
export function fold(text: string): string {
  return text.normalize('NFKC').toLocaleLowerCase().trim()
}

/** The filters the server understands, without empty values. */
export function toServerFilters(filters: FeedFilters): ServerFilters {
  const out: ServerFilters = {}
  for (const key of SERVER_FILTER_KEYS) {
    const value = filters[key]?.trim()
    if (value) (out as Record<string, string>)[key] = value
  }
  return out
}

function primaryLanguage(tag: string): string {
  return fold(tag).split(/[-_]/)[0] ?? ''
}

export function matchesFilters(article: AnalyzedArticle, filters: FeedFilters): boolean {
  const a = article.analysis
  const f = toServerFilters(filters)
  if (f.sentiment && a.sentiment !== f.sentiment) return false
  if (f.source && fold(article.source) !== fold(f.source)) return false
  if (f.category && fold(a.category) !== fold(f.category)) return false
  if (f.language && primaryLanguage(a.language) !== primaryLanguage(f.language)) return false
  if (f.entity) {
    const wanted = fold(f.entity)
    if (!a.entities.some((e) => fold(e.text) === wanted)) return false
  }
  const terms = fold(filters.text ?? '')
    .split(/\s+/)
    .filter(Boolean)
  if (terms.length) {
    const haystack = fold(
      [
        article.title,
        article.description ?? '',
        article.source,
        a.summary ?? '',
        ...a.keywords,
        ...a.entities.map((e) => e.text),
      ].join('\n'),
    )
    if (!terms.every((term) => haystack.includes(term))) return false
  }
  return true
}

export function activeFilterCount(filters: FeedFilters): number {
  return Object.keys(toServerFilters(filters)).length + (filters.text?.trim() ? 1 : 0)
}
