// The debugger's memory: inspection records in arrival order (a trace file, or live streams), with
// an index per actor so "what was every actor doing at record i" costs one binary search per actor.
// Bounded: a trace larger than maxRecords is refused; a live store drops its oldest tenth when full
// and keeps each actor's state at the cut as a baseline, so time travel stays exact over what is kept.
import { createReadStream } from 'node:fs'
import { createInterface } from 'node:readline'
import type { InspectionEvent } from './ports.ts'

export const DEFAULT_MAX_RECORDS = 2_000_000
/** Longest trace line accepted; a real record is a few hundred bytes. */
export const MAX_TRACE_LINE_BYTES = 64 * 1024
const KINDS = new Set<InspectionEvent['kind']>(['actor.started', 'actor.stopped', 'actor.event', 'actor.snapshot', 'supervisor'])

export class TraceError extends Error {
  override name = 'TraceError'
  constructor (readonly file: string, readonly line: number, reason: string) {
    super(`${file}: line ${line}: ${reason}`)
  }
}

export interface NodeInfo { name: string, peerId?: string, location?: { lat: number, lon: number, region?: string, city?: string } }

/** The node identity a heartbeat's actor.started record carries (node.ts), if well formed. */
export function identityOf (record: InspectionEvent): Omit<NodeInfo, 'name'> | undefined {
  const detail = record.detail
  if (record.kind !== 'actor.started' || detail === undefined) return undefined
  const info: Omit<NodeInfo, 'name'> = {}
  if (typeof detail.peerId === 'string' && detail.peerId !== '') info.peerId = detail.peerId
  const location = detail.location as { lat?: unknown, lon?: unknown } | undefined
  if (location !== null && typeof location === 'object' && isCoordinate(location.lat, 90) && isCoordinate(location.lon, 180)) {
    info.location = { lat: location.lat, lon: location.lon }
  }
  return info.peerId === undefined && info.location === undefined ? undefined : info
}

function isCoordinate (value: unknown, bound: number): value is number {
  return typeof value === 'number' && Number.isFinite(value) && Math.abs(value) <= bound
}

export type ActorStatus = 'not started' | 'running' | 'stopped'

export interface ActorView {
  node: string
  systemId: string
  actor: string
  parent?: string
  status: ActorStatus
  state?: unknown
  /** State before the last change, the event that caused it, and the change's record index. */
  previous?: unknown
  event?: string
  changedAt?: number
  /** Record indices of this actor's neighbouring state changes, for stepping by actor. */
  previousChange?: number
  nextChange?: number
}

interface ActorIndex {
  node: string
  systemId: string
  actor: string
  parent?: string
  /** Absolute indices of started/snapshot/stopped records. */
  changes: number[]
  /** State at the store's base when older records were dropped. */
  baseline?: { state: unknown, status: ActorStatus }
}

/** Parses one trace line into a record, or says why not. Strings are interned: traces repeat them. */
export function parseTraceRecord (line: string, intern: (text: string) => string): InspectionEvent | string {
  let value: unknown
  try { value = JSON.parse(line) } catch (error) { return `not JSON: ${(error as Error).message}` }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'not a JSON object'
  const raw = value as Record<string, unknown>
  if (typeof raw.t !== 'number' || !Number.isFinite(raw.t)) return 't: must be a number (ms)'
  for (const field of ['node', 'systemId', 'actor'] as const) {
    if (typeof raw[field] !== 'string' || raw[field] === '') return `${field}: must be a non-empty string`
  }
  if (typeof raw.kind !== 'string' || !KINDS.has(raw.kind as InspectionEvent['kind'])) return `kind: must be one of ${[...KINDS].join(', ')}`
  for (const field of ['parent', 'event', 'source'] as const) {
    if (raw[field] !== undefined && typeof raw[field] !== 'string') return `${field}: must be a string`
  }
  const record: InspectionEvent = { t: raw.t, node: intern(raw.node as string), kind: raw.kind as InspectionEvent['kind'], systemId: intern(raw.systemId as string), actor: intern(raw.actor as string) }
  if (raw.parent !== undefined) record.parent = intern(raw.parent as string)
  if (raw.event !== undefined) record.event = intern(raw.event as string)
  if (raw.source !== undefined) record.source = intern(raw.source as string)
  if (raw.state !== undefined) record.state = raw.state
  if (raw.detail !== null && typeof raw.detail === 'object' && !Array.isArray(raw.detail)) record.detail = raw.detail as Record<string, unknown>
  return record
}

