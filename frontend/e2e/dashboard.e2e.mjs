// Browser half of tests/e2e/test_dashboard.py: drives the built dashboard in Debian's Chromium.
//
// Protocol with the Python test: parameters come as JSON in E2E_PARAMS; once the page is live this
// script prints "READY" and waits for one line on stdin (the test then produces the articles); once
// the Stories view is open it prints "STORIES_READY" and waits again (the test produces a story's
// updates); it prints "RESULT <json>" and exits 0 when every check passed, or prints the failure and exits 1.
import { createInterface } from 'node:readline'

import { chromium } from 'playwright-core'

const params = JSON.parse(process.env.E2E_PARAMS ?? '{}')
const {
  url,
  screenshotDir,
  timeoutMs = 90_000,
  plain, // { id, title, source }: produced to news.raw, analysed by the worker
  stripped, // { id, title, source }: markup in the raw title, removed by the pipeline
  literal, // { id, title, source }: a title that reaches the browser with a literal <script>
  story, // { id, title, sources, articles }: a three-source story the test produces once the view is open
  search, // { uid, english, korean, hostile: { id, query } }: articles indexed in OpenSearch
  entity, // { id, name, mentions }: named by the story's articles
  watchlist, // name of a watchlist on that entity, made before the story's articles arrive
} = params

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

