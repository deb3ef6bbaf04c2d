// The HTML report of `form-anycast sim --report`: a 20-node scenario run for two seeds, the page
// opened in headless Chromium (Debian's, driven by playwright-core). Its plots render with the
// run's data, the map draws one circle per node coloured by the origin it routes to, nothing
// embedded is executed, and the page asks the network for nothing. The pure SVG builders are
// tested on their own below.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { chromium, type Browser } from 'playwright-core'
import { main } from '../../src/runtime/cli.ts'
import type { RunResult } from '../../simulations/runner.ts'
import { cdfChart, colourAt, escapeHtml, niceTicks, num, worldMap } from '../../simulations/report-html.ts'
import { NODE_DOWN, NO_ROUTE } from '../../simulations/time-series.ts'
import { MINI_SCENARIO } from '../support/mini-scenario.ts'

const scenario = { ...MINI_SCENARIO, name: 'report-mini', description: 'a <script>document.title = "pwned"</script> & "quotes" stay text', clients: { count: 20, regions: ['eu', 'na'] } }

/** What the page shows, read in the browser. */
interface PageData {
  title: string
  scripts: number
  description: string
  cdf: Array<{ type: string, samples: number, points: number, commands: number, dots: number }>
  charts: Record<string, Array<{ series: string, points: number, commands: number }>>
  maps: Array<{ id: string, circles: Array<{ node: string, origin: string, state: string, fill: string }>, legend: Record<string, string> }>
  sections: string[]
}

/** Runs in the page: reads the report's SVG elements and their data attributes. */
const READ_PAGE = `(() => {
  const commands = (d) => ((d || '').match(/[ML]/g) || []).length
  const attr = (element, name) => element.getAttribute(name) || ''
  const chart = (id) => [...document.querySelectorAll('svg#' + id + ' path.series')].map((path) => ({ series: attr(path, 'data-series'), points: Number(attr(path, 'data-points')), commands: commands(path.getAttribute('d')) }))
  return {
    title: document.title,
    scripts: document.querySelectorAll('script').length,
    description: document.querySelector('body > p')?.textContent ?? '',
    cdf: [...document.querySelectorAll('svg#cdf path.cdf')].map((path) => ({
      type: attr(path, 'data-type'),
      samples: Number(attr(path, 'data-samples')),
      points: Number(attr(path, 'data-points')),
      commands: commands(path.getAttribute('d')),
      dots: document.querySelectorAll('svg#cdf circle.cdf-point[data-type="' + attr(path, 'data-type') + '"]').length
    })),
    charts: { messages: chart('messages'), bytes: chart('bytes'), 'route-changes': chart('route-changes') },
    maps: [...document.querySelectorAll('figure.map')].map((figure) => ({
      id: attr(figure.querySelector('svg'), 'id'),
      circles: [...figure.querySelectorAll('circle.node')].map((circle) => ({ node: attr(circle, 'data-node'), origin: attr(circle, 'data-origin'), state: attr(circle, 'data-state'), fill: attr(circle, 'fill') })),
      legend: Object.fromEntries([...figure.querySelectorAll('ul.legend li')].map((item) => [attr(item, 'data-series'), item.querySelector('.swatch').style.background]))
    })),
    sections: [...document.querySelectorAll('section.event h3')].map((heading) => heading.textContent ?? '')
  }
})()`

async function readPage (browser: Browser, url: string): Promise<{ data: PageData, requests: string[] }> {
  const page = await browser.newPage()
  const requests: string[] = []
  page.on('request', (request) => { requests.push(request.url()) })
  await page.goto(url, { timeout: 10_000 })
  // A string, not a function: tsx's transform would add helpers that do not exist in the page.
  const data = await page.evaluate(READ_PAGE) as PageData
  await page.close()
  return { data, requests }
}

/** The legend's computed colour for a hex colour, as the browser normalises it. */
function rgb (hex: string): string {
  const value = Number.parseInt(hex.slice(1), 16)
  return `rgb(${value >> 16}, ${(value >> 8) & 255}, ${value & 255})`
}

