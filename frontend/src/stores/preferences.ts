// The reader's preferences that outlive a page load (UI language), kept in localStorage.

import { defineStore } from 'pinia'
import { ref, watch } from 'vue'

import { applyLocale, detectLocale, type Locale } from '@/i18n'

const KEY = 'news-dashboard.locale'

function stored(): string | null {
  try {
    return localStorage.getItem(KEY)
  } catch {
    return null
  }
}

export const usePreferencesStore = defineStore('preferences', () => {
  const locale = ref<Locale>(detectLocale(stored(), navigator.languages ?? [navigator.language]))

  watch(
    locale,
    (value) => {
      applyLocale(value)
      try {
        localStorage.setItem(KEY, value)
      } catch {
        /* private mode: the choice lasts for this page only */
      }
    },
    { immediate: true },
  )

  return { locale }
})
