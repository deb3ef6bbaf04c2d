// The fault catalogue of scenario files: timeline fault events and the random fault options, parsed
// into typed values (simulations/scenario.ts reads the rest of the file; simulations/faults.ts
// applies them; simulations/random-faults.ts draws the random ones from a run's seed).
//
// Timeline fault events (beside serviceDown, serviceUp, nodeCrash, nodeRestart):
//
//   { "at": 9000, "event": "partition", "between": [{ "regions": ["eu"] }, { "regions": ["na"] }],
//     "oneWay": false, "durationMs": 8000 }        second set absent: every other node; oneWay cuts
//                                                  only the first set → second set direction
//   { "at": 9000, "event": "loss", "rate": 0.2, "between": [...], "oneWay": false, "durationMs": 5000 }
//   { "at": 9000, "event": "delay", "extraMs": 150, "jitterMs": 40, "between": [...], "durationMs": 5000 }
//   { "at": 9000, "event": "reorder", "rate": 0.3, "windowMs": 50, "durationMs": 5000 }
//                                                  loss, delay, reorder: "between" absent = every link
//   { "at": 9000, "event": "clockSkew", "node": "fra-3", "offsetMs": -4000 }    or "nodes": { ... }
//   { "at": 9000, "event": "cpuStall", "node": "fra-3", "durationMs": 1500 }     or "nodes": { ... }
//   { "at": 9000, "event": "serviceFlap", "node": "fra-0", "service": "api", "periodMs": 4000,
//     "count": 3, "downMs": 2000 }                 expands to serviceDown / serviceUp pairs
//
//   A node set is { "regions": [...] } or { "nodes": [...] }. A fault without durationMs lasts to
//   the end of the run.
//
// Random faults, drawn from the run's seed (arrivals are a Poisson process per kind, perMinute of
// simulated time, inside [fromMs, untilMs)):
//
//   "faults": { "random": {
//     "fromMs": 5000, "untilMs": 40000,            default 5000 and durationMs − expect.steadyAfterMs
//     "lossSpikes":  { "perMinute": 2, "rate": 0.2, "durationMs": 3000 },        every link
//     "delaySpikes": { "perMinute": 2, "extraMs": 100, "jitterMs": 50, "durationMs": 3000 },
//     "reordering":  { "perMinute": 1, "rate": 0.3, "windowMs": 50, "durationMs": 5000 },
//     "partitions":  { "perMinute": 1, "durationMs": 5000, "oneWayShare": 0.5 }, one region against the rest
//     "crashes":     { "perMinute": 1, "downMs": 8000, "wipedShare": 0.5 },      any node, origins too
//     "churn":       { "perMinute": 6, "downMs": 10000, "wipedShare": 1 },       nodes that serve nothing
//     "stalls":      { "perMinute": 2, "durationMs": 1000 },
//     "clockSkew":   { "share": 0.1, "maxOffsetMs": 5000 }                        at fromMs, for good
//   } }
import { NODE_ID, NODE_ID_HINT, NAME, NAME_HINT, type Reader, join } from './scenario-reader.ts'

export const FAULT_EVENTS = ['partition', 'loss', 'delay', 'reorder', 'clockSkew', 'cpuStall'] as const
export type FaultEventKind = typeof FAULT_EVENTS[number]

/** The node sets a partition or link fault applies between. */
export interface FaultScope {
  from: string[]
  /** Undefined: every node not in `from` (partition), every node (link faults). */
  to?: string[]
  oneWay: boolean
}

interface FaultBase {
  at: number
  /** Index in Scenario.faults; a faultEnd names the fault it ends by this. */
  id: number
  /** Where it came from, for messages: `timeline[3]` or `faults.random.lossSpikes`. */
  origin: string
}

export type FaultEvent = FaultBase & (
  | { event: 'partition', scope: FaultScope, durationMs?: number }
  | { event: 'loss', rate: number, scope?: FaultScope, durationMs?: number }
  | { event: 'delay', extraMs: number, jitterMs: number, scope?: FaultScope, durationMs?: number }
  | { event: 'reorder', rate: number, windowMs: number, scope?: FaultScope, durationMs?: number }
  | { event: 'clockSkew', nodes: string[], offsetMs: number }
  | { event: 'cpuStall', nodes: string[], durationMs: number }
  | { event: 'faultEnd', ends: number }
)

