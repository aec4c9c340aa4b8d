import { mount } from '@vue/test-utils'
import { describe, expect, it } from 'vitest'

import HighlightedText from '@/components/HighlightedText.vue'
import { decodeEntities, escapeForHighlight, highlightSegments, highlightText } from '@/lib/highlight'

describe('highlightSegments', () => {
  it('splits on <mark> and </mark> and decodes the escaped rest', () => {
    expect(highlightSegments('Central <mark>bank</mark> holds &amp; &quot;waits&quot;')).toEqual([
      { text: 'Central ', mark: false },
      { text: 'bank', mark: true },
      { text: ' holds & "waits"', mark: false },
    ])
  })

  it('keeps Korean text and numeric references', () => {
    expect(highlightSegments('<mark>삼성전자</mark>가 &#39;반도체&#x27;')).toEqual([
      { text: '삼성전자', mark: true },
      { text: "가 '반도체'", mark: false },
    ])
  })

  it('runs an unclosed mark to the end, drops stray closes and empty runs', () => {
    expect(highlightSegments('a</mark>b<mark>c')).toEqual([
      { text: 'ab', mark: false },
      { text: 'c', mark: true },
    ])
    expect(highlightSegments('<MARK></MARK>')).toEqual([])
  })

  it('leaves unknown and out-of-range references as written', () => {
    expect(decodeEntities('&bogus; &#0; &#x110000;')).toBe('&bogus; &#0; &#x110000;')
  })

  it('round-trips escapeForHighlight', () => {
    const text = `<b>"Tom" & 'Jerry'</b>`
    expect(highlightText(escapeForHighlight(text))).toBe(text)
  })
})

describe('HighlightedText', () => {
  it('renders only the marks as elements: an escaped <script> comes out as text', () => {
    const fragment = '&lt;script&gt;window.__pwned=1&lt;/script&gt; <mark>bank</mark> &lt;img src=x onerror=alert(1)&gt;'
    const wrapper = mount(HighlightedText, { props: { fragment } })
    expect(wrapper.findAll('mark').map((m) => m.text())).toEqual(['bank'])
    expect(wrapper.find('script').exists()).toBe(false)
    expect(wrapper.find('img').exists()).toBe(false)
    expect(wrapper.text()).toBe('<script>window.__pwned=1</script> bank <img src=x onerror=alert(1)>')
    expect(wrapper.html()).toContain('&lt;script&gt;')
  })

  it('a hostile fragment that was NOT escaped stays text too (no trust in the API beyond <mark>)', () => {
    const fragment = '<script>window.__pwned=2</script><mark><b>x</b></mark><img src=x onerror="window.__pwned=3">'
    const wrapper = mount(HighlightedText, { props: { fragment } })
    expect(wrapper.find('script').exists()).toBe(false)
    expect(wrapper.find('b').exists()).toBe(false)
    expect(wrapper.find('img').exists()).toBe(false)
    expect(wrapper.findAll('mark').map((m) => m.text())).toEqual(['<b>x</b>'])
    expect(wrapper.text()).toContain('<script>window.__pwned=2</script>')
  })
})

describe('search help text', () => {
  it('shows the OR syntax in both languages (a bare | would be read as a plural separator)', async () => {
    const { i18n } = await import('@/i18n')
    for (const locale of ['en', 'ko'] as const) {
      i18n.global.locale.value = locale
      expect(i18n.global.t('search.syntax')).toContain('a | b')
    }
  })
})
