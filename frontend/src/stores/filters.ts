// The filters the reader has chosen. Matching itself is lib/filters.ts; the live feed sends
// `server` as a WebSocket subscription and the feed applies `current` to what is loaded.

import { defineStore } from 'pinia'
import { computed, ref } from 'vue'

import type { Sentiment } from '@/api/types'
import { activeFilterCount, toServerFilters, type FeedFilters } from '@/lib/filters'

export const useFiltersStore = defineStore('filters', () => {
  const sentiment = ref<Sentiment | ''>('')
  const source = ref('')
  const category = ref('')
  const language = ref('')
  const entity = ref('')
  const text = ref('')

  const current = computed<FeedFilters>(() => ({
    sentiment: sentiment.value || undefined,
    source: source.value,
    category: category.value,
    language: language.value,
    entity: entity.value,
    text: text.value,
  }))
  const server = computed(() => toServerFilters(current.value))
  /** Changes exactly when the server-side part changes (what a new subscription is sent for). */
  const serverKey = computed(() => JSON.stringify(server.value))
  const activeCount = computed(() => activeFilterCount(current.value))

  function reset(): void {
    sentiment.value = ''
    source.value = category.value = language.value = entity.value = text.value = ''
  }

  return { sentiment, source, category, language, entity, text, current, server, serverKey, activeCount, reset }
})
