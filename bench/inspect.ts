// The debugger with ≥ 1,000 actors: a 100-node simulation trace, opened in headless Chromium.
// Prints the time to render one step (the slider moved to a random record: tree, chart, event log)
// and to switch actors (another node's actor, chart of another kind), median and p95 over samples;
// then the same steps in the sequence view (messages of the last 2 s before the record, all nodes).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'
import { startInspector } from '../src/runtime/inspect-command.ts'
import type { PageGlobals } from '../test/support/browser.ts'

const NODES = 100
const SAMPLES = 40
const BIN = fileURLToPath(new URL('../bin/form-anycast.js', import.meta.url))
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

const scenario = {
  name: 'inspect-bench',
  durationMs: 8000,
  degree: 6,
  world: { inflation: 1.5, linkBaseMs: 1, jitterFraction: 0.02, lossRate: 0 },
  generate: {
    count: NODES,
    spreadKm: 300,
    seed: 1,
    sites: [
      { name: 'frankfurt', lat: 50.11, lon: 8.68, region: 'eu', weight: 1 },
      { name: 'new-york', lat: 40.71, lon: -74.01, region: 'na', weight: 1 },
      { name: 'singapore', lat: 1.35, lon: 103.82, region: 'ap', weight: 1 }
    ]
  },
  services: [{ name: 'api', prefix: '10.42.255.1/32', origins: ['frankfurt-0', 'new-york-0', 'singapore-0'] }],
  timeline: [{ at: 4000, event: 'serviceDown', node: 'frankfurt-0', service: 'api' }]
}

const quantile = (values: number[], q: number): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
}
const figures = (values: number[]): string => `median ${quantile(values, 0.5).toFixed(1)} ms, p95 ${quantile(values, 0.95).toFixed(1)} ms, max ${Math.max(...values).toFixed(1)} ms (${values.length} samples)`

const dir = mkdtempSync(join(tmpdir(), 'form-anycast-bench-inspect-'))
const trace = join(dir, 'trace.jsonl')
writeFileSync(join(dir, 'scenario.json'), JSON.stringify(scenario))
const sim = spawnSync(process.execPath, [BIN, 'sim', join(dir, 'scenario.json'), '--trace', trace, '--workers', '0'], { encoding: 'utf8', timeout: 10 * 60_000 })
if (sim.status !== 0 && sim.status !== 3) throw new Error(`sim failed (${sim.status}): ${sim.stderr}`)

const loadStarted = performance.now()
const running = await startInspector({ port: 0, trace, maxRecords: 5_000_000 }, { out: () => {}, err: (line) => console.error(line) })
const loadMs = performance.now() - loadStarted
const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
try {
  const meta = await (await fetch(`${running.server.url}/api/meta`)).json() as { end: number, actors: number, nodes: Array<{ name: string }> }
  console.log(`trace: ${NODES} nodes, ${meta.actors} actors, ${meta.end} records; loaded in ${loadMs.toFixed(0)} ms`)
  if (meta.actors < 1000) throw new Error(`only ${meta.actors} actors: the bench needs ≥ 1,000`)
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } })
  const first = meta.nodes[0]!.name
  const actors = await (await fetch(`${running.server.url}/api/node?name=${first}`)).json() as { actors: Array<{ systemId: string }> }
  const session = actors.actors.find((actor) => actor.systemId.startsWith('peer-session:'))!.systemId
  await page.goto(`${running.server.url}/#node=${first}&actor=${encodeURIComponent(session)}`)
  await page.waitForSelector(`body[data-actor="${session}"] #chart svg`, { timeout: 30_000 })

  const steps = Array.from({ length: SAMPLES }, (_, index) => Math.floor((index * 7919) % meta.end))
  const stepMs = await page.evaluate(async (targets) => {
    const out: number[] = []
    for (const at of targets) {
      const started = performance.now()
      ;(globalThis as unknown as PageGlobals).inspector.goto(at)
      while ((globalThis as unknown as PageGlobals).document.body.dataset.at !== String(at) && performance.now() - started < 10_000) await new Promise((resolve) => setTimeout(resolve, 0))
      out.push(performance.now() - started)
    }
    return out
  }, steps)
  console.log(`render a step (slider to a record: tree, chart, event log): ${figures(stepMs)}`)

  const kinds = ['peer-session', 'health-prober', 'prefix-announcer', 'heartbeat']
  const switches: Array<{ node: string, id: string }> = []
  for (let index = 0; switches.length < SAMPLES && index < meta.nodes.length * 2; index++) {
    const node = meta.nodes[index % meta.nodes.length]!.name
    const list = await (await fetch(`${running.server.url}/api/node?name=${node}`)).json() as { actors: Array<{ systemId: string, actor: string }> }
    const pick = list.actors.find((actor) => actor.actor === kinds[index % kinds.length]) ?? list.actors[0]
    if (pick !== undefined) switches.push({ node, id: pick.systemId })
  }
  const switchMs = await page.evaluate(async (targets) => {
    const api = (globalThis as unknown as PageGlobals).inspector
    const out: number[] = []
    for (const target of targets) {
      const started = performance.now()
      api.selectNode(target.node)
      api.selectActor(target.id)
      while (((globalThis as unknown as PageGlobals).document.body.dataset.actor !== target.id || (globalThis as unknown as PageGlobals).document.querySelector('#chart svg') === null) && performance.now() - started < 10_000) await new Promise((resolve) => setTimeout(resolve, 0))
      out.push(performance.now() - started)
    }
    return out
  }, switches)
  console.log(`switch actors (another node and kind; first chart of a kind includes its elkjs layout): ${figures(switchMs)}`)

  await page.evaluate(() => { (globalThis as unknown as PageGlobals).inspector.showPane('sequence') })
  const sequence = await page.evaluate(async (targets) => {
    const globals = globalThis as unknown as PageGlobals
    const out: number[] = []
    let arrows = 0
    for (const at of targets) {
      const started = performance.now()
      globals.inspector.goto(at)
      while (globals.document.querySelector(`#sequence svg[data-at="${at}"]`) === null && performance.now() - started < 10_000) await new Promise((resolve) => setTimeout(resolve, 0))
      out.push(performance.now() - started)
      arrows = Math.max(arrows, (globals.document as unknown as { querySelectorAll(selector: string): { length: number } }).querySelectorAll('#sequence svg .message').length)
    }
    return { out, arrows }
  }, steps)
  console.log(`sequence view, a step (last 2 s, all ${NODES} nodes, up to ${sequence.arrows} arrows): ${figures(sequence.out)}`)
} finally {
  await browser.close()
  await running.stop()
  rmSync(dir, { recursive: true, force: true })
}
