// The debugger live: `form-anycast up --nodes 3`, `form-anycast inspect --connect` to the three
// status APIs (fra's stream over a WebSocket, the others as Server-Sent Events), headless Chromium
// on it. Marking fra's `web` service down must reach the page as a state change of fra's prefix
// announcer for web, within a bounded wait.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { startCli, type CliProcess } from '../support/processes.ts'
import { launchBrowser, startInspectCli, type PageGlobals } from '../support/browser.ts'
import { DEMO_PARTIAL_SERVICE } from '../../src/runtime/up.ts'

const ANNOUNCER = `prefix-announcer:${DEMO_PARTIAL_SERVICE.prefix}`

test('inspect --connect: a service marked down on a live node shows as its announcer leaving announced', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'form-anycast-inspect-live-'))
  const up = startCli(['up', '--nodes', '3', '--data-dir', dataDir, '--api-port-base', '0', '--log-level', 'error'])
  let inspect: CliProcess | undefined
  let browser: Browser | undefined
  try {
    await up.waitForLine(/^all 3 nodes ready/, 40_000)
    const apis = new Map(up.lines.flatMap((line) => {
      const match = /^node (\S+): status API (\S+) peer/.exec(line)
      return match === null ? [] : [[match[1]!, match[2]!] as const]
    }))
    assert.is(apis.size, 3)
    const urls = [...apis].map(([name, url]) => name === 'fra' ? url.replace(/^http:/, 'ws:') : url)
    assert.ok(urls.some((url) => url.startsWith('ws://')), 'fra is read over a WebSocket')
    const started = await startInspectCli(['--connect', ...urls])
    inspect = started.cli
    browser = await launchBrowser()
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } })
    await page.goto(`${started.url}/`)
    const node = page.locator('#nodes li[data-node="fra"]')
    await node.waitFor({ timeout: 15_000 })
    await node.click()
    const row = page.locator(`.tree-actor[data-actor="${ANNOUNCER}"]`)
    await row.waitFor({ timeout: 15_000 })
    await row.click()
    // Seeded from /v1/actors, then kept current by the stream: the announcer reaches announced.
    await page.waitForFunction((id) => (globalThis as unknown as PageGlobals).document.querySelector(`.tree-actor[data-actor="${id}"]`)?.getAttribute('data-state')?.startsWith('announced') === true, ANNOUNCER, { timeout: 30_000 })
    await page.waitForSelector('#chart svg .state.active[data-state="prefix-announcer.announced"]', { timeout: 10_000 })

    const down = await fetch(`${apis.get('fra')!}/v1/services/${DEMO_PARTIAL_SERVICE.name}/down`, { method: 'POST', signal: AbortSignal.timeout(5000) })
    assert.is(down.status, 200)
    const startedAt = Date.now()
    await page.waitForFunction((id) => {
      const state = (globalThis as unknown as PageGlobals).document.querySelector(`.tree-actor[data-actor="${id}"]`)?.getAttribute('data-state')
      return state !== undefined && state !== null && !state.startsWith('announced')
    }, ANNOUNCER, { timeout: 15_000 })
    await page.waitForSelector('#chart svg .state.active:not([data-state="prefix-announcer.announced"])', { timeout: 10_000 })
    const now = await page.getAttribute(`.tree-actor[data-actor="${ANNOUNCER}"]`, 'data-state')
    console.log(`  fra's ${ANNOUNCER} shown as ${now ?? '?'} ${Date.now() - startedAt} ms after POST …/down`)
    assert.not.ok(await page.$('#chart svg .state.active[data-state="prefix-announcer.announced"]'), 'announced no longer lit')
  } finally {
    await browser?.close()
    inspect?.kill('SIGTERM')
    await inspect?.exited(10_000).catch(() => undefined)
    up.kill('SIGTERM')
    await up.exited(20_000).catch(() => up.kill('SIGKILL'))
    rmSync(dataDir, { recursive: true, force: true })
  }
})

test.run()
