// Entry point: runtime config, API client, i18n and Pinia, then the app.
import { createPinia } from 'pinia'
import { createApp } from 'vue'

import { loadConfig } from '@/api/config'
import { createApiClient } from '@/api/http'
import App from '@/App.vue'
import { provideApi } from '@/composables/useApi'
import { i18n } from '@/i18n'
import '@/style.css'

const config = loadConfig()
const app = createApp(App)
provideApi(app, { config, client: createApiClient(config) })
app.use(createPinia())
app.use(i18n)
app.mount('#app')