test('report: --report over seeds 5 and 6 renders the CDF, traffic, route changes, DNS accuracy per sample instant and one map circle per node coloured by origin, with no network request', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'form-anycast-report-'))
  let browser: Browser | undefined
  try {
    const file = join(dir, 'mini.json')
    const report = join(dir, 'report.html')
    const out = join(dir, 'out.json')
    writeFileSync(file, JSON.stringify(scenario))
    const lines: string[] = []
    const code = await main(['node', 'form-anycast', 'sim', file, '--seed', '5', '--seeds', '2', '--workers', '0', '--json', out, '--report', report], { out: (line) => lines.push(line), err: (line) => lines.push(line) })
    assert.is(code, 0, lines.join('\n'))
    assert.ok(lines.includes(`report: ${report}`), lines.join('\n'))
    const { runs } = JSON.parse(readFileSync(out, 'utf8')) as { runs: RunResult[] }
    assert.is(runs.length, 2)
    assert.ok(runs.every((run) => !('series' in run)), 'the JSON carries no time series')
    const html = readFileSync(report, 'utf8')
    assert.not.match(html, /https?:\/\//, 'no absolute URL anywhere in the page')

    // DNS accuracy (20 clients): a column in the summary table, a line of the batch summary, one report row per run and sample instant.
    const header = lines.find((line) => line.startsWith('seed  '))!
    assert.match(header, /\soptimality\s+dns\.accuracy\s+falseDead\s/)
    assert.ok(lines.some((line) => /^dns\.accuracy \d+\.\d\d % of \d+ first answers \(worst run \d+\.\d\d %\); a failed origin still answered for p50 \d+ ms, p99 \d+ ms after its failure \(4 failures\)$/.test(line)), lines.join('\n'))
    assert.ok(html.includes('<h2>DNS accuracy per sample instant</h2>'))
    for (const run of runs) {
      assert.ok(run.dns !== undefined && run.dns.instants.length >= 3, `seed ${run.seed}: ${JSON.stringify(run.dns?.instants)}`)
      for (const instant of run.dns.instants) {
        const row = `<tr><td>${run.seed}</td><td>${num(instant.atMs / 1000)}</td><td>${instant.phase}</td><td>${instant.samples}</td><td>${instant.correct}</td><td>${num(instant.accuracy! * 100)} %</td></tr>`
        assert.ok(html.includes(row), `no row ${row}`)
      }
    }

    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'], timeout: 20_000 })
    const url = pathToFileURL(report).href
    const { data, requests } = await readPage(browser, url)
    assert.equal(requests, [url], 'the page loads nothing but itself')
    assert.is(data.title, 'form-anycast sim: report-mini')
    assert.is(data.scripts, 0)
    assert.is(data.description, scenario.description)

    // CDF: one point per converged sample of every run, per event type.
    for (const kind of ['serviceDown', 'nodeCrash'] as const) {
      const samples = runs.reduce((sum, run) => sum + run.convergence.byType[kind].samples, 0)
      const path = data.cdf.find((candidate) => candidate.type === kind)
      assert.ok(path !== undefined, `a CDF path for ${kind}`)
      assert.is(samples, 2)
      assert.is(path.samples, samples)
      assert.is(path.points, samples)
      assert.is(path.commands, samples)
      assert.is(path.dots, samples)
    }

    // Time series: 10 s sampled every 500 ms, a mean line per run and the first run's p99 and max.
    for (const name of ['messages', 'bytes'] as const) {
      assert.equal(data.charts[name]!.map((line) => line.series), ['seed 5 mean', 'seed 5 p99', 'seed 5 max', 'seed 6 mean'])
      for (const line of data.charts[name]!) { assert.is(line.points, 20); assert.is(line.commands, 20) }
    }
    assert.equal(data.charts['route-changes']!.map((line) => [line.series, line.commands]), [['seed 5', 20], ['seed 6', 20]])

    // Maps: 3 events × 2 prefixes × before/after, 20 circles each, each filled with its origin's legend colour.
    assert.equal(data.sections, ['t = 2 s: nodeCrash lon-0', 't = 3 s: serviceDown fra-0 api', 't = 7 s: nodeRestart lon-0'])
    assert.is(data.maps.length, 12)
    for (const map of data.maps) {
      assert.is(map.circles.length, 20, map.id)
      assert.is(new Set(map.circles.map((circle) => circle.node)).size, 20)
      for (const circle of map.circles) {
        if (circle.state !== 'routed') continue
        assert.is(rgb(circle.fill), map.legend[circle.origin], `${map.id} ${circle.node} → ${circle.origin}`)
      }
    }
    const map = (id: string): PageData['maps'][number] => data.maps.find((candidate) => candidate.id === id)!
    // After lon-0 crashed (prefix 2 = web), it is drawn down and nobody routes web to it.
    const afterCrash = map('map-0-1-after')
    assert.is(afterCrash.circles.find((circle) => circle.node === 'lon-0')!.state, 'down')
    assert.ok(afterCrash.circles.every((circle) => circle.origin !== 'lon-0'))
    assert.ok(map('map-0-1-before').circles.some((circle) => circle.origin === 'lon-0'), 'before the crash some nodes used lon-0')
    // After fra-0's api failed (prefix 1), every live node routes api to nyc-0.
    const afterDown = map('map-1-0-after')
    assert.ok(afterDown.circles.filter((circle) => circle.state !== 'down').every((circle) => circle.origin === 'nyc-0'), JSON.stringify(afterDown.circles))
    assert.ok(map('map-1-0-before').circles.some((circle) => circle.origin === 'fra-0'), 'before the failure some nodes used fra-0')
  } finally {
    await browser?.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('report: escapeHtml leaves no markup, num refuses non-finite numbers, ticks are round', () => {
  assert.is(escapeHtml('<a href="x">\'&\'</a>'), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;')
  assert.is(num(1.23456), '1.23')
  assert.throws(() => num(Number.NaN), /not a finite number/)
  assert.throws(() => num(Infinity), /not a finite number/)
  assert.equal(niceTicks(0, 10), [0, 2, 4, 6, 8, 10])
  assert.equal(niceTicks(0, 0.87), [0, 0.2, 0.4, 0.6, 0.8])
  assert.equal(niceTicks(0, 0), [0])
})

test('report: a CDF with an unconverged sample stops below 1 and says so', () => {
  const svg = cdfChart({ serviceDown: [100, null, 50, 200] })
  assert.match(svg, /data-samples="4" data-converged="3" data-points="3"/)
  assert.match(svg, /serviceDown: 4 samples, 1 never converged/)
  const ys = [...svg.matchAll(/<circle class="cdf-point"[^>]* cy="([\d.]+)"/g)].map((match) => Number(match[1]))
  assert.is(ys.length, 3)
  assert.ok(ys[0]! > ys[1]! && ys[1]! > ys[2]!, 'the CDF rises')
  assert.ok(ys[2]! > 16, 'the last point is below 100 % (y = 16 px is 100 %)')
})

test('report: worldMap escapes node and origin names and marks down and unrouted nodes', () => {
  const svg = worldMap({
    id: 'm',
    title: 'api <before>',
    nodes: [{ id: 'a"<b>', lat: 10, lon: 20 }, { id: 'c', lat: -10, lon: -20 }, { id: 'd', lat: 0, lon: 0 }],
    origins: ['a"<b>'],
    chosen: [0, NO_ROUTE, NODE_DOWN]
  })
  assert.not.match(svg, /<b>/)
  assert.match(svg, /data-node="a&quot;&lt;b&gt;" data-origin="a&quot;&lt;b&gt;" data-state="routed"/)
  assert.match(svg, new RegExp(`data-state="routed" cx="[\\d.]+" cy="[\\d.]+" r="3" fill="${colourAt(0)}"`))
  assert.match(svg, /data-node="c" data-origin="" data-state="no-route"/)
  assert.match(svg, /data-node="d" data-origin="" data-state="down" cx="360" cy="180" r="3" fill="none"/)
  assert.is((svg.match(/<circle class="node"/g) ?? []).length, 3)
})

test.run()
