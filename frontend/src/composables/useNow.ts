// A clock that ticks while the component lives: for countdowns and "3 minutes ago".

import { getCurrentScope, onScopeDispose, ref } from 'vue'

export function useNow(intervalMs = 1_000) {
  const now = ref(Date.now())
  const timer = setInterval(() => (now.value = Date.now()), intervalMs)
  if (getCurrentScope()) onScopeDispose(() => clearInterval(timer))
  return now
}
