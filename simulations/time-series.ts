// Time series of one run, for the HTML report (simulations/report-html.ts): per-node traffic and
// route changes sampled every few simulated seconds, and, for the world map, which origin every node
// uses per prefix just before each timeline instant and at the end of the run.
//
// Memory is bounded whatever the scenario: at most MAX_SAMPLES samples of a few numbers each
// (percentiles over nodes, never one number per node per sample), and map frames for at most
// MAX_MAP_INSTANTS timeline instants. Sampling only reads the world (overlay counters, the
// observer's route choices); it never advances the clock, so it cannot change the trace.
import type { OverlayStats } from '../src/runtime/ports.ts'

/** Upper bound on samples per run: the interval grows with the scenario's duration. */
export const MAX_SAMPLES = 400
/** Timeline instants that get a before/after map; later instants are left off the report. */
export const MAX_MAP_INSTANTS = 16

/** A node's choice in a map frame: an index into the prefix's origins, or one of these. */
export const NO_ROUTE = -1
export const NODE_DOWN = -2

/** Spread of one per-node rate over the live nodes at one sample. */
export interface NodeSpread { mean: number[], p50: number[], p99: number[], max: number[] }

export interface MapFrame {
  atMs: number
  /** The timeline events at this instant ("nodeCrash lon-0"); empty for the end of the run. */
  events: string[]
  /** Per prefix, per node (in RunSeries.nodes order): NO_ROUTE, NODE_DOWN or an origin's index. */
  chosen: Record<string, number[]>
}

export interface RunSeries {
  intervalMs: number
  /** Sample instants (simulated ms); each rate covers the interval that ends there. */
  atMs: number[]
  messagesPerNodePerSec: NodeSpread
  bytesPerNodePerSec: NodeSpread
  /** Route changes at every node, summed, in each interval: in total and per prefix. */
  routeChanges: { total: number[], byPrefix: Record<string, number[]> }
  nodes: Array<{ id: string, lat: number, lon: number }>
  /** Per prefix: its origins, in the order map frames index them. */
  origins: Record<string, string[]>
  /** Frame k is the world just before timeline instant k; the last is the end of the run. */
  frames: MapFrame[]
  /** Timeline instants beyond MAX_MAP_INSTANTS, left without a map. */
  framesLeftOff: number
}

/**
 * The sample interval: a multiple of the loop checker's period, so that sampling happens at
 * instants where the runner stops anyway (an extra stop would change the trace), and at most
 * MAX_SAMPLES of them.
 */
export function sampleIntervalMs (durationMs: number, stepMs: number): number {
  return stepMs * Math.max(1, Math.ceil(durationMs / stepMs / MAX_SAMPLES))
}

/** Nearest-rank value at p of ascending `sorted` (0 when empty). */
function rank (sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]!
}

const round1 = (value: number): number => Math.round(value * 10) / 10

/** Push the mean, median, p99 and max of `values` onto `spread`. */
export function pushSpread (spread: NodeSpread, values: readonly number[]): void {
  const sorted = [...values].sort((a, b) => a - b)
  const sum = sorted.reduce((a, b) => a + b, 0)
  spread.mean.push(round1(sorted.length === 0 ? 0 : sum / sorted.length))
  spread.p50.push(round1(rank(sorted, 0.5)))
  spread.p99.push(round1(rank(sorted, 0.99)))
  spread.max.push(round1(sorted.length === 0 ? 0 : sorted[sorted.length - 1]!))
}

const emptySpread = (): NodeSpread => ({ mean: [], p50: [], p99: [], max: [] })

/** What the recorder reads of one live node at a sample. */
export interface NodeReading {
  id: string
  /** Identity of the node's current life: counters restart from zero when it changes. */
  life: object
  stats: OverlayStats
}

