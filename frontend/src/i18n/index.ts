// vue-i18n set-up: Korean and English UI text, switchable at run time (stores/preferences.ts).

import { createI18n } from 'vue-i18n'

import en from './en'
import ko from './ko'

export const LOCALES = ['ko', 'en'] as const
export type Locale = (typeof LOCALES)[number]
export type MessageSchema = typeof en

export const i18n = createI18n<[MessageSchema], Locale, false>({
  legacy: false,
  locale: 'en',
  fallbackLocale: 'en',
  messages: { en, ko },
})

function isLocale(value: string | null | undefined): value is Locale {
  return (LOCALES as readonly string[]).includes(value ?? '')
}

/** A stored choice first, then the browser's first supported language, else English. */
export function detectLocale(stored: string | null, preferred: readonly string[]): Locale {
  if (isLocale(stored)) return stored
  for (const tag of preferred) {
    const primary = tag.toLowerCase().split('-')[0]
    if (isLocale(primary)) return primary
  }
  return 'en'
}

export function applyLocale(locale: Locale): void {
  i18n.global.locale.value = locale
  document.documentElement.lang = locale
}
