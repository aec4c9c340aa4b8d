// Browser half of tests/e2e/test_dashboard.py: drives the built dashboard in Debian's Chromium.
//
// Protocol with the Python test: parameters come as JSON in E2E_PARAMS; once the page is live this
// script prints "READY" and waits for one line on stdin (the test then produces the articles);
// it prints "RESULT <json>" and exits 0 when every check passed, or prints the failure and exits 1.
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

async function waitForLine() {
  const rl = createInterface({ input: process.stdin })
  for await (const line of rl) {
    rl.close()
    return line
  }
  throw new Error('stdin closed before the go signal')
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