export class SeriesRecorder {
  private readonly series: RunSeries
  /** Each node's counters at the previous sample, with the life they belonged to. */
  private readonly previous = new Map<string, { life: object, messagesSent: number, bytesSent: number }>()
  private changesTotal = 0
  private readonly changesByPrefix = new Map<string, number>()
  private lastSampleMs = 0
  private instantsSeen = 0

  constructor (input: { intervalMs: number, nodes: RunSeries['nodes'], origins: RunSeries['origins'] }) {
    this.series = {
      intervalMs: input.intervalMs,
      atMs: [],
      messagesPerNodePerSec: emptySpread(),
      bytesPerNodePerSec: emptySpread(),
      routeChanges: { total: [], byPrefix: Object.fromEntries(Object.keys(input.origins).map((prefix) => [prefix, []])) },
      nodes: input.nodes,
      origins: input.origins,
      frames: [],
      framesLeftOff: 0
    }
    for (const prefix of Object.keys(input.origins)) this.changesByPrefix.set(prefix, 0)
  }

  get intervalMs (): number { return this.series.intervalMs }

  routeChanged (prefix: string): void {
    this.changesTotal++
    this.changesByPrefix.set(prefix, (this.changesByPrefix.get(prefix) ?? 0) + 1)
  }

  /** One sample at `atMs` over the nodes live now. Bounded: samples past MAX_SAMPLES are dropped. */
  sample (atMs: number, live: Iterable<NodeReading>): void {
    if (this.series.atMs.length >= MAX_SAMPLES || atMs <= this.lastSampleMs) return
    const seconds = (atMs - this.lastSampleMs) / 1000
    const messages: number[] = []
    const bytes: number[] = []
    for (const node of live) {
      const before = this.previous.get(node.id)
      const sameLife = before !== undefined && before.life === node.life
      messages.push((node.stats.messagesSent - (sameLife ? before.messagesSent : 0)) / seconds)
      bytes.push((node.stats.bytesSent - (sameLife ? before.bytesSent : 0)) / seconds)
      this.previous.set(node.id, { life: node.life, messagesSent: node.stats.messagesSent, bytesSent: node.stats.bytesSent })
    }
    this.series.atMs.push(atMs)
    pushSpread(this.series.messagesPerNodePerSec, messages)
    pushSpread(this.series.bytesPerNodePerSec, bytes)
    this.series.routeChanges.total.push(this.changesTotal)
    for (const [prefix, count] of this.changesByPrefix) this.series.routeChanges.byPrefix[prefix]?.push(count)
    this.changesTotal = 0
    for (const prefix of this.changesByPrefix.keys()) this.changesByPrefix.set(prefix, 0)
    this.lastSampleMs = atMs
  }

  /**
   * A map frame before the timeline instant `atMs` (events: what happens there) or, with no events,
   * at the end of the run. `chosenOf` gives a node's origin for a prefix, `live` whether it is up.
   * Frames stop after MAX_MAP_INSTANTS instants plus the one that ends the last of them.
   */
  frame (atMs: number, events: string[], live: (node: string) => boolean, chosenOf: (prefix: string, node: string) => string | undefined): void {
    const isEnd = events.length === 0
    if (!isEnd) this.instantsSeen++
    const beyond = this.instantsSeen > MAX_MAP_INSTANTS
    if (!isEnd && beyond) this.series.framesLeftOff++
    // Kept: a frame before each of the first MAX_MAP_INSTANTS instants, and the one after the last.
    if (this.series.frames.length > MAX_MAP_INSTANTS) return
    const chosen: Record<string, number[]> = {}
    for (const [prefix, origins] of Object.entries(this.series.origins)) {
      chosen[prefix] = this.series.nodes.map((node) => {
        if (!live(node.id)) return NODE_DOWN
        const origin = chosenOf(prefix, node.id)
        return origin === undefined ? NO_ROUTE : origins.indexOf(origin)
      })
    }
    this.series.frames.push({ atMs, events: beyond ? [] : events, chosen })
  }

  result (): RunSeries { return this.series }
}