/** The world the fault fields are checked against. */
export interface FaultContext {
  durationMs: number
  nodeIds: ReadonlySet<string>
  /** Node ids per region. */
  regions: ReadonlyMap<string, string[]>
}

const MAX_FAULT_MS = 3_600_000

function readNodeSet (reader: Reader, value: unknown, field: string, context: FaultContext): string[] {
  const raw = reader.object(value, field, ['regions', 'nodes'])
  if ((raw.regions === undefined) === (raw.nodes === undefined)) reader.fail(field, 'must have exactly one of "regions" and "nodes"')
  const chosen = new Set<string>()
  if (raw.regions !== undefined) {
    reader.array(raw.regions, join(field, 'regions'), 1, 64).forEach((item, index) => {
      const path = `${field}.regions[${index}]`
      const region = reader.string(item, path, { pattern: NAME, patternHint: NAME_HINT })
      const members = context.regions.get(region)
      if (members === undefined) reader.fail(path, `no node is in region ${JSON.stringify(region)} (regions: ${[...context.regions.keys()].join(', ') || 'none'})`)
      for (const id of members) chosen.add(id)
    })
  } else {
    reader.array(raw.nodes, join(field, 'nodes'), 1, context.nodeIds.size).forEach((item, index) => {
      const path = `${field}.nodes[${index}]`
      const id = reader.string(item, path, { pattern: NODE_ID, patternHint: NODE_ID_HINT })
      if (!context.nodeIds.has(id)) reader.fail(path, `unknown node ${JSON.stringify(id)}`)
      chosen.add(id)
    })
  }
  return [...chosen]
}

function readScope (reader: Reader, raw: Record<string, unknown>, field: string, context: FaultContext, required: boolean): FaultScope | undefined {
  const oneWay = reader.optionalBoolean(raw.oneWay, join(field, 'oneWay'), false)
  if (raw.between === undefined) {
    if (required) reader.fail(join(field, 'between'), 'is required')
    if (oneWay) reader.fail(join(field, 'oneWay'), 'needs "between" (a direction from one node set to another)')
    return undefined
  }
  const sets = reader.array(raw.between, join(field, 'between'), 1, 2)
  const from = readNodeSet(reader, sets[0], `${field}.between[0]`, context)
  const scope: FaultScope = { from, oneWay }
  if (sets[1] !== undefined) {
    scope.to = readNodeSet(reader, sets[1], `${field}.between[1]`, context)
    const overlap = scope.to.find((id) => from.includes(id))
    if (overlap !== undefined) reader.fail(`${field}.between[1]`, `shares node ${JSON.stringify(overlap)} with between[0]`)
  } else if (from.length === context.nodeIds.size) {
    reader.fail(`${field}.between[0]`, 'holds every node, so "every other node" is nobody')
  }
  return scope
}

function readTargets (reader: Reader, raw: Record<string, unknown>, field: string, context: FaultContext): string[] {
  if ((raw.node === undefined) === (raw.nodes === undefined)) reader.fail(field, 'must have exactly one of "node" and "nodes"')
  if (raw.nodes !== undefined) return readNodeSet(reader, raw.nodes, join(field, 'nodes'), context)
  const id = reader.string(raw.node, join(field, 'node'), { pattern: NODE_ID, patternHint: NODE_ID_HINT })
  if (!context.nodeIds.has(id)) reader.fail(join(field, 'node'), `unknown node ${JSON.stringify(id)}`)
  return [id]
}

function readDuration (reader: Reader, raw: Record<string, unknown>, field: string, at: number, context: FaultContext, required: boolean): number | undefined {
  if (raw.durationMs === undefined) {
    if (required) reader.fail(join(field, 'durationMs'), 'is required')
    return undefined
  }
  return reader.number(raw.durationMs, join(field, 'durationMs'), 1, Math.max(1, context.durationMs - at))
}

const FAULT_KEYS: Record<FaultEventKind, readonly string[]> = {
  partition: ['between', 'oneWay', 'durationMs'],
  loss: ['rate', 'between', 'oneWay', 'durationMs'],
  delay: ['extraMs', 'jitterMs', 'between', 'oneWay', 'durationMs'],
  reorder: ['rate', 'windowMs', 'between', 'oneWay', 'durationMs'],
  clockSkew: ['node', 'nodes', 'offsetMs'],
  cpuStall: ['node', 'nodes', 'durationMs']
}

