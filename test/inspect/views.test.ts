// The debugger's sequence view and world map over a recorded simulation trace, in headless
// Chromium. The oracle is the JSONL itself (which session frames arrived where) and the scenario
// (where its cities are), never the debugger's own server.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Browser, Page } from 'playwright-core'
import { startCli, type CliProcess } from '../support/processes.ts'
import { launchBrowser, startInspectCli } from '../support/browser.ts'
import type { InspectionEvent } from '../../src/runtime/ports.ts'
import { FRANKFURT, NEW_YORK, twoCityScenario } from '../support/two-cities.ts'

const SCENARIO = twoCityScenario({ name: 'inspect-views', description: 'Six nodes in two cities for the sequence view and the map.', durationMs: 4000 })

// FORM_ANYCAST_SCREENSHOT=1 also writes the README's picture of the sequence view.
const SCREENSHOT = process.env.FORM_ANYCAST_SCREENSHOT === '1' ? fileURLToPath(new URL('../../docs/inspect-sequence.png', import.meta.url)) : undefined

interface Arrow { from: string, to: string, type: string, i: number, estimated: boolean, y1: number, y2: number }

const fixture: { dir?: string, records: InspectionEvent[], cli?: CliProcess, url: string, browser?: Browser } = { records: [], url: '' }

test.before(async () => {
  fixture.dir = mkdtempSync(join(tmpdir(), 'form-anycast-inspect-views-'))
  const scenario = join(fixture.dir, 'scenario.json')
  const trace = join(fixture.dir, 'trace.jsonl')
  writeFileSync(scenario, JSON.stringify(SCENARIO))
  const sim = startCli(['sim', scenario, '--trace', trace, '--workers', '0'])
  const code = await sim.exited(60_000)
  assert.ok(code === 0 || code === 3, `sim ran (exit ${code})`)
  fixture.records = readFileSync(trace, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as InspectionEvent)
  const started = await startInspectCli(['--trace', trace])
  fixture.cli = started.cli
  fixture.url = started.url
  fixture.browser = await launchBrowser()
})

test.after(async () => {
  await fixture.browser?.close()
  fixture.cli?.kill('SIGTERM')
  await fixture.cli?.exited(10_000).catch(() => undefined)
  if (fixture.dir !== undefined) rmSync(fixture.dir, { recursive: true, force: true })
})

async function openPage (hash: string): Promise<{ page: Page, errors: string[] }> {
  const page = await fixture.browser!.newPage({ viewport: { width: 1400, height: 900 } })
  const errors: string[] = []
  page.on('pageerror', (error) => errors.push(error.message))
  await page.goto(`${fixture.url}/${hash}`)
  return { page, errors }
}

async function arrows (page: Page): Promise<Arrow[]> {
  return await page.$$eval('#sequence svg .message', (groups) => groups.map((group) => {
    const line = group.querySelector('line')!
    return {
      from: group.getAttribute('data-from') ?? '',
      to: group.getAttribute('data-to') ?? '',
      type: group.getAttribute('data-type') ?? '',
      i: Number(group.getAttribute('data-i')),
      estimated: group.classList.contains('estimated'),
      y1: Number(line.getAttribute('y1')),
      y2: Number(line.getAttribute('y2'))
    }
  }))
}

/** Session frames the trace says arrived, up to record `at`: "A→B type" for B's peer-session:A. */
function framesReceived (records: InspectionEvent[], at: number): string[] {
  return records.slice(0, at + 1).filter((record) => record.actor === 'peer-session' && record.kind === 'actor.event' && record.event === 'frame.received')
    .map((record) => `${record.systemId.slice('peer-session:'.length)}→${record.node} ${String(record.detail?.frame)}`)
}

