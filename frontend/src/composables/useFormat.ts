// Locale-aware formatting bound to the current UI language and the reader's browser locale.

import { computed } from 'vue'
import { useI18n } from 'vue-i18n'

import { dateLocale, formatDateTime, formatRelative } from '@/lib/format'

export function useFormat() {
  const { locale, t, te } = useI18n()
  const dates = computed(() => dateLocale(locale.value, navigator.languages ?? [navigator.language]))

  const languageNames = computed(() => {
    try {
      return new Intl.DisplayNames([locale.value], { type: 'language' })
    } catch {
      return null
    }
  })

  return {
    dateTime: (iso: string | null | undefined) => formatDateTime(iso, dates.value),
    relative: (iso: string | null | undefined, now?: number) => formatRelative(iso, dates.value, now),
    /** "en" -> "English" / "영어"; unknown codes are shown as they are. */
    languageName(code: string): string {
      if (!code || code === 'und') return code
      try {
        return languageNames.value?.of(code) ?? code
      } catch {
        return code
      }
    },
    categoryName: (category: string) => (te(`category.${category}`) ? t(`category.${category}`) : category),
  }
}