const log = (...args) => console.error('[e2e]', ...args)

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`)
}

function card(page, id) {
  return page.locator(`[data-testid="article-card"][data-id="${id}"]`)
}

// One reader for the whole run: lines from the test, handed out one per waitForLine().
const stdinLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]()
async function waitForLine() {
  const { value, done } = await stdinLines.next()
  if (done) throw new Error('stdin closed before the go signal')
  return value
}

function storyCard(page, id) {
  return page.locator(`[data-testid="story-card"][data-story-id="${id}"]`)
}

function searchHit(page, id) {
  return page.locator(`[data-testid="search-hit"][data-article-id="${id}"]`)
}

async function noInjection(page, scope) {
  const injected = await page.evaluate(
    (sel) => ({
      pwned: window.__pwned ?? null,
      elements: document.querySelectorAll(`${sel} script, ${sel} img, ${sel} b, ${sel} iframe`).length,
    }),
    scope,
  )
  check(injected.pwned === null, `no injected script ran (window.__pwned = ${injected.pwned})`)
  check(injected.elements === 0, `no element created from article markup in ${scope} (${injected.elements})`)
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: FLAGS,
  headless: true,
})
const result = { checks: [] }
let page
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-US' })
  page = await context.newPage()
  const pageErrors = []
  const dialogs = []
  const sentFrames = []
  page.on('pageerror', (err) => pageErrors.push(String(err)))
  page.on('console', (msg) => msg.type() === 'error' && log('console error:', msg.text()))
  page.on('dialog', async (dialog) => {
    dialogs.push(dialog.message())
    await dialog.dismiss()
  })
  page.on('websocket', (ws) => ws.on('framesent', (frame) => sentFrames.push(String(frame.payload))))

  await page.goto(url, { waitUntil: 'domcontentloaded' })
  await page.getByTestId('connection').filter({ hasText: 'Live' }).waitFor({ timeout: timeoutMs })
  result.checks.push('connected')
  console.log('READY')
  await waitForLine()

  // 1. Articles produced to Kafka appear in the live feed.
  for (const expected of [plain, stripped, literal]) {
    await card(page, expected.id).waitFor({ state: 'visible', timeout: timeoutMs })
  }
  const plainTitle = await card(page, plain.id).getByTestId('article-title').innerText()
  check(plainTitle === plain.title, `plain title shown as produced: ${JSON.stringify(plainTitle)}`)
  result.checks.push('articles appear live')

  // Top stories (REST /news/top) follow the arrivals.
  await page.getByTestId('top-stories').getByText(plain.title).waitFor({ timeout: 20_000 })

  // 2. Markup in article text is shown as text and runs nothing.
  const literalTitle = await card(page, literal.id).getByTestId('article-title').textContent()
  check(literalTitle.trim() === literal.title, `literal title shown as text: ${JSON.stringify(literalTitle)}`)
  check(literal.title.includes('<script>'), 'the literal title carries <script>')
  const strippedTitle = await card(page, stripped.id).getByTestId('article-title').textContent()
  check(strippedTitle.trim() === stripped.title, `stripped title: ${JSON.stringify(strippedTitle)}`)
  const injected = await page.evaluate(() => ({
    pwned: window.__pwned ?? null,
    elements: document.querySelectorAll(
      '[data-testid="feed"] script, [data-testid="feed"] img, [data-testid="feed"] b, [data-testid="feed"] iframe',
    ).length,
  }))
  check(injected.pwned === null, `no injected script ran (window.__pwned = ${injected.pwned})`)
  check(injected.elements === 0, `no element created from article markup (${injected.elements})`)
  check(dialogs.length === 0, `no dialog opened: ${dialogs.join(', ')}`)
  result.checks.push('markup rendered as text')

  // 3. The detail panel shows the analysis; Escape closes it.
  await card(page, plain.id).getByTestId('article-details').click()
  const detail = page.getByTestId('article-detail')
  await detail.waitFor({ state: 'visible' })
  check((await detail.locator('#detail-title').innerText()) === plain.title, 'detail panel shows the article')
  await page.keyboard.press('Escape')
  await detail.waitFor({ state: 'hidden' })
  result.checks.push('detail panel')

  await page.screenshot({ path: `${screenshotDir}/dashboard-1280.png`, fullPage: true })

  // 4. A filter hides what does not match, and is sent to the server as a subscription.
  await page.getByTestId('filter-source').selectOption(literal.source)
  await card(page, plain.id).waitFor({ state: 'detached', timeout: 10_000 })
  await card(page, stripped.id).waitFor({ state: 'detached', timeout: 10_000 })
  check(await card(page, literal.id).isVisible(), 'the matching article stays')
  const subscribed = () =>
    sentFrames.some((frame) => {
      try {
        const msg = JSON.parse(frame)
        return msg.type === 'subscribe' && msg.filters?.source === literal.source
      } catch {
        return false
      }
    })
  for (let i = 0; i < 50 && !subscribed(); i++) await page.waitForTimeout(100)
  check(subscribed(), `subscribe sent with the source filter (frames: ${sentFrames.join(' | ')})`)
  await page.screenshot({ path: `${screenshotDir}/dashboard-filtered.png`, fullPage: true })
  await page.getByTestId('filter-source').selectOption('')
  await card(page, plain.id).waitFor({ state: 'visible', timeout: 10_000 })
  await page.getByTestId('filter-text').fill('no-article-has-this-word')
  await card(page, plain.id).waitFor({ state: 'detached', timeout: 10_000 })
  await page.getByTestId('filter-text').fill('')
  await card(page, plain.id).waitFor({ state: 'visible', timeout: 10_000 })
  result.checks.push('filters hide and restore')

  // 5. Korean UI, and a phone-width layout with no horizontal scrolling.
  await page.getByTestId('locale-ko').click()
  await page.getByRole('heading', { level: 1, name: '실시간 뉴스' }).waitFor()
  check((await page.getAttribute('html', 'lang')) === 'ko', 'html lang follows the UI language')
  await page.setViewportSize({ width: 390, height: 844 })
  await page.waitForTimeout(300)
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
  check(overflow <= 1, `no horizontal scroll at phone width (${overflow}px too wide)`)
  await page.screenshot({ path: `${screenshotDir}/dashboard-phone-ko.png`, fullPage: true })
  result.checks.push('korean + phone width')

  // A Korean browser that never chose a language opens the dashboard in Korean (a fresh context: no stored choice).
  const koContext = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'ko-KR' })
  const koPage = await koContext.newPage()
  await koPage.goto(url, { waitUntil: 'domcontentloaded' })
  await koPage.getByRole('heading', { level: 1, name: '실시간 뉴스' }).waitFor({ timeout: timeoutMs })
  check((await koPage.getAttribute('html', 'lang')) === 'ko', 'a Korean browser opens the dashboard in Korean')
  await koContext.close()
  result.checks.push('korean browser opens in korean')

  // 6. Stories: a story produced while the view is open appears live, with its sources and coverage.
  await page.setViewportSize({ width: 1280, height: 900 })
  await page.getByTestId('locale-en').click()
  await page.getByTestId('nav-stories').click()
  const storiesView = page.getByTestId('stories')
  await storiesView.waitFor()
  await storiesView.getByText('Loading…').waitFor({ state: 'detached', timeout: 20_000 })
  console.log('STORIES_READY')
  await waitForLine()
  const sc = storyCard(page, story.id)
  await sc.waitFor({ timeout: timeoutMs })
  await sc.getByTestId('story-source-count').filter({ hasText: '3 sources' }).waitFor({ timeout: timeoutMs })
  const sourcesText = await sc.getByTestId('story-sources').innerText()
  for (const name of story.sources) check(sourcesText.includes(name), `story lists source ${name}: ${sourcesText}`)
  check((await sc.getByTestId('story-title').innerText()) === story.title, 'story title')
  check(await sc.getByText('Updated').isVisible(), 'a live update is marked')
  check(await sc.getByTestId('volume-chart').isVisible(), 'the story has its volume chart')
  result.checks.push('story appears live')
  // The story's articles matched the watchlist: the alerts arrive live (counted in the nav).
  await page.getByTestId('alerts-unseen').waitFor({ timeout: 30_000 })
  const unseenLive = Number(await page.getByTestId('alerts-unseen').innerText())
  await page.screenshot({ path: `${screenshotDir}/stories-1280.png`, fullPage: true })

  // After a reload the view (kept in the URL) lists it from GET /stories; in Korean too.
  await page.reload({ waitUntil: 'domcontentloaded' })
  await storyCard(page, story.id).waitFor({ timeout: 20_000 })
  await page.getByTestId('locale-ko').click()
  await storyCard(page, story.id).getByTestId('story-source-count').filter({ hasText: '매체 3곳' }).waitFor()
  await page.getByRole('heading', { level: 2, name: '스토리' }).waitFor()
  await page.screenshot({ path: `${screenshotDir}/stories-ko.png`, fullPage: true })
  await page.getByTestId('locale-en').click()
  result.checks.push('story from GET /stories, in korean')

  // The story's detail lists its articles as links.
  await storyCard(page, story.id).getByTestId('story-title').click()
  const storyDetail = page.getByTestId('story-detail')
  await storyDetail.waitFor()
  const storyLinks = storyDetail.getByTestId('story-articles').locator('a')
  for (let i = 0; i < 100 && (await storyLinks.count()) < story.articles.length; i++) await page.waitForTimeout(100)
  check((await storyLinks.count()) === story.articles.length, `the detail lists ${story.articles.length} articles`)
  check((await storyLinks.first().getAttribute('rel'))?.includes('noopener'), 'article links open safely')
  await page.keyboard.press('Escape')
  await storyDetail.waitFor({ state: 'hidden' })
  result.checks.push('story detail')

  // 7. Search on the server: typed quickly (debounced; stale answers dropped), highlighted, in English.
  await page.getByTestId('nav-search').click()
  const input = page.getByTestId('search-input')
  await input.pressSequentially(search.english.query, { delay: 15 })
  const enHit = searchHit(page, search.english.id)
  // The view opened with every article (an empty query, no highlights): wait for the answer to the typed one.
  await enHit.locator('mark').first().waitFor({ timeout: 30_000 })
  const enSummary = await page.getByTestId('search-summary').innerText()
  check(enSummary === '1 article found', `only the English article matches: ${enSummary}`)
  await page.getByTestId('search-facets').waitFor()
  await page.screenshot({ path: `${screenshotDir}/search-en.png`, fullPage: true })
  result.checks.push('search in english')

  // A hostile title in a hit: its <script> is text, only <mark> becomes markup.
  await input.fill(search.hostile.query)
  const hostileHit = searchHit(page, search.hostile.id)
  await hostileHit.waitFor({ timeout: 30_000 })
  const hostileTitle = await hostileHit.getByTestId('search-hit-title').innerText()
  check(hostileTitle.includes('<script>window.__pwned=1</script>'), `hostile title shown as text: ${hostileTitle}`)
  await noInjection(page, '[data-testid="search"]')
  result.checks.push('search highlight is text')

  // Facets filter: the uid alone finds all three; the Korean language facet keeps the Korean one.
  await input.fill(search.uid)
  await searchHit(page, search.korean.id).waitFor({ timeout: 30_000 })
  await searchHit(page, search.english.id).waitFor({ timeout: 30_000 })
  await page.locator('[data-testid="facet-language"][data-value="ko"]').click()
  await searchHit(page, search.english.id).waitFor({ state: 'detached', timeout: 20_000 })
  check(await searchHit(page, search.korean.id).isVisible(), 'the Korean hit stays under lang=ko')
  await page.getByTestId('search-active-language').click()
  await searchHit(page, search.english.id).waitFor({ timeout: 20_000 })
  result.checks.push('facet filters')

  // Korean UI, Korean query: a word inside a compound with a particle (삼성전자가) is found.
  await page.getByTestId('locale-ko').click()
  await input.fill(search.korean.query)
  const koHit = searchHit(page, search.korean.id)
  await koHit.waitFor({ timeout: 30_000 })
  await searchHit(page, search.english.id).waitFor({ state: 'detached', timeout: 20_000 })
  check((await koHit.locator('mark').count()) > 0, 'the Korean hit has highlighted matches')
  const summary = await page.getByTestId('search-summary').innerText()
  check(/건/.test(summary), `the count is in Korean: ${summary}`)
  await page.screenshot({ path: `${screenshotDir}/search-ko.png`, fullPage: true })
  result.checks.push('search in korean')

  // 8. Entity page: the story's entity chip opens it, with the articles naming it over time.
  await page.getByTestId('locale-en').click()
  await page.getByTestId('nav-stories').click()
  await storyCard(page, story.id).locator(`[data-testid="story-entity"][data-entity-id="${entity.id}"]`).click()
  await page.getByTestId('entity-name').waitFor()
  const entityName = await page.getByTestId('entity-name').innerText()
  check(entityName === entity.name, `the entity page is titled with its name: ${entityName}`)
  let mentions = 0
  for (let i = 0; i < 100 && mentions < entity.mentions; i++) {
    const text = (await page.getByTestId('entity-total').innerText().catch(() => '')) || ''
    mentions = Number(/(\d+)/.exec(text)?.[1] ?? 0)
    if (mentions < entity.mentions) {
      await page.waitForTimeout(200)
      await page.getByTestId('entity-width').selectOption(i % 2 ? '1h' : '15m') // asks again
    }
  }
  check(mentions >= entity.mentions, `the entity's timeline counts its ${entity.mentions} articles (${mentions})`)
  check(await page.getByTestId('entities').getByTestId('volume-chart').isVisible(), 'the entity timeline chart')
  await page.screenshot({ path: `${screenshotDir}/entity-en.png`, fullPage: true })
  result.checks.push('entity page with its timeline')

  // 9. Alerts panel (Korean): the watchlist's alerts, listed from GET /alerts.
  check(unseenLive >= 1, `alerts counted live in the nav (${unseenLive})`)
  await page.getByTestId('locale-ko').click()
  await page.getByTestId('nav-alerts').click()
  await page.locator('[data-testid="alert"]').filter({ hasText: watchlist }).first().waitFor({ timeout: 20_000 })
  await page.getByRole('heading', { level: 2, name: '알림' }).waitFor()
  await page.screenshot({ path: `${screenshotDir}/alerts-ko.png`, fullPage: true })
  result.checks.push('alerts live and listed')

  check(pageErrors.length === 0, `no uncaught page errors: ${pageErrors.join(' | ')}`)
  console.log(`RESULT ${JSON.stringify(result)}`)
  await browser.close()
  process.exit(0)
} catch (err) {
  console.log(`FAILED ${err?.stack ?? err}`)
  if (page) await page.screenshot({ path: `${screenshotDir}/dashboard-failure.png`, fullPage: true }).catch(() => {})
  await browser.close()
  process.exit(1)
}
