// Exponential backoff with jitter, so that many dashboards do not reconnect in lockstep after an outage.

export interface BackoffOptions {
  /** First delay (ms). */
  baseMs: number
  /** Ceiling (ms). */
  maxMs: number
  /** 0..1: how much of the delay is randomised away (0 = none). */
  jitter: number
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 1_000, maxMs: 30_000, jitter: 0.5 }

/** Delay before reconnect attempt `attempt` (0-based): min(max, base * 2^attempt), less up to `jitter` of it. */
export function backoffDelay(attempt: number, options: BackoffOptions = DEFAULT_BACKOFF, random = Math.random): number {
  const exp = Math.min(options.maxMs, options.baseMs * 2 ** Math.max(0, Math.min(attempt, 30)))
  return Math.round(exp * (1 - options.jitter * random()))
}
