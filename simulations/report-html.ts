// `form-anycast sim --report FILE.html`: one self-contained HTML page (inline SVG and CSS, no
// script, no network; a Content-Security-Policy forbids any fetch) with the plots of a batch of
// runs: convergence CDF per event type over every run, per-node traffic and route changes over
// time, and world maps of the origin each node uses before and after each timeline event (first
// run). Every function here is pure: data in, markup out. Every string that reaches the markup
// goes through escapeHtml, numbers through num.
import type { RunResult } from './runner.ts'
import { NODE_DOWN, NO_ROUTE, type MapFrame, type RunSeries } from './time-series.ts'

/** Runs whose time series are drawn (the CDF and the table cover every run). */
export const MAX_PLOTTED_RUNS = 10

export interface ReportInput {
  scenario: { name: string, file: string, description?: string, nodes: number, durationMs: number }
  /** Runs in seed order; the first one's series draws the maps. */
  runs: RunResult[]
  /** Seeds whose run crashed, with the error's first line. */
  crashes: Array<{ seed: number, message: string }>
  /** The command's option line, shown verbatim (escaped). */
  options: string
}

export function escapeHtml (text: string): string {
  return text.replace(/[&<>"']/g, (char) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[char]!)
}

/** A finite number as short markup text (at most 2 decimals); never NaN or Infinity. */
export function num (value: number): string {
  if (!Number.isFinite(value)) throw new RangeError(`report: not a finite number: ${value}`)
  return String(Math.round(value * 100) / 100)
}

/** Distinct colours for origins and series (colour-blind-safe order first, then by golden angle). */
const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22', '#7f7f7f']

export function colourAt (index: number): string {
  if (index < PALETTE.length) return PALETTE[index]!
  return `hsl(${num((index * 137.508) % 360)}, 65%, 45%)`
}

export const NO_ROUTE_COLOUR = '#bbbbbb'

/** The largest of `values` and `floor` (no spread: a batch can hold more samples than a call has arguments). */
function maxOf (values: Iterable<number>, floor: number): number {
  let max = floor
  for (const value of values) if (value > max) max = value
  return max
}

/** About `count` round tick values covering [min, max]. */
export function niceTicks (min: number, max: number, count = 5): number[] {
  if (!(max > min)) return [min]
  const raw = (max - min) / count
  const magnitude = 10 ** Math.floor(Math.log10(raw))
  const step = [1, 2, 5, 10].map((factor) => factor * magnitude).find((candidate) => candidate >= raw)!
  const ticks: number[] = []
  for (let tick = Math.ceil(min / step) * step, guard = 0; tick <= max + step * 1e-9 && guard < 100; tick += step, guard++) ticks.push(Math.round(tick * 1e9) / 1e9)
  return ticks
}

interface Frame { width: number, height: number, left: number, right: number, top: number, bottom: number }
const CHART: Frame = { width: 640, height: 300, left: 64, right: 16, top: 16, bottom: 40 }

/** Maps data to pixels inside the chart frame. */
function scales (frame: Frame, xMax: number, yMax: number): { x: (value: number) => number, y: (value: number) => number } {
  const plotWidth = frame.width - frame.left - frame.right
  const plotHeight = frame.height - frame.top - frame.bottom
  return {
    x: (value) => frame.left + (xMax <= 0 ? 0 : value / xMax * plotWidth),
    y: (value) => frame.top + plotHeight - (yMax <= 0 ? 0 : value / yMax * plotHeight)
  }
}

function axes (frame: Frame, xMax: number, yMax: number, xLabel: string, yLabel: string, yFormat: (value: number) => string = num): string {
  const { x, y } = scales(frame, xMax, yMax)
  const parts: string[] = [`<g class="axes">`]
  for (const tick of niceTicks(0, xMax)) {
    parts.push(`<line class="grid" x1="${num(x(tick))}" x2="${num(x(tick))}" y1="${frame.top}" y2="${num(y(0))}"/>`,
      `<text class="tick" x="${num(x(tick))}" y="${num(y(0) + 14)}" text-anchor="middle">${escapeHtml(num(tick))}</text>`)
  }
  for (const tick of niceTicks(0, yMax)) {
    parts.push(`<line class="grid" x1="${frame.left}" x2="${frame.width - frame.right}" y1="${num(y(tick))}" y2="${num(y(tick))}"/>`,
      `<text class="tick" x="${frame.left - 6}" y="${num(y(tick) + 4)}" text-anchor="end">${escapeHtml(yFormat(tick))}</text>`)
  }
  parts.push(`<line class="axis" x1="${frame.left}" x2="${frame.width - frame.right}" y1="${num(y(0))}" y2="${num(y(0))}"/>`,
    `<line class="axis" x1="${frame.left}" x2="${frame.left}" y1="${frame.top}" y2="${num(y(0))}"/>`,
    `<text class="label" x="${num((frame.left + frame.width - frame.right) / 2)}" y="${frame.height - 6}" text-anchor="middle">${escapeHtml(xLabel)}</text>`,
    `<text class="label" transform="translate(14 ${num((frame.top + frame.height - frame.bottom) / 2)}) rotate(-90)" text-anchor="middle">${escapeHtml(yLabel)}</text>`,
    '</g>')
  return parts.join('')
}

function pathData (points: ReadonlyArray<readonly [number, number]>): string {
  return points.map(([px, py], index) => `${index === 0 ? 'M' : 'L'}${num(px)} ${num(py)}`).join(' ')
}

function legend (entries: ReadonlyArray<{ name: string, colour: string, dash?: string }>): string {
  return `<ul class="legend">${entries.map((entry) =>
    `<li data-series="${escapeHtml(entry.name)}"><span class="swatch${entry.dash === undefined ? '' : ' dashed'}" style="background:${escapeHtml(entry.colour)}"></span>${escapeHtml(entry.name)}</li>`).join('')}</ul>`
}

/**
 * Convergence CDF, one path per event type: a point per converged sample at (time, share of all
 * samples converged by then). Samples that never converged are in the denominator only, so the
 * curve stops below 1 and the legend says how many.
 */
export function cdfChart (samplesByType: Readonly<Record<string, ReadonlyArray<number | null>>>): string {
  const kinds = Object.keys(samplesByType).filter((kind) => samplesByType[kind]!.length > 0)
  if (kinds.length === 0) return '<p class="empty">No failure events: nothing converged or failed to.</p>'
  const converged = kinds.flatMap((kind) => samplesByType[kind]!.filter((value) => value !== null))
  const xMax = maxOf(converged, 1) * 1.05
  const { x, y } = scales(CHART, xMax, 1)
  const paths: string[] = []
  const entries = kinds.map((kind, index) => {
    const samples = samplesByType[kind]!
    const sorted = samples.filter((value) => value !== null).sort((a, b) => a - b)
    const points = sorted.map((value, rank): [number, number] => [x(value), y((rank + 1) / samples.length)])
    const colour = colourAt(index)
    paths.push(`<path class="cdf" data-type="${escapeHtml(kind)}" data-samples="${samples.length}" data-converged="${sorted.length}" data-points="${points.length}" d="${pathData(points)}" stroke="${colour}"/>`)
    for (const [px, py] of points) paths.push(`<circle class="cdf-point" data-type="${escapeHtml(kind)}" cx="${num(px)}" cy="${num(py)}" r="2.5" fill="${colour}"/>`)
    const never = samples.length - sorted.length
    return { name: `${kind}: ${samples.length} samples${never > 0 ? `, ${never} never converged` : ''}`, colour }
  })
  return `<svg class="chart" id="cdf" viewBox="0 0 ${CHART.width} ${CHART.height}" role="img" aria-label="convergence CDF">` +
    axes(CHART, xMax, 1, 'convergence time (ms)', 'share of events converged', (value) => `${num(value * 100)} %`) + paths.join('') + '</svg>' + legend(entries)
}

export interface LineSeries { name: string, colour: string, dash?: string, points: ReadonlyArray<readonly [number, number]> }

/** A line chart of several series over simulated time (x in ms, shown in s). */
export function lineChart (id: string, series: readonly LineSeries[], yLabel: string): string {
  const all = series.flatMap((line) => line.points)
  if (all.length === 0) return `<p class="empty" id="${escapeHtml(id)}">No samples.</p>`
  const xMax = maxOf(all.map(([px]) => px), 1) / 1000
  const yMax = maxOf(all.map(([, py]) => py), 1) * 1.05
  const { x, y } = scales(CHART, xMax, yMax)
  const paths = series.map((line) => `<path class="series" data-series="${escapeHtml(line.name)}" data-points="${line.points.length}" d="${pathData(line.points.map(([px, py]) => [x(px / 1000), y(py)]))}" stroke="${escapeHtml(line.colour)}"${line.dash === undefined ? '' : ` stroke-dasharray="${escapeHtml(line.dash)}"`}/>`)
  return `<svg class="chart" id="${escapeHtml(id)}" viewBox="0 0 ${CHART.width} ${CHART.height}" role="img" aria-label="${escapeHtml(yLabel)}">` +
    axes(CHART, xMax, yMax, 'simulated time (s)', yLabel) + paths.join('') + '</svg>' + legend(series)
}

/** Per-node traffic over time: each plotted run's mean, and the first run's p99 and max. */
export function trafficSeries (runs: readonly RunResult[], pick: (series: RunSeries) => RunSeries['messagesPerNodePerSec']): LineSeries[] {
  const lines: LineSeries[] = []
  runs.slice(0, MAX_PLOTTED_RUNS).forEach((run, index) => {
    if (run.series === undefined) return
    const spread = pick(run.series)
    const at = run.series.atMs
    const zip = (values: number[]): Array<[number, number]> => at.map((ms, sample) => [ms, values[sample]!])
    lines.push({ name: `seed ${run.seed} mean`, colour: colourAt(index), points: zip(spread.mean) })
    if (index === 0) {
      lines.push({ name: `seed ${run.seed} p99`, colour: colourAt(index), dash: '6 3', points: zip(spread.p99) })
      lines.push({ name: `seed ${run.seed} max`, colour: colourAt(index), dash: '2 3', points: zip(spread.max) })
    }
  })
  return lines
}

export function routeChangeSeries (runs: readonly RunResult[]): LineSeries[] {
  return runs.slice(0, MAX_PLOTTED_RUNS).flatMap((run, index) => run.series === undefined
    ? []
    : [{ name: `seed ${run.seed}`, colour: colourAt(index), points: run.series.atMs.map((ms, sample): [number, number] => [ms, run.series!.routeChanges.total[sample]!]) }])
}

// ---- the world map ------------------------------------------------------------------------------

const MAP = { width: 720, height: 360 }

/** Equirectangular projection onto the map's pixels. */
export function project (lat: number, lon: number): [number, number] {
  return [(lon + 180) / 360 * MAP.width, (90 - lat) / 180 * MAP.height]
}

/**
 * Coarse continent outlines as [lon, lat] rings, drawn by hand for orientation only (a few dozen
 * points each; coastlines are not data here, node positions are).
 */
export const CONTINENTS: ReadonlyArray<ReadonlyArray<readonly [number, number]>> = [
  // North and Central America
  [[-168, 66], [-162, 70], [-140, 70], [-125, 70], [-95, 72], [-80, 73], [-62, 66], [-55, 52], [-66, 45], [-70, 41], [-76, 35], [-81, 31], [-80, 25], [-82, 29], [-90, 30], [-97, 27], [-97, 22], [-92, 18], [-87, 21], [-88, 15], [-83, 10], [-79, 9], [-82, 8], [-86, 12], [-92, 14], [-105, 20], [-110, 24], [-112, 30], [-117, 33], [-124, 40], [-124, 48], [-132, 55], [-150, 60], [-165, 60]],
  // South America
  [[-79, 9], [-72, 12], [-62, 11], [-52, 5], [-35, -5], [-39, -14], [-41, -22], [-48, -26], [-53, -34], [-58, -38], [-65, -42], [-68, -52], [-72, -53], [-75, -46], [-73, -37], [-71, -28], [-70, -18], [-76, -14], [-81, -6], [-80, 0], [-77, 7]],
  // Europe
  [[-10, 36], [-9, 43], [-2, 43], [-5, 48], [2, 51], [8, 54], [8, 57], [11, 59], [5, 62], [15, 69], [28, 71], [40, 68], [44, 66], [60, 68], [60, 50], [50, 45], [40, 45], [30, 45], [28, 41], [23, 37], [20, 40], [15, 40], [12, 44], [16, 38], [10, 44], [3, 43], [-2, 37], [-6, 36]],
  // Great Britain and Ireland
  [[-5, 50], [1, 51], [2, 53], [-3, 56], [-2, 58], [-6, 58], [-5, 55], [-3, 54], [-5, 52]],
  [[-10, 52], [-6, 52], [-6, 55], [-8, 55], [-10, 54]],
  // Africa
  [[-17, 21], [-17, 15], [-12, 8], [-5, 5], [5, 6], [9, 4], [10, -2], [13, -12], [12, -17], [15, -27], [18, -34], [25, -34], [33, -27], [40, -16], [40, -10], [43, -1], [51, 11], [43, 12], [37, 21], [32, 31], [20, 32], [10, 37], [-1, 36], [-6, 36], [-10, 30], [-14, 27]],
  // Madagascar
  [[44, -25], [47, -25], [50, -15], [49, -12], [44, -17]],
  // Asia
  [[60, 68], [70, 73], [80, 73], [100, 78], [115, 74], [140, 73], [160, 70], [180, 68], [180, 65], [170, 60], [163, 57], [156, 51], [143, 59], [135, 55], [140, 48], [135, 43], [129, 35], [126, 38], [121, 31], [122, 25], [110, 21], [108, 16], [109, 11], [105, 9], [100, 13], [101, 3], [104, 1], [98, 8], [97, 17], [92, 22], [87, 21], [80, 15], [77, 8], [72, 19], [67, 25], [57, 25], [56, 27], [50, 30], [48, 30], [56, 24], [59, 22], [52, 17], [44, 13], [39, 21], [35, 28], [34, 32], [36, 36], [28, 41], [30, 45], [40, 45], [50, 45], [60, 50]],
  // Japan
  [[130, 31], [135, 34], [140, 35], [142, 40], [141, 45], [140, 41], [136, 37], [131, 34]],
  // Sumatra, Borneo, New Guinea
  [[95, 5], [98, 4], [106, -6], [102, -4]],
  [[109, 1], [117, 7], [119, 1], [116, -4], [110, -3]],
  [[131, -1], [141, -3], [150, -10], [141, -9], [137, -5]],
  // Australia
  [[114, -22], [122, -18], [130, -12], [137, -12], [136, -15], [141, -11], [146, -19], [153, -25], [151, -34], [146, -39], [140, -38], [135, -35], [129, -32], [115, -34], [113, -26]],
  // New Zealand
  [[172, -34], [178, -38], [175, -42], [171, -46], [167, -46], [172, -41]],
  // Greenland
  [[-73, 78], [-60, 82], [-30, 83], [-20, 78], [-20, 70], [-40, 65], [-50, 62], [-55, 70], [-70, 76]],
  // Antarctica (a band)
  [[-180, -72], [-120, -74], [-60, -64], [0, -70], [60, -67], [120, -66], [180, -72], [180, -90], [-180, -90]]
]

function mapBackground (): string {
  const lines: string[] = []
  for (let lon = -180; lon <= 180; lon += 30) {
    const [x] = project(0, lon)
    lines.push(`<line class="graticule" x1="${num(x)}" x2="${num(x)}" y1="0" y2="${MAP.height}"/>`)
  }
  for (let lat = -60; lat <= 60; lat += 30) {
    const [, y] = project(lat, 0)
    lines.push(`<line class="graticule${lat === 0 ? ' equator' : ''}" x1="0" x2="${MAP.width}" y1="${num(y)}" y2="${num(y)}"/>`)
  }
  const land = CONTINENTS.map((ring) => `<path class="land" d="${pathData(ring.map(([lon, lat]) => project(lat, lon)))} Z"/>`)
  return `<rect class="sea" width="${MAP.width}" height="${MAP.height}"/>${land.join('')}${lines.join('')}`
}

export interface MapInput {
  id: string
  title: string
  nodes: RunSeries['nodes']
  /** The prefix's origins; `chosen` indexes them. */
  origins: readonly string[]
  /** Per node: an index into origins, NO_ROUTE or NODE_DOWN. */
  chosen: readonly number[]
}

/** Nodes as circles coloured by the origin they route to; origins also get a square outline. */
export function worldMap (input: MapInput): string {
  const circles = input.nodes.map((node, index) => {
    const choice = input.chosen[index] ?? NO_ROUTE
    const [x, y] = project(node.lat, node.lon)
    const origin = choice >= 0 ? input.origins[choice] ?? '' : ''
    const state = choice === NODE_DOWN ? 'down' : choice === NO_ROUTE ? 'no-route' : 'routed'
    const fill = choice >= 0 ? colourAt(choice) : choice === NODE_DOWN ? 'none' : NO_ROUTE_COLOUR
    const what = state === 'down' ? 'down' : state === 'no-route' ? 'no route' : `→ ${origin}`
    return `<circle class="node" data-node="${escapeHtml(node.id)}" data-origin="${escapeHtml(origin)}" data-state="${state}" cx="${num(x)}" cy="${num(y)}" r="3" fill="${fill}"><title>${escapeHtml(`${node.id} ${what}`)}</title></circle>`
  })
  const markers = input.origins.map((origin, index) => {
    const node = input.nodes.find((candidate) => candidate.id === origin)
    if (node === undefined) return ''
    const [x, y] = project(node.lat, node.lon)
    return `<rect class="origin-marker" data-origin="${escapeHtml(origin)}" x="${num(x - 6)}" y="${num(y - 6)}" width="12" height="12" stroke="${colourAt(index)}"/>`
  })
  const entries = [...input.origins.map((origin, index) => ({ name: origin, colour: colourAt(index) })), { name: 'no route', colour: NO_ROUTE_COLOUR }]
  return `<figure class="map"><figcaption>${escapeHtml(input.title)}</figcaption>` +
    `<svg class="world-map" id="${escapeHtml(input.id)}" viewBox="0 0 ${MAP.width} ${MAP.height}" role="img" aria-label="${escapeHtml(input.title)}">` +
    mapBackground() + markers.join('') + circles.join('') + '</svg>' + legend(entries) + '</figure>'
}

/** Before/after maps of every timeline instant (frame k before it, frame k + 1 after), per prefix. */
export function mapSections (run: RunResult): string {
  const { series } = run
  if (series === undefined) return '<p class="empty">No map data.</p>'
  const sections: string[] = []
  const frames = series.frames
  for (let k = 0; k + 1 < frames.length; k++) {
    const before = frames[k]!
    const after = frames[k + 1]!
    if (before.events.length === 0) continue
    const heading = `t = ${num(before.atMs / 1000)} s: ${before.events.join(', ')}`
    const maps = Object.entries(series.origins).map(([prefix, origins], p) => `<div class="pair">` +
      worldMap({ id: `map-${k}-${p}-before`, title: `${prefix} before (t = ${num(before.atMs / 1000)} s)`, nodes: series.nodes, origins, chosen: before.chosen[prefix] ?? [] }) +
      worldMap({ id: `map-${k}-${p}-after`, title: `${prefix} after (${afterLabel(after)})`, nodes: series.nodes, origins, chosen: after.chosen[prefix] ?? [] }) +
      '</div>')
    sections.push(`<section class="event" data-at-ms="${num(before.atMs)}"><h3>${escapeHtml(heading)}</h3>${maps.join('')}</section>`)
  }
  if (series.framesLeftOff > 0) sections.push(`<p class="note">${series.framesLeftOff} later timeline instants have no map.</p>`)
  return sections.length === 0 ? '<p class="empty">No timeline events.</p>' : sections.join('')
}

function afterLabel (after: MapFrame): string {
  return after.events.length === 0 ? `t = ${num(after.atMs / 1000)} s, end of the run or of the mapped events` : `t = ${num(after.atMs / 1000)} s, just before the next event`
}

// ---- the page -----------------------------------------------------------------------------------

function runsTable (runs: readonly RunResult[], crashes: ReportInput['crashes']): string {
  const checkNames = runs[0] === undefined ? [] : Object.keys(runs[0].checks)
  const dns = runs.some((run) => run.dns !== undefined)
  const head = ['seed', 'passed', ...checkNames, 'samples', 'p99 (ms)', 'optimality', ...(dns ? ['dns.accuracy'] : []), 'false dead', 'B/node/s', 'peak RSS (MB)', 'trace sha256']
  const ms = (value: number | null): string => value === null ? '∞' : num(value)
  const rows = runs.map((run) => [String(run.seed), run.passed ? 'yes' : 'NO', ...checkNames.map((name) => run.checks[name as keyof RunResult['checks']]?.passed !== false ? (run.checks[name as keyof RunResult['checks']] === undefined ? '—' : 'ok') : `FAILED (${run.checks[name as keyof RunResult['checks']]!.violations})`),
    String(run.convergence.samples), ms(run.convergence.p99Ms), run.optimality.share === null ? 'n/a' : `${num(run.optimality.share * 100)} %`,
    ...(dns ? [percentOf(run.dns?.accuracy ?? null)] : []), String(run.falseDead), num(run.gossip.bytesPerNodePerSec), num(run.memory.peakRssMb), run.traceHash.slice(0, 16)])
  const crashRows = crashes.map((crash) => [String(crash.seed), `CRASHED: ${crash.message}`])
  const cells = (row: string[], tag: string): string => `<tr>${row.map((cell) => `<${tag}>${escapeHtml(cell)}</${tag}>`).join('')}</tr>`
  return `<table class="runs"><thead>${cells(head, 'th')}</thead><tbody>${[...rows, ...crashRows].map((row) => cells(row, 'td')).join('')}</tbody></table>`
}

const percentOf = (share: number | null): string => share === null ? 'n/a' : `${num(share * 100)} %`

/**
 * The DNS accuracy section (scenarios with clients): every run's share of right first answers at
 * each sample instant, and the first run's wrong answers.
 */
export function dnsSection (runs: readonly RunResult[]): string {
  const measured = runs.filter((run) => run.dns !== undefined)
  if (measured.length === 0) return ''
  const first = measured[0]!.dns!
  const head = ['seed', 't (s)', 'phase', 'answers', 'right', 'accuracy']
  const rows = measured.flatMap((run) => run.dns!.instants.map((instant) => [String(run.seed), num(instant.atMs / 1000), instant.phase, String(instant.samples), String(instant.correct), percentOf(instant.accuracy)]))
  const cells = (row: string[], tag: string): string => `<tr>${row.map((cell) => `<${tag}>${escapeHtml(cell)}</${tag}>`).join('')}</tr>`
  return `<h2>DNS accuracy per sample instant</h2>` +
    `<p class="note">${escapeHtml(`Each of ${first.clients} clients asks ${first.resolver} for every service; an answer is right when its first record is the healthy origin with the lowest true RTT. steady: ≥ expect.steadyAfterMs after the last event; converged: the first 500 ms instant after failures converged; end: the last instant when it is not steady.`)}</p>` +
    `<table class="runs"><thead>${cells(head, 'th')}</thead><tbody>${rows.map((row) => cells(row, 'td')).join('')}</tbody></table>` +
    (first.misses.length === 0 ? '' : `<h3>${escapeHtml(`Wrong first answers, seed ${measured[0]!.seed} (first ${first.misses.length})`)}</h3><ul>${first.misses.map((miss) => `<li>${escapeHtml(miss)}</li>`).join('')}</ul>`)
}

const STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1500px; }
h1 { font-size: 20px; } h2 { font-size: 17px; margin-top: 32px; } h3 { font-size: 15px; }
table.runs { border-collapse: collapse; font-size: 12px; } table.runs td, table.runs th { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
svg.chart { width: 640px; max-width: 100%; height: auto; }
svg .grid { stroke: #eee; } svg .axis { stroke: #444; } svg .tick, svg .label { font-size: 11px; fill: #444; }
svg path.cdf, svg path.series { fill: none; stroke-width: 1.6; }
ul.legend { list-style: none; padding: 0; margin: 4px 0 12px; font-size: 12px; display: flex; flex-wrap: wrap; gap: 4px 14px; }
.swatch { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: middle; }
.swatch.dashed { opacity: 0.6; }
.pair { display: flex; flex-wrap: wrap; gap: 12px; }
figure.map { margin: 0; } figure.map figcaption { font-size: 12px; color: #444; }
svg.world-map { width: 540px; max-width: 100%; height: auto; border: 1px solid #ccc; }
svg .sea { fill: #f4f8fb; } svg .land { fill: #e4e4dc; stroke: #cfcfc4; stroke-width: 0.5; }
svg .graticule { stroke: #dde3ea; stroke-width: 0.5; } svg .equator { stroke: #c5ced8; }
svg circle.node { stroke: #333; stroke-width: 0.4; } svg circle.node[data-state="down"] { stroke: #999; stroke-width: 1; }
svg rect.origin-marker { fill: none; stroke-width: 1.5; }
.empty, .note { color: #777; }
`

/** The whole report page. */
export function renderReport (input: ReportInput): string {
  const { scenario, runs } = input
  const byType: Record<string, Array<number | null>> = {}
  for (const event of runs.flatMap((run) => run.convergence.events)) (byType[event.event] ??= []).push(event.convergedMs)
  const first = runs[0]
  const seeds = [...runs.map((run) => run.seed), ...input.crashes.map((crash) => crash.seed)].sort((a, b) => a - b)
  return '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">' +
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">` +
    `<title>${escapeHtml(`form-anycast sim: ${scenario.name}`)}</title><style>${STYLE}</style></head><body>` +
    `<h1>${escapeHtml(`form-anycast sim: ${scenario.name}`)}</h1>` +
    (scenario.description === undefined ? '' : `<p>${escapeHtml(scenario.description)}</p>`) +
    `<p>${escapeHtml(`${scenario.file}: ${scenario.nodes} nodes, ${num(scenario.durationMs / 1000)} s simulated; seeds ${seeds.join(', ')}`)}</p>` +
    `<p><code>${escapeHtml(input.options)}</code></p>` +
    `<h2>Runs</h2>${runsTable(runs, input.crashes)}` +
    `<h2>Convergence CDF per event type (all runs)</h2>${cdfChart(byType)}` +
    dnsSection(runs) +
    (runs.length > MAX_PLOTTED_RUNS ? `<p class="note">Time series of the first ${MAX_PLOTTED_RUNS} runs of ${runs.length}.</p>` : '') +
    `<h2>Messages sent per node per second</h2>${lineChart('messages', trafficSeries(runs, (series) => series.messagesPerNodePerSec), 'messages / node / s')}` +
    `<h2>Bytes sent per node per second</h2>${lineChart('bytes', trafficSeries(runs, (series) => series.bytesPerNodePerSec), 'bytes / node / s')}` +
    `<h2>Route changes (all nodes, per ${num((first?.series?.intervalMs ?? 0) / 1000)} s)</h2>${lineChart('route-changes', routeChangeSeries(runs), 'route changes')}` +
    `<h2>Origin each node uses${first === undefined ? '' : ` (seed ${first.seed})`}</h2>${first === undefined ? '<p class="empty">No run finished.</p>' : mapSections(first)}` +
    '</body></html>\n'
}
