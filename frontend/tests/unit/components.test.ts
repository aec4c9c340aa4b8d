import { mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it } from 'vitest'

import ArticleCard from '@/components/ArticleCard.vue'
import SentimentBadge from '@/components/SentimentBadge.vue'
import TrendsPanel from '@/components/TrendsPanel.vue'
import { applyLocale, detectLocale, i18n } from '@/i18n'
import en from '@/i18n/en'
import ko from '@/i18n/ko'
import { useFiltersStore } from '@/stores/filters'
import { useInsightsStore } from '@/stores/insights'

import { fakeClient, makeArticle, trends } from './helpers'

function keys(obj: object, prefix = ''): string[] {
  return Object.entries(obj).flatMap(([k, v]) => (typeof v === 'object' ? keys(v as object, `${prefix}${k}.`) : [`${prefix}${k}`]))
}

describe('rendering article text', () => {
  beforeEach(() => {
    setActivePinia(createPinia())
    applyLocale('en')
  })

  it('shows markup in a title as text and creates no elements from it', () => {
    const title = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"> <b>bold</b> & more'
    const article = makeArticle({ title, description: '<i>desc</i>', url: 'javascript:alert(1)' }, {
      keywords: ['<svg onload=alert(1)>'],
      entities: [{ text: '<u>Entity</u>', type: 'ORG' }],
    })
    const wrapper = mount(ArticleCard, { props: { article }, global: { plugins: [i18n] } })
    const heading = wrapper.get('[data-testid="article-title"]')
    expect(heading.text()).toBe(title)
    expect(wrapper.find('script').exists()).toBe(false)
    expect(wrapper.find('img').exists()).toBe(false)
    expect(wrapper.find('b').exists()).toBe(false)
    expect(wrapper.find('svg').exists()).toBe(false)
    expect(wrapper.find('a').exists()).toBe(false) // javascript: URL is not linked
    expect(wrapper.text()).toContain('<i>desc</i>')
    expect(wrapper.text()).toContain('<u>Entity</u>')
  })

  it('links http(s) sources safely in a new tab', () => {
    const wrapper = mount(ArticleCard, { props: { article: makeArticle() }, global: { plugins: [i18n] } })
    const link = wrapper.get('a')
    expect(link.attributes('target')).toBe('_blank')
    expect(link.attributes('rel')).toContain('noopener')
  })
})

describe('sentiment badge', () => {
  it('says the sentiment in words and by icon, in both languages', () => {
    applyLocale('en')
    const wrapper = mount(SentimentBadge, { props: { sentiment: 'negative', score: -0.5 }, global: { plugins: [i18n] } })
    expect(wrapper.attributes('aria-label')).toBe('Sentiment Negative, score -0.50')
    expect(wrapper.text()).toContain('▼')
    applyLocale('ko')
    const ko = mount(SentimentBadge, { props: { sentiment: 'positive', score: 0.25 }, global: { plugins: [i18n] } })
    expect(ko.text()).toContain('긍정')
    expect(document.documentElement.lang).toBe('ko')
    applyLocale('en')
  })
})

describe('trends panel', () => {
  beforeEach(() => {
    setActivePinia(createPinia())
    applyLocale('en')
  })

  it("lists the server's terms, and choosing one filters the feed by it", async () => {
    const insights = useInsightsStore()
    const body = trends([{ term: 'rates', count: 4, type: null }], [{ term: 'Seoul', count: 2, type: 'GPE' }])
    await insights.refreshTrends(fakeClient({ trends: async () => body }))
    const wrapper = mount(TrendsPanel, { global: { plugins: [i18n] } })
    const buttons = wrapper.findAll('button.trend')
    expect(buttons.map((b) => b.find('.trend__text').text())).toEqual(['rates', 'Seoul GPE'])
    await buttons[1]!.trigger('click')
    await buttons[0]!.trigger('click')
    const filters = useFiltersStore()
    expect(filters.entity).toBe('Seoul')
    expect(filters.text).toBe('rates')
  })
})

describe('i18n', () => {
  it('has every English key in Korean, none empty', () => {
    expect(keys(ko).sort()).toEqual(keys(en).sort())
    expect(keys(ko).filter((k) => !k)).toEqual([])
  })

  it('picks a stored choice, then the browser languages, then English', () => {
    expect(detectLocale('ko', ['en-US'])).toBe('ko')
    expect(detectLocale(null, ['fr-FR', 'ko-KR'])).toBe('ko')
    expect(detectLocale('xx', ['fr'])).toBe('en')
  })
})
