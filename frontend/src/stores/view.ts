// Which view the page shows: the live feed, stories, search, entities or alerts. Kept in the URL's hash
// (#/stories, #/search) so a reload or a shared link opens the same view; no router needed for five.

import { defineStore } from 'pinia'
import { ref } from 'vue'

export const VIEWS = ['feed', 'stories', 'search', 'entities', 'alerts'] as const
export type View = (typeof VIEWS)[number]

export function viewFromHash(hash: string): View {
  const name = hash.replace(/^#\/?/, '').split(/[/?]/)[0] ?? ''
  return (VIEWS as readonly string[]).includes(name) ? (name as View) : 'feed'
}

export const useViewStore = defineStore('view', () => {
  const current = ref<View>(typeof location === 'undefined' ? 'feed' : viewFromHash(location.hash))

  function show(view: View): void {
    current.value = view
    if (typeof history !== 'undefined' && viewFromHash(location.hash) !== view) {
      history.replaceState(null, '', view === 'feed' ? location.pathname + location.search : `#/${view}`)
    }
  }

  function followHash(): void {
    current.value = viewFromHash(location.hash)
  }

  return { current, show, followHash }
})