export interface EventFilter { node?: string, actor?: string, type?: string }

export class InspectStore {
  private records: InspectionEvent[] = []
  private base = 0
  private readonly actors = new Map<string, ActorIndex>()
  private readonly nodes = new Map<string, NodeInfo>()
  private readonly namesByPeerId = new Map<string, string>()
  private readonly strings = new Map<string, string>()
  readonly intern = (text: string): string => {
    const known = this.strings.get(text)
    if (known !== undefined) return known
    if (this.strings.size < 1_000_000) this.strings.set(text, text)
    return text
  }

  constructor (readonly options: { maxRecords: number, mode: 'trace' | 'live' }) {}

  /** Absolute index of the first kept record, and one past the last. */
  get first (): number { return this.base }
  get end (): number { return this.base + this.records.length }

  record (index: number): InspectionEvent | undefined { return this.records[index - this.base] }

  nodeList (): Array<NodeInfo & { actors: number }> {
    const counts = new Map<string, number>()
    for (const actor of this.actors.values()) counts.set(actor.node, (counts.get(actor.node) ?? 0) + 1)
    return [...this.nodes.values()].map((node) => ({ ...node, actors: counts.get(node.name) ?? 0 })).sort((a, b) => a.name.localeCompare(b.name))
  }

  actorKinds (): string[] { return [...new Set([...this.actors.values()].map((actor) => actor.actor))].sort() }
  get actorCount (): number { return this.actors.size }

  setNodeInfo (info: NodeInfo): void {
    this.nodes.set(info.name, { ...this.nodes.get(info.name), ...info })
    if (info.peerId !== undefined) this.namesByPeerId.set(info.peerId, info.name)
  }

  /** The node a peer id belongs to; in the simulator a node's peer id is its name. */
  nodeOfPeer (peerId: string): string | undefined {
    return this.namesByPeerId.get(peerId) ?? (this.nodes.has(peerId) ? peerId : undefined)
  }

  append (record: InspectionEvent): void {
    if (this.records.length >= this.options.maxRecords) this.dropOldest(Math.max(1, Math.floor(this.options.maxRecords / 10)))
    const index = this.end
    this.records.push(record)
    if (!this.nodes.has(record.node)) this.nodes.set(record.node, { name: record.node })
    if (record.detail !== undefined && record.kind === 'actor.started') {
      const identity = identityOf(record)
      if (identity !== undefined) this.setNodeInfo({ name: record.node, ...identity })
    }
    if (record.kind === 'supervisor' || record.kind === 'actor.event') {
      if (record.kind === 'actor.event') this.actorIndex(record)
      return
    }
    this.actorIndex(record).changes.push(index)
  }

  /** The first record at or after time tMs (records are in time order per source). */
  indexAtTime (tMs: number): number {
    let low = 0
    let high = this.records.length
    while (low < high) {
      const middle = (low + high) >>> 1
      if (this.records[middle]!.t < tMs) low = middle + 1
      else high = middle
    }
    return Math.min(this.base + low, Math.max(this.base, this.end - 1))
  }

  actorAt (node: string, systemId: string, at: number): ActorView | undefined {
    const index = this.actors.get(`${node}\u0000${systemId}`)
    return index === undefined ? undefined : this.view(index, at)
  }

  nodeAt (node: string, at: number): ActorView[] {
    const out: ActorView[] = []
    for (const index of this.actors.values()) {
      if (index.node !== node) continue
      const view = this.view(index, at)
      if (view.status !== 'not started' || index.baseline !== undefined) out.push(view)
    }
    return out.sort((a, b) => a.systemId.localeCompare(b.systemId))
  }

