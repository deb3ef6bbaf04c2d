// The debugger over a recorded simulation trace, in headless Chromium: select a node and one of its
// peer sessions, read the lit state off the chart SVG at the end of the trace and at an early
// instant, and check both against the trace itself (the oracle is the JSONL, not the UI's server).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Browser, Page } from 'playwright-core'
import { startCli } from '../support/processes.ts'
import { launchBrowser, startInspectCli, type PageGlobals } from '../support/browser.ts'
import type { InspectionEvent } from '../../src/runtime/ports.ts'
import { twoCityScenario } from '../support/two-cities.ts'

// The README's screenshot is regenerated on request (FORM_ANYCAST_SCREENSHOT=1 npm test), so an
// ordinary run leaves the checkout as it was; otherwise it goes to the temp directory.
const SCREENSHOT = process.env.FORM_ANYCAST_SCREENSHOT === '1'
  ? fileURLToPath(new URL('../../docs/inspect.png', import.meta.url))
  : join(tmpdir(), `form-anycast-inspect-${process.pid}.png`)
const NODE = 'frankfurt-0'

const SCENARIO = twoCityScenario({
  name: 'inspect-small',
  description: 'Six nodes in two cities for the debugger tests; one service goes down at 3 s.',
  durationMs: 6000,
  timeline: [{ at: 3000, event: 'serviceDown', node: 'frankfurt-0', service: 'api' }]
})

/** Leaf state ids lit for a state value, as the chart names them. */
function leafIds (root: string, value: unknown): string[] {
  if (typeof value === 'string') return [`${root}.${value}`]
  return Object.entries(value as Record<string, unknown>).flatMap(([key, inner]) => leafIds(`${root}.${key}`, inner))
}

async function litLeaves (page: Page): Promise<string[]> {
  return await page.$$eval('#chart svg .state.active', (groups) => groups
    .filter((group) => group.querySelector('rect.compound, rect.parallel') === null)
    .map((group) => group.getAttribute('data-state') ?? '').sort())
}

async function waitRendered (page: Page, at: number, actor: string): Promise<void> {
  await page.waitForSelector(`body[data-at="${at}"][data-actor="${actor}"]`, { timeout: 10_000 })
}

test('inspect --trace: chart lights the session state at the end and at an early instant; the link reopens it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'form-anycast-inspect-'))
  const scenario = join(dir, 'scenario.json')
  const trace = join(dir, 'trace.jsonl')
  writeFileSync(scenario, JSON.stringify(SCENARIO))
  const sim = startCli(['sim', scenario, '--trace', trace, '--workers', '0'])
  const code = await sim.exited(60_000)
  assert.ok(code === 0 || code === 3, `sim ran (exit ${code}: liveness failures do not matter here)`)
  const records = readFileSync(trace, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as InspectionEvent)

  const { cli, url } = await startInspectCli(['--trace', trace])
  let browser: Browser | undefined
  try {
    browser = await launchBrowser()
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } })
    const errors: string[] = []
    page.on('pageerror', (error) => errors.push(error.message))
    await page.goto(`${url}/`)
    const last = records.length - 1
    await page.waitForSelector(`body[data-at="${last}"]`, { timeout: 10_000 })
    await page.click(`#nodes li[data-node="${NODE}"]`)
    const row = page.locator('.tree-actor[data-actor^="peer-session:"]').first()
    await row.waitFor({ timeout: 10_000 })
    const actor = (await row.getAttribute('data-actor'))!
    await row.click()
    await waitRendered(page, last, actor)
    const mine = records.map((record, index) => ({ record, index })).filter(({ record }) => record.node === NODE && record.systemId === actor)
    const stateAt = (at: number): unknown => mine.filter(({ record, index }) => index <= at && record.kind === 'actor.snapshot').pop()?.record.state

    // At the end the session is established: both parallel regions lit.
    await page.waitForSelector('#chart svg .state.active[data-state="peer-session.opened.established"]', { timeout: 10_000 })
    assert.equal(await litLeaves(page), leafIds('peer-session', stateAt(last)).sort())
    assert.ok((await litLeaves(page)).includes('peer-session.opened.established.hold.counting'))
    await page.screenshot({ path: SCREENSHOT })
    assert.ok(readFileSync(SCREENSHOT).length > 1000, 'a screenshot was written')
    if (process.env.FORM_ANYCAST_SCREENSHOT !== '1') rmSync(SCREENSHOT, { force: true })

    // Back to the actor's first snapshot: an earlier state of the FSM, not established.
    const early = mine.find(({ record }) => record.kind === 'actor.snapshot')!.index
    await page.locator('#slider').fill(String(early))
    await waitRendered(page, early, actor)
    const earlyLeaves = await litLeaves(page)
    assert.equal(earlyLeaves, leafIds('peer-session', stateAt(early)).sort())
    assert.ok(earlyLeaves.every((id) => !id.includes('established')), `early state ${earlyLeaves.join(', ')}`)
    assert.ok(['peer-session.idle', 'peer-session.connect', 'peer-session.active', 'peer-session.opened.openSent'].includes(earlyLeaves[0]!))

    // Step forward by the actor's changes until it reaches openConfirm: the transition is marked.
    const confirm = mine.find(({ record }) => record.kind === 'actor.snapshot' && JSON.stringify(record.state) === '{"opened":"openConfirm"}')!.index
    for (let steps = 0; steps < 10 && Number(await page.getAttribute('body', 'data-at')) < confirm; steps++) {
      const before = await page.getAttribute('body', 'data-at')
      await page.click('#actor-forward')
      await page.waitForFunction((previous) => (globalThis as unknown as PageGlobals).document.body.dataset.at !== previous, before, { timeout: 10_000 })
    }
    await waitRendered(page, confirm, actor)
    assert.equal(await litLeaves(page), ['peer-session.opened.openConfirm'])
    assert.ok(await page.$('#chart svg .edge.last[data-event="frame.received"]') !== null, 'the transition into openConfirm is marked')

    // The URL encodes the instant and the actor: a fresh page on it shows the same state.
    const link = page.url()
    assert.match(link, new RegExp(`#i=${confirm}&t=[\\d.]+&node=${NODE}&actor=`))
    const again = await browser.newPage()
    await again.goto(link)
    await waitRendered(again, confirm, actor)
    assert.equal(await litLeaves(again), ['peer-session.opened.openConfirm'])
    assert.equal(errors, [])
  } finally {
    await browser?.close()
    cli.kill('SIGTERM')
    await cli.exited(10_000).catch(() => undefined)
    rmSync(dir, { recursive: true, force: true })
  }
})

test('inspect --trace: a bad line exits 2 naming the file and line number', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'form-anycast-inspect-bad-'))
  mkdirSync(dir, { recursive: true })
  const trace = join(dir, 'bad.jsonl')
  writeFileSync(trace, [
    '{"t":0,"node":"a","kind":"actor.started","systemId":"heartbeat","actor":"heartbeat"}',
    '{"t":1,"node":"a","kind":"actor.snapshot","systemId":"heartbeat","actor":"heartbeat","state":"waiting"}',
    '{"t":2,"node":"a","kind":"actor.teleported","systemId":"heartbeat","actor":"heartbeat"}'
  ].join('\n') + '\n')
  try {
    const cli = startCli(['inspect', '--port', '0', '--trace', trace])
    assert.is(await cli.exited(20_000), 2)
    assert.ok(cli.lines.some((line) => line.includes(`${trace}: line 3: kind: must be one of`)), cli.lines.join('\n'))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