test('inspect sequence view: one arrow per session frame received, between the trace\'s nodes, following the slider and the node filter', async () => {
  const { records } = fixture
  const last = records.length - 1
  const { page, errors } = await openPage('')
  await page.waitForSelector(`body[data-at="${last}"]`, { timeout: 10_000 })
  await page.click('#show-sequence')
  await page.selectOption('#sequence-window', '10000')
  await page.waitForSelector(`#sequence svg[data-at="${last}"][data-window="10000"] .message`, { timeout: 10_000 })

  // The whole 4 s run fits the 10 s window: every frame the trace received is an arrow.
  const all = await arrows(page)
  const session = all.filter((arrow) => !arrow.type.startsWith('probe')).map((arrow) => `${arrow.from}→${arrow.to} ${arrow.type}`).sort()
  const expected = framesReceived(records, last).sort()
  assert.ok(expected.length > 50, `the trace holds session frames (${expected.length})`)
  assert.equal(session, expected)
  for (const type of ['open', 'keepalive', 'update']) assert.ok(session.some((arrow) => arrow.endsWith(` ${type}`)), `some ${type} arrow`)
  assert.ok(session.some((arrow) => arrow.startsWith('frankfurt-0→new-york-0 ')), 'an arrow across the Atlantic')
  // A KEEPALIVE's departure is recorded: a solid arrow that leaves before it lands.
  const keepalives = all.filter((arrow) => arrow.type === 'keepalive')
  assert.ok(keepalives.every((arrow) => !arrow.estimated && arrow.y1 < arrow.y2), 'keepalives solid and downward')
  // Origin probes are round trips from the prober to the origin and back.
  assert.ok(all.some((arrow) => arrow.type === 'probe' && arrow.from === 'new-york-1' && arrow.to === 'frankfurt-0'), 'new-york-1 probes origin frankfurt-0')
  assert.ok(all.some((arrow) => arrow.type === 'probe reply' && arrow.from === 'frankfurt-0' && arrow.to === 'new-york-1'))

  if (SCREENSHOT !== undefined) {
    await page.selectOption('#sequence-window', '500')
    await page.waitForSelector(`#sequence svg[data-at="${last}"][data-window="500"] .message`, { timeout: 10_000 })
    await page.screenshot({ path: SCREENSHOT })
    await page.selectOption('#sequence-window', '10000')
    await page.waitForSelector(`#sequence svg[data-at="${last}"][data-window="10000"] .message`, { timeout: 10_000 })
  }

  // Early in the run only what had arrived by then is drawn.
  const firstFrame = records.findIndex((record) => record.event === 'frame.received')
  const early = firstFrame + 40
  await page.locator('#slider').fill(String(early))
  await page.waitForSelector(`body[data-at="${early}"]`, { timeout: 10_000 })
  await page.waitForSelector(`#sequence svg[data-at="${early}"][data-window="10000"]`, { timeout: 10_000 })
  const before = await arrows(page)
  assert.ok(before.every((arrow) => arrow.i <= early), 'no arrow from the future')
  assert.equal(before.filter((arrow) => !arrow.type.startsWith('probe')).map((arrow) => `${arrow.from}→${arrow.to} ${arrow.type}`).sort(), framesReceived(records, early).sort())

  // Filtered by node: only that node's messages, its lane first.
  await page.locator('#slider').fill(String(last))
  await page.selectOption('#sequence-node', 'new-york-2')
  await page.waitForSelector(`#sequence svg[data-at="${last}"][data-lane="new-york-2"]`, { timeout: 10_000 })
  const filtered = await arrows(page)
  assert.ok(filtered.length > 0 && filtered.every((arrow) => arrow.from === 'new-york-2' || arrow.to === 'new-york-2'), 'only new-york-2\'s messages')
  assert.is(await page.$eval('#sequence svg .lane', (lane) => lane.getAttribute('data-node')), 'new-york-2')
  assert.equal(filtered.filter((arrow) => !arrow.type.startsWith('probe')).length, framesReceived(records, last).filter((frame) => frame.includes('new-york-2')).length)

  // The link reopens the sequence view with its window and filter.
  assert.match(page.url(), /view=sequence&window=10000&lane=new-york-2/)
  const again = await openPage(new URL(page.url()).hash)
  await again.page.waitForSelector('#sequence svg[data-lane="new-york-2"][data-window="10000"] .message', { timeout: 10_000 })
  assert.is(await again.page.$eval('#sequence-node', (select) => (select as unknown as { value: string }).value), 'new-york-2')
  assert.equal(errors, [])
  assert.equal(again.errors, [])
})

test('inspect world map: nodes placed by latitude and longitude; clicking one selects it', async () => {
  const { page, errors } = await openPage('')
  await page.waitForSelector('body[data-at]', { timeout: 10_000 })
  await page.click('#show-map')
  await page.waitForSelector('#world-map-large circle[data-node="new-york-0"]', { timeout: 10_000 })
  assert.is(await page.$$eval('#world-map-large circle', (circles) => circles.length), 6)
  const box = async (name: string): Promise<{ x: number, y: number }> => {
    const rect = (await page.locator(`#world-map-large circle[data-node="${name}"]`).boundingBox())!
    return { x: rect.x + rect.width / 2, y: rect.y + rect.height / 2 }
  }
  const map = (await page.locator('#world-map-large').boundingBox())!
  const frankfurt = await box('frankfurt-0')
  const newYork = await box('new-york-0')
  // Site centres are the scenario's cities; the page's scale is the map's width over 360°.
  const scale = Math.min(map.width / 360, map.height / 180)
  assert.ok(Math.abs((frankfurt.x - newYork.x) - (FRANKFURT.lon - NEW_YORK.lon) * scale) < 2, `Frankfurt ${(FRANKFURT.lon - NEW_YORK.lon).toFixed(1)}° east of New York: ${frankfurt.x - newYork.x} px at ${scale} px/°`)
  assert.ok(Math.abs((newYork.y - frankfurt.y) - (FRANKFURT.lat - NEW_YORK.lat) * scale) < 2, 'Frankfurt north of New York by the latitude difference')
  const centreY = map.y + map.height / 2
  assert.ok(frankfurt.y < centreY && newYork.y < centreY, 'both above the equator')
  assert.ok(frankfurt.x > map.x + map.width / 2 && newYork.x < map.x + map.width / 2, 'east and west of Greenwich')

  // Nodes of one city overlap at world scale; the last drawn (new-york-2) is the one a click meets.
  await page.locator('#world-map-large circle[data-node="new-york-2"]').click()
  await page.waitForSelector('#nodes li.selected[data-node="new-york-2"]', { timeout: 10_000 })
  await page.waitForSelector('#world-map-large circle.selected[data-node="new-york-2"]', { timeout: 10_000 })
  assert.is(await page.textContent('#tree-node'), 'new-york-2')
  await page.waitForSelector('#tree .tree-actor[data-actor="heartbeat"]', { timeout: 10_000 })
  assert.equal(errors, [])
})

test.run()