/** One timeline item whose `event` is a FaultEventKind (its `at` and `event` already read). */
export function parseFaultEvent (reader: Reader, value: unknown, field: string, kind: FaultEventKind, at: number, id: number, context: FaultContext): FaultEvent {
  const raw = reader.object(value, field, ['at', 'event', ...FAULT_KEYS[kind]])
  const base = { at, id, origin: field }
  const withDuration = <T extends object>(event: T, durationMs: number | undefined): T & { durationMs?: number } =>
    durationMs === undefined ? event : { ...event, durationMs }
  switch (kind) {
    case 'partition':
      return withDuration({ ...base, event: kind, scope: readScope(reader, raw, field, context, true)! }, readDuration(reader, raw, field, at, context, false))
    case 'loss': {
      const scope = readScope(reader, raw, field, context, false)
      const event = { ...base, event: kind, rate: reader.number(raw.rate, join(field, 'rate'), 0, 1, false), ...(scope === undefined ? {} : { scope }) }
      return withDuration(event, readDuration(reader, raw, field, at, context, false))
    }
    case 'delay': {
      const extraMs = reader.optionalNumber(raw.extraMs, join(field, 'extraMs'), 0, 60_000, 0, false)
      const jitterMs = reader.optionalNumber(raw.jitterMs, join(field, 'jitterMs'), 0, 60_000, 0, false)
      if (extraMs === 0 && jitterMs === 0) reader.fail(field, 'needs "extraMs" or "jitterMs" above 0')
      const scope = readScope(reader, raw, field, context, false)
      return withDuration({ ...base, event: kind, extraMs, jitterMs, ...(scope === undefined ? {} : { scope }) }, readDuration(reader, raw, field, at, context, false))
    }
    case 'reorder': {
      const rate = reader.number(raw.rate, join(field, 'rate'), 0, 1, false)
      const windowMs = reader.number(raw.windowMs, join(field, 'windowMs'), 1, 60_000, false)
      const scope = readScope(reader, raw, field, context, false)
      return withDuration({ ...base, event: kind, rate, windowMs, ...(scope === undefined ? {} : { scope }) }, readDuration(reader, raw, field, at, context, false))
    }
    case 'clockSkew':
      return { ...base, event: kind, nodes: readTargets(reader, raw, field, context), offsetMs: reader.number(raw.offsetMs, join(field, 'offsetMs'), -MAX_FAULT_MS, MAX_FAULT_MS) }
    case 'cpuStall':
      return { ...base, event: kind, nodes: readTargets(reader, raw, field, context), durationMs: readDuration(reader, raw, field, at, context, true)! }
  }
}

/** The end of every fault of `faults` that has a durationMs, as faultEnd events numbered from `firstId`. */
export function faultEnds (faults: readonly FaultEvent[], firstId: number): FaultEvent[] {
  const ends: FaultEvent[] = []
  for (const fault of faults) {
    if (fault.event === 'faultEnd' || fault.event === 'clockSkew' || fault.event === 'cpuStall' || fault.durationMs === undefined) continue
    ends.push({ at: fault.at + fault.durationMs, id: firstId + ends.length, origin: fault.origin, event: 'faultEnd', ends: fault.id })
  }
  return ends
}

export interface RandomSpike { perMinute: number, durationMs: number }

export interface RandomFaults {
  fromMs: number
  untilMs: number
  lossSpikes?: RandomSpike & { rate: number }
  delaySpikes?: RandomSpike & { extraMs: number, jitterMs: number }
  reordering?: RandomSpike & { rate: number, windowMs: number }
  partitions?: RandomSpike & { oneWayShare: number }
  crashes?: { perMinute: number, downMs: number, wipedShare: number }
  churn?: { perMinute: number, downMs: number, wipedShare: number }
  stalls?: RandomSpike
  clockSkew?: { share: number, maxOffsetMs: number }
}

const RANDOM_KINDS = ['lossSpikes', 'delaySpikes', 'reordering', 'partitions', 'crashes', 'churn', 'stalls', 'clockSkew'] as const

/** Shortest downtime a random crash may draw: a crashed node's actors wind down first (world.ts). */
export const MIN_RANDOM_DOWN_MS = 5000

