// The debugger's sequence view: messages between nodes in a time window, derived from records the
// trace already holds, so production emits nothing new for it. A session frame shows up once, on
// the receiver (node B's `peer-session:<A>` gets `frame.received`, its detail naming the frame
// type), which fixes sender, receiver and arrival. A KEEPALIVE carries the sender's clock, so its
// departure is exact; other frames borrow the one-way delay of the nearest KEEPALIVE on the same
// pair and are marked estimated. An origin probe is a round trip seen only from the prober (it
// leaves when `schedule` enters `probing`, its answer lands when the probe actor is done); its far
// end is drawn halfway, also marked estimated. A heartbeat publish goes to gossip, whose receivers
// the trace does not record: it is a mark on the sender's lane, not an arrow.
import type { InspectionEvent } from './ports.ts'
import type { InspectStore } from './inspect-store.ts'

export const MAX_SEQUENCE_WINDOW_MS = 3_600_000
const DEFAULT_MAX_MESSAGES = 2000
const DEFAULT_MAX_SCAN = 300_000
const SESSION_PREFIX = 'peer-session:'
const PROBE_PREFIX = 'origin-probe:'

export interface SequenceMessage {
  /** Index of the record that ends the arrow (the arrival, or the probe's end). */
  i: number
  from: string
  to: string
  type: string
  tSent: number
  tReceived: number
  /** The departure (or a probe's turn) is inferred, not recorded. */
  estimated: boolean
}

export interface SequenceMark { i: number, node: string, t: number, type: string }

export interface SequenceView {
  at: number
  tFrom: number
  tTo: number
  lanes: string[]
  messages: SequenceMessage[]
  marks: SequenceMark[]
  /** The window held more than the bounds allow; the newest were kept. */
  truncated: boolean
}

export interface SequenceQuery {
  windowMs: number
  /** Only messages to or from this node. */
  node?: string
  maxMessages?: number
  maxScan?: number
}

interface OneWayDelay { t: number, delayMs: number }

/** Messages whose arrival lies in (t(at) - windowMs, t(at)], up to record `at` included. */
export function sequenceAt (store: InspectStore, at: number, query: SequenceQuery): SequenceView {
  const maxMessages = query.maxMessages ?? DEFAULT_MAX_MESSAGES
  const maxScan = query.maxScan ?? DEFAULT_MAX_SCAN
  const tTo = store.record(at)?.t ?? 0
  const tFrom = tTo - query.windowMs
  let start = store.indexAtTime(tFrom)
  let truncated = false
  if (at - start > maxScan) { start = at - maxScan; truncated = true }

  const messages: SequenceMessage[] = []
  const marks: SequenceMark[] = []
  const delays = new Map<string, OneWayDelay[]>()
  const probes = new Map<string, number>()
  for (let index = Math.max(start, store.first); index <= at; index++) {
    const record = store.record(index)
    if (record === undefined) continue
    if (record.actor === 'peer-session') sessionFrame(store, record, index, messages, delays)
    else if (record.actor === 'health-prober') originProbe(store, record, index, messages, probes)
    else if (record.actor === 'heartbeat' && record.kind === 'actor.snapshot' && record.state === 'publishing') {
      marks.push({ i: index, node: record.node, t: record.t, type: 'gossip: heartbeat' })
    }
  }
  for (const message of messages) {
    if (!message.estimated || message.type.startsWith('probe')) continue
    const delayMs = nearestDelay(delays.get(`${message.from}\u0000${message.to}`) ?? delays.get(`${message.to}\u0000${message.from}`), message.tReceived)
    message.tSent = message.tReceived - delayMs
  }

  const node = query.node
  let shown = messages.filter((message) => message.tReceived > tFrom && (node === undefined || message.from === node || message.to === node))
  const shownMarks = marks.filter((mark) => mark.t > tFrom && (node === undefined || mark.node === node))
  if (shown.length > maxMessages) { shown = shown.slice(shown.length - maxMessages); truncated = true }
  return { at, tFrom, tTo, lanes: lanesOf(store, shown, shownMarks, node), messages: shown, marks: shownMarks, truncated }
}

function sessionFrame (store: InspectStore, record: InspectionEvent, index: number, messages: SequenceMessage[], delays: Map<string, OneWayDelay[]>): void {
  if (record.kind !== 'actor.event' || record.event !== 'frame.received' || !record.systemId.startsWith(SESSION_PREFIX)) return
  const peer = record.systemId.slice(SESSION_PREFIX.length)
  const from = store.nodeOfPeer(peer) ?? peer
  const type = typeof record.detail?.frame === 'string' ? record.detail.frame : 'frame'
  const sentAtMs = record.detail?.sentAtMs
  if (type === 'keepalive' && typeof sentAtMs === 'number' && sentAtMs <= record.t) {
    const key = `${from}\u0000${record.node}`
    let list = delays.get(key)
    if (list === undefined) delays.set(key, list = [])
    list.push({ t: record.t, delayMs: record.t - sentAtMs })
    messages.push({ i: index, from, to: record.node, type, tSent: sentAtMs, tReceived: record.t, estimated: false })
    return
  }
  messages.push({ i: index, from, to: record.node, type, tSent: record.t, tReceived: record.t, estimated: true })
}

function originProbe (store: InspectStore, record: InspectionEvent, index: number, messages: SequenceMessage[], probes: Map<string, number>): void {
  if (!record.systemId.startsWith(PROBE_PREFIX)) return
  const key = `${record.node}\u0000${record.systemId}`
  const schedule = (record.state as { schedule?: unknown } | undefined)?.schedule
  if (record.kind === 'actor.snapshot' && schedule === 'probing') {
    if (!probes.has(key)) probes.set(key, record.t)
    return
  }
  if (record.kind !== 'actor.snapshot' && record.kind !== 'actor.stopped') return
  const sentAt = probes.get(key)
  if (sentAt === undefined) return
  probes.delete(key)
  const peer = record.systemId.slice(PROBE_PREFIX.length)
  const target = store.nodeOfPeer(peer) ?? peer
  const turn = (sentAt + record.t) / 2
  const answered = record.kind === 'actor.snapshot' && record.event === 'xstate.done.actor.probe'
  messages.push({ i: index, from: record.node, to: target, type: answered ? 'probe' : 'probe (no answer)', tSent: sentAt, tReceived: turn, estimated: true })
  if (answered) messages.push({ i: index, from: target, to: record.node, type: 'probe reply', tSent: turn, tReceived: record.t, estimated: true })
}

/** The one-way delay measured closest in time to t; 0 when the pair sent no KEEPALIVE in the window. */
function nearestDelay (samples: OneWayDelay[] | undefined, t: number): number {
  if (samples === undefined || samples.length === 0) return 0
  let best = samples[0]!
  for (const sample of samples) if (Math.abs(sample.t - t) < Math.abs(best.t - t)) best = sample
  return best.delayMs
}

/** Lanes in the store's node order (the filtered node first), then peers the trace never named. */
function lanesOf (store: InspectStore, messages: SequenceMessage[], marks: SequenceMark[], node: string | undefined): string[] {
  const used = new Set<string>()
  for (const message of messages) { used.add(message.from); used.add(message.to) }
  for (const mark of marks) used.add(mark.node)
  const known = store.nodeList().map((info) => info.name)
  const lanes = known.filter((name) => used.has(name) && name !== node)
  const strangers = [...used].filter((name) => !known.includes(name) && name !== node).sort()
  return [...(node !== undefined && used.has(node) ? [node] : []), ...lanes, ...strangers]
}
