// The API client and config, provided once by main.ts and injected where needed (tests provide fakes).

import { inject, type App, type InjectionKey } from 'vue'

import type { ApiConfig } from '@/api/config'
import type { ApiClient } from '@/api/http'

export interface ApiContext {
  config: ApiConfig
  client: ApiClient
}

export const API_KEY: InjectionKey<ApiContext> = Symbol('api')

export function provideApi(app: App, context: ApiContext): void {
  app.provide(API_KEY, context)
}

export function useApi(): ApiContext {
  const context = inject(API_KEY)
  if (!context) throw new Error('useApi() needs provideApi() (see main.ts)')
  return context
}