  /** The last `limit` records at or before `at` that match, oldest first; scans at most scanLimit records. */
  eventsAt (at: number, filter: EventFilter, limit: number, scanLimit = 500_000): Array<InspectionEvent & { i: number }> {
    const out: Array<InspectionEvent & { i: number }> = []
    const stop = Math.max(this.base, at - scanLimit)
    for (let index = Math.min(at, this.end - 1); index >= stop && out.length < limit; index--) {
      const record = this.records[index - this.base]!
      if (filter.node !== undefined && record.node !== filter.node) continue
      if (filter.actor !== undefined && record.actor !== filter.actor) continue
      if (filter.type !== undefined && !(record.event ?? record.kind).includes(filter.type)) continue
      out.push({ i: index, ...record })
    }
    return out.reverse()
  }

  private actorIndex (record: InspectionEvent): ActorIndex {
    const key = `${record.node}\u0000${record.systemId}`
    let index = this.actors.get(key)
    if (index === undefined) {
      index = { node: record.node, systemId: record.systemId, actor: record.actor, changes: [] }
      this.actors.set(key, index)
    }
    if (record.parent !== undefined) index.parent = record.parent
    return index
  }

  /** Position of the last change at or before `at` in index.changes, or -1. */
  private lastChange (index: ActorIndex, at: number): number {
    let low = 0
    let high = index.changes.length
    while (low < high) {
      const middle = (low + high) >>> 1
      if (index.changes[middle]! <= at) low = middle + 1
      else high = middle
    }
    return low - 1
  }

  private stateOf (index: ActorIndex, position: number): { state: unknown, status: ActorStatus } {
    if (position < 0) return index.baseline ?? { state: undefined, status: 'not started' }
    const record = this.records[index.changes[position]! - this.base]!
    if (record.kind === 'actor.stopped') return { state: record.state, status: 'stopped' }
    if (record.kind === 'actor.started') return { state: this.stateOf(index, position - 1).state, status: 'running' }
    return { state: record.state, status: 'running' }
  }

  private view (index: ActorIndex, at: number): ActorView {
    const position = this.lastChange(index, at)
    const { state, status } = this.stateOf(index, position)
    const view: ActorView = { node: index.node, systemId: index.systemId, actor: index.actor, status }
    if (index.parent !== undefined) view.parent = index.parent
    if (state !== undefined) view.state = state
    // The last change that moved the state: a re-entry (same value) still counts, it is a transition.
    for (let back = position; back >= 0 && back > position - 50; back--) {
      const record = this.records[index.changes[back]! - this.base]!
      if (record.kind !== 'actor.snapshot') continue
      view.changedAt = index.changes[back]!
      if (record.event !== undefined) view.event = record.event
      const before = this.stateOf(index, back - 1).state
      if (before !== undefined) view.previous = before
      break
    }
    if (position >= 0) view.previousChange = index.changes[position]!
    if (position + 1 < index.changes.length) view.nextChange = index.changes[position + 1]!
    return view
  }

  private dropOldest (count: number): void {
    const cut = this.base + count
    for (const index of this.actors.values()) {
      const position = this.lastChange(index, cut - 1)
      if (position >= 0 || index.baseline !== undefined) index.baseline = this.stateOf(index, position)
      index.changes = index.changes.slice(position + 1)
    }
    this.records = this.records.slice(count)
    this.base = cut
  }
}

/** Reads a JSONL trace; a bad line fails with its line number, a trace over maxRecords is refused. */
export async function loadTrace (file: string, options: { maxRecords?: number } = {}): Promise<InspectStore> {
  const maxRecords = options.maxRecords ?? DEFAULT_MAX_RECORDS
  const store = new InspectStore({ maxRecords, mode: 'trace' })
  const lines = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity })
  let number = 0
  let lastT = -Infinity
  for await (const line of lines) {
    number++
    if (line.trim() === '') continue
    if (line.length > MAX_TRACE_LINE_BYTES) throw new TraceError(file, number, `longer than ${MAX_TRACE_LINE_BYTES} bytes`)
    if (store.end >= maxRecords) throw new TraceError(file, number, `more than ${maxRecords} records (raise --max-records)`)
    const record = parseTraceRecord(line, store.intern)
    if (typeof record === 'string') throw new TraceError(file, number, record)
    if (record.t < lastT) throw new TraceError(file, number, `t ${record.t} goes back in time (previous ${lastT})`)
    lastT = record.t
    store.append(record)
  }
  if (store.end === 0) throw new TraceError(file, number, 'no records')
  return store
}
