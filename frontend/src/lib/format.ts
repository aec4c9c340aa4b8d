// Display helpers: numbers, dates in the reader's locale, and sentiment shown by shape as well as colour.

import type { Sentiment } from '@/api/types'

/** A glyph per sentiment, so the label never depends on colour alone (paired with text in the UI). */
export const SENTIMENT_ICON: Record<Sentiment, string> = {
  positive: '▲',
  neutral: '●',
  negative: '▼',
}

export function formatScore(score: number): string {
  const rounded = Math.round(score * 100) / 100
  return `${rounded > 0 ? '+' : ''}${rounded.toFixed(2)}`
}

export function formatImportance(score: number): string {
  return (Math.round(score * 10) / 10).toFixed(1)
}

/**
 * The locale for dates: the reader's own browser locale when it is in the UI language
 * (en-GB stays en-GB), else the UI language itself.
 */
export function dateLocale(uiLocale: string, preferred: readonly string[]): string {
  return preferred.find((tag) => tag.toLowerCase().split('-')[0] === uiLocale) ?? uiLocale
}

export function formatDateTime(iso: string | undefined | null, locale: string): string {
  if (!iso) return ''
  const date = new Date(iso)
  if (Number.isNaN(date.getTime())) return ''
  return new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'short' }).format(date)
}

const UNITS: [Intl.RelativeTimeFormatUnit, number][] = [
  ['year', 365 * 86_400],
  ['month', 30 * 86_400],
  ['day', 86_400],
  ['hour', 3_600],
  ['minute', 60],
  ['second', 1],
]

export function formatRelative(iso: string | undefined | null, locale: string, now = Date.now()): string {
  if (!iso) return ''
  const t = Date.parse(iso)
  if (Number.isNaN(t)) return ''
  const seconds = Math.round((t - now) / 1000)
  const rtf = new Intl.RelativeTimeFormat(locale, { numeric: 'auto' })
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size || unit === 'second') return rtf.format(Math.trunc(seconds / size), unit)
  }
  return ''
}

/** The host of a URL for display ("www.bbc.co.uk"), or "" when it is not a URL. */
export function hostOf(url: string): string {
  try {
    return new URL(url).host
  } catch {
    return ''
  }
}

/** Only http(s) links are rendered as links; anything else (javascript:, data:) is shown as text. */
export function safeHref(url: string): string | null {
  try {
    const parsed = new URL(url)
    return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed.toString() : null
  } catch {
    return null
  }
}