/** `faults` of a scenario: `{ "random": { ... } }`; undefined when absent. */
export function parseRandomFaults (reader: Reader, value: unknown, durationMs: number, steadyAfterMs: number, hasRegions: boolean): RandomFaults | undefined {
  if (value === undefined) return undefined
  const outer = reader.object(value, 'faults', ['random'], ['random'])
  const field = 'faults.random'
  const raw = reader.object(outer.random, field, ['fromMs', 'untilMs', ...RANDOM_KINDS])
  const fromMs = reader.optionalNumber(raw.fromMs, join(field, 'fromMs'), 0, durationMs - 1, Math.min(5000, durationMs - 1))
  const untilMs = reader.optionalNumber(raw.untilMs, join(field, 'untilMs'), fromMs + 1, durationMs, Math.max(fromMs + 1, durationMs - steadyAfterMs))
  const faults: RandomFaults = { fromMs, untilMs }
  const rate = (spec: Record<string, unknown>, path: string): number => reader.number(spec.perMinute, join(path, 'perMinute'), 0.001, 600, false)
  const spike = (spec: Record<string, unknown>, path: string): RandomSpike => ({
    perMinute: rate(spec, path),
    durationMs: reader.number(spec.durationMs, join(path, 'durationMs'), 1, MAX_FAULT_MS)
  })
  const read = (key: typeof RANDOM_KINDS[number], allowed: string[], required: string[]): [Record<string, unknown>, string] | undefined =>
    raw[key] === undefined ? undefined : [reader.object(raw[key], join(field, key), allowed, required), join(field, key)]
  let spec = read('lossSpikes', ['perMinute', 'durationMs', 'rate'], ['perMinute', 'durationMs', 'rate'])
  if (spec !== undefined) faults.lossSpikes = { ...spike(...spec), rate: reader.number(spec[0].rate, join(spec[1], 'rate'), 0, 1, false) }
  spec = read('delaySpikes', ['perMinute', 'durationMs', 'extraMs', 'jitterMs'], ['perMinute', 'durationMs'])
  if (spec !== undefined) {
    const extraMs = reader.optionalNumber(spec[0].extraMs, join(spec[1], 'extraMs'), 0, 60_000, 0, false)
    const jitterMs = reader.optionalNumber(spec[0].jitterMs, join(spec[1], 'jitterMs'), 0, 60_000, 0, false)
    if (extraMs === 0 && jitterMs === 0) reader.fail(spec[1], 'needs "extraMs" or "jitterMs" above 0')
    faults.delaySpikes = { ...spike(...spec), extraMs, jitterMs }
  }
  spec = read('reordering', ['perMinute', 'durationMs', 'rate', 'windowMs'], ['perMinute', 'durationMs', 'rate', 'windowMs'])
  if (spec !== undefined) {
    faults.reordering = { ...spike(...spec), rate: reader.number(spec[0].rate, join(spec[1], 'rate'), 0, 1, false), windowMs: reader.number(spec[0].windowMs, join(spec[1], 'windowMs'), 1, 60_000, false) }
  }
  spec = read('partitions', ['perMinute', 'durationMs', 'oneWayShare'], ['perMinute', 'durationMs'])
  if (spec !== undefined) {
    if (!hasRegions) reader.fail(spec[1], 'needs nodes with regions (a random partition cuts one region from the rest)')
    faults.partitions = { ...spike(...spec), oneWayShare: reader.optionalNumber(spec[0].oneWayShare, join(spec[1], 'oneWayShare'), 0, 1, 0, false) }
  }
  for (const key of ['crashes', 'churn'] as const) {
    spec = read(key, ['perMinute', 'downMs', 'wipedShare'], ['perMinute', 'downMs'])
    if (spec === undefined) continue
    faults[key] = {
      perMinute: rate(...spec),
      downMs: reader.number(spec[0].downMs, join(spec[1], 'downMs'), MIN_RANDOM_DOWN_MS, MAX_FAULT_MS),
      wipedShare: reader.optionalNumber(spec[0].wipedShare, join(spec[1], 'wipedShare'), 0, 1, key === 'churn' ? 1 : 0, false)
    }
  }
  spec = read('stalls', ['perMinute', 'durationMs'], ['perMinute', 'durationMs'])
  if (spec !== undefined) faults.stalls = spike(...spec)
  spec = read('clockSkew', ['share', 'maxOffsetMs'], ['share', 'maxOffsetMs'])
  if (spec !== undefined) {
    faults.clockSkew = { share: reader.number(spec[0].share, join(spec[1], 'share'), 0, 1, false), maxOffsetMs: reader.number(spec[0].maxOffsetMs, join(spec[1], 'maxOffsetMs'), 1, MAX_FAULT_MS) }
  }
  return faults
}
