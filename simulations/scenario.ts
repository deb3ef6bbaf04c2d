// Scenario files for `form-anycast sim`: parsed at the edge into typed values. Every problem is a
// ConfigError naming the file, the field path and the reason (`timeline[2].at: must be ...`), and
// unknown keys are rejected, so a typo never silently runs a different experiment.
//
// Format (JSON):
//
//   {
//     "name": "origin-failover",                  kebab-case
//     "description": "...",                        optional
//     "durationMs": 50000,                         simulated time of one run
//     "degree": 8,                                 average overlay degree (random graph), default 8
//     "world": {                                   optional; the network model
//       "inflation": 1.5,                          fibre path over great circle (simulations/latency.ts)
//       "linkBaseMs": 1,                           added to every one-way delay
//       "jitterFraction": 0,                       extra delay uniform in [0, fraction × latency)
//       "lossRate": 0                              gossip data-plane loss probability
//     },
//     "nodes": [{ "id": "fra-0", "lat": 50.1, "lon": 8.7, "region": "eu" }, ...]
//       or
//     "generate": {                                nodes scattered around sites, by weight
//       "count": 1000, "spreadKm": 300, "seed": 1,
//       "sites": [{ "name": "fra", "lat": 50.11, "lon": 8.68, "region": "eu", "weight": 3 }, ...]
//     },                                           ids are "<site>-<k>"; "<site>-0" sits at the site itself
//     "services": [{ "name": "api", "prefix": "10.42.255.1/32", "origins": ["fra-0", ...], "preference": 100 }],
//     "protocol": {                                optional overrides of the control-plane timing
//       "serviceProbe": { "intervalMs", "timeoutMs", "rise", "fall", "jitter" },
//       "originProbe":  { ... same ... },
//       "announcementTtlMs", "refreshIntervalMs", "heartbeatIntervalMs", "holdTimeMs"
//     },
//     "timeline": [{ "at": 12000, "event": "serviceDown", "node": "fra-0", "service": "api" }, ...],
//                                                  serviceDown | serviceUp (the service's health check
//                                                  fails / passes again), nodeCrash (the machine dies,
//                                                  withdrawing nothing), nodeRestart (a fresh process,
//                                                  at least 5 s after its crash); sorted by "at"
//     "expect": {                                  optional; the targets the checks hold a run to
//       "convergenceP99Ms": { "serviceDown": 2000, "nodeCrash": 3000 },
//       "optimality": 0.99,
//       "steadyAfterMs": 8000                      an instant counts as steady this long after an event
//     }
//   }
//
// The timeline is replayed against the world's state while parsing, so an event that could not
// happen (a service taken down twice, a restart of a live node) is an error here, not a surprise
// in the middle of a run.
import { ConfigError, readJsonFile } from '../src/runtime/config.ts'
import { parsePrefix } from '../src/protocols/cidr.ts'
import { createRandom } from '../src/runtime/random.ts'
import { destinationPoint, DEFAULT_LINK_BASE_MS, DEFAULT_ROUTE_INFLATION } from './latency.ts'

export interface ScenarioNode { id: string, lat: number, lon: number, region?: string }

export interface ScenarioService {
  name: string
  prefix: string
  origins: string[]
  preference: number
}

export const TIMELINE_EVENTS = ['serviceDown', 'serviceUp', 'nodeCrash', 'nodeRestart'] as const
export type TimelineEventKind = typeof TIMELINE_EVENTS[number]
/** Events that take an origin out of service; each has its convergence measured. */
export const FAILURE_EVENTS = ['serviceDown', 'nodeCrash'] as const
export type FailureEventKind = typeof FAILURE_EVENTS[number]

export interface TimelineEvent {
  at: number
  event: TimelineEventKind
  node: string
  /** serviceDown / serviceUp only. */
  service?: string
}

export interface ProbeOverride {
  intervalMs?: number
  timeoutMs?: number
  rise?: number
  fall?: number
  jitter?: number
}

export interface ScenarioProtocol {
  serviceProbe?: ProbeOverride
  originProbe?: ProbeOverride
  announcementTtlMs?: number
  refreshIntervalMs?: number
  heartbeatIntervalMs?: number
  holdTimeMs?: number
}

export interface ScenarioWorld {
  inflation: number
  linkBaseMs: number
  jitterFraction: number
  lossRate: number
}

export interface ScenarioExpect {
  convergenceP99Ms: Record<FailureEventKind, number>
  optimality: number
  steadyAfterMs: number
}

export interface Scenario {
  /** Where it was read from, for messages and the `reproduce:` line. */
  source: string
  name: string
  description?: string
  durationMs: number
  degree: number
  world: ScenarioWorld
  nodes: ScenarioNode[]
  services: ScenarioService[]
  protocol: ScenarioProtocol
  timeline: TimelineEvent[]
  expect: ScenarioExpect
}

export const defaultScenarioExpect: ScenarioExpect = {
  convergenceP99Ms: { serviceDown: 2000, nodeCrash: 3000 },
  optimality: 0.99,
  steadyAfterMs: 8000
}

/** Bounds that keep one run inside a machine's memory and a person's patience. */
export const MAX_NODES = 5000
export const MAX_DURATION_MS = 3_600_000
export const MAX_TIMELINE_EVENTS = 1000
const MAX_SERVICES = 64
const MAX_SITES = 256

const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/
const NAME_HINT = 'lowercase letters, digits and dashes (at most 63)'
const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/
const NODE_ID_HINT = 'letters, digits, ".", "_" and "-" (at most 64)'

/** A small schema walker: each reader takes the raw value and its field path. */
class Reader {
  constructor (readonly source: string) {}

  fail (field: string, reason: string): never { throw new ConfigError(this.source, field, reason) }

  object (value: unknown, field: string, allowed: readonly string[], required: readonly string[] = []): Record<string, unknown> {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) this.fail(field, `must be an object, got ${describe(value)}`)
    const record = value as Record<string, unknown>
    for (const key of Object.keys(record)) {
      if (!allowed.includes(key)) this.fail(join(field, key), `unknown key (allowed: ${allowed.join(', ')})`)
    }
    for (const key of required) if (record[key] === undefined) this.fail(join(field, key), 'is required')
    return record
  }

  array (value: unknown, field: string, minItems: number, maxItems: number): unknown[] {
    if (!Array.isArray(value)) this.fail(field, `must be an array, got ${describe(value)}`)
    if (value.length < minItems) this.fail(field, `must have at least ${minItems} ${minItems === 1 ? 'entry' : 'entries'}`)
    if (value.length > maxItems) this.fail(field, `more than ${maxItems} entries`)
    return value
  }

  string (value: unknown, field: string, pattern?: RegExp, hint?: string, maxLength = 4096): string {
    if (typeof value !== 'string') this.fail(field, `must be a string, got ${describe(value)}`)
    if (value.length === 0) this.fail(field, 'must not be empty')
    if (value.length > maxLength) this.fail(field, `longer than ${maxLength} characters`)
    if (pattern !== undefined && !pattern.test(value)) this.fail(field, `must be ${hint ?? `like ${String(pattern)}`}, got ${JSON.stringify(value)}`)
    return value
  }

  number (value: unknown, field: string, min: number, max: number, integer = true): number {
    if (typeof value !== 'number' || !Number.isFinite(value)) this.fail(field, `must be a number, got ${describe(value)}`)
    if (integer && !Number.isInteger(value)) this.fail(field, `must be an integer, got ${value}`)
    if (value < min || value > max) this.fail(field, `must be between ${min} and ${max}, got ${value}`)
    return value
  }

  optionalNumber (value: unknown, field: string, min: number, max: number, fallback: number, integer = true): number {
    return value === undefined ? fallback : this.number(value, field, min, max, integer)
  }
}

function join (field: string, key: string): string { return field === '' ? key : `${field}.${key}` }

function describe (value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)}`
  if (typeof value === 'object') return 'an object'
  return `${typeof value} ${String(value)}`
}

const SCENARIO_KEYS = ['name', 'description', 'durationMs', 'degree', 'world', 'nodes', 'generate', 'services', 'protocol', 'timeline', 'expect'] as const

/** Validate a parsed JSON value as a scenario. `source` names the file in errors. */
export function parseScenario (value: unknown, source: string): Scenario {
  const reader = new Reader(source)
  const raw = reader.object(value, '', SCENARIO_KEYS, ['name', 'durationMs', 'services', 'timeline'])
  const durationMs = reader.number(raw.durationMs, 'durationMs', 1000, MAX_DURATION_MS)
  if (raw.nodes === undefined && raw.generate === undefined) reader.fail('nodes', 'is required (or "generate")')
  if (raw.nodes !== undefined && raw.generate !== undefined) reader.fail('generate', 'cannot be given together with "nodes"')
  const nodes = raw.nodes !== undefined ? parseNodes(reader, raw.nodes) : generateNodes(reader, raw.generate)
  const services = parseServices(reader, raw.services, new Set(nodes.map((node) => node.id)))
  const scenario: Scenario = {
    source,
    name: reader.string(raw.name, 'name', NAME, NAME_HINT),
    durationMs,
    degree: reader.optionalNumber(raw.degree, 'degree', 2, 64, 8),
    world: parseWorld(reader, raw.world),
    nodes,
    services,
    protocol: parseProtocol(reader, raw.protocol),
    timeline: parseTimeline(reader, raw.timeline, durationMs, nodes, services),
    expect: parseExpect(reader, raw.expect)
  }
  if (raw.description !== undefined) scenario.description = reader.string(raw.description, 'description', undefined, undefined, 2000)
  if (scenario.degree >= nodes.length) reader.fail('degree', `must be below the number of nodes (${nodes.length}), got ${scenario.degree}`)
  return scenario
}

/** Read and parse a scenario file; ConfigError for a missing file, bad JSON or a bad scenario. */
export function loadScenario (path: string): Scenario {
  return parseScenario(readJsonFile(path, 'scenario'), path)
}

function parseWorld (reader: Reader, value: unknown): ScenarioWorld {
  if (value === undefined) return { inflation: DEFAULT_ROUTE_INFLATION, linkBaseMs: DEFAULT_LINK_BASE_MS, jitterFraction: 0, lossRate: 0 }
  const raw = reader.object(value, 'world', ['inflation', 'linkBaseMs', 'jitterFraction', 'lossRate'])
  return {
    inflation: reader.optionalNumber(raw.inflation, 'world.inflation', 1, 10, DEFAULT_ROUTE_INFLATION, false),
    linkBaseMs: reader.optionalNumber(raw.linkBaseMs, 'world.linkBaseMs', 0, 1000, DEFAULT_LINK_BASE_MS, false),
    jitterFraction: reader.optionalNumber(raw.jitterFraction, 'world.jitterFraction', 0, 1, 0, false),
    lossRate: reader.optionalNumber(raw.lossRate, 'world.lossRate', 0, 0.5, 0, false)
  }
}

function parseCoordinates (reader: Reader, raw: Record<string, unknown>, field: string): { lat: number, lon: number } {
  return { lat: reader.number(raw.lat, join(field, 'lat'), -90, 90, false), lon: reader.number(raw.lon, join(field, 'lon'), -180, 180, false) }
}

function parseNodes (reader: Reader, value: unknown): ScenarioNode[] {
  const ids = new Set<string>()
  return reader.array(value, 'nodes', 2, MAX_NODES).map((item, index) => {
    const field = `nodes[${index}]`
    const raw = reader.object(item, field, ['id', 'lat', 'lon', 'region'], ['id', 'lat', 'lon'])
    const id = reader.string(raw.id, join(field, 'id'), NODE_ID, NODE_ID_HINT)
    if (ids.has(id)) reader.fail(join(field, 'id'), `duplicate node id ${JSON.stringify(id)}`)
    ids.add(id)
    const node: ScenarioNode = { id, ...parseCoordinates(reader, raw, field) }
    if (raw.region !== undefined) node.region = reader.string(raw.region, join(field, 'region'), NAME, NAME_HINT)
    return node
  })
}

interface Site { name: string, lat: number, lon: number, region?: string, weight: number }

function parseSites (reader: Reader, value: unknown): Site[] {
  const names = new Set<string>()
  return reader.array(value, 'generate.sites', 1, MAX_SITES).map((item, index) => {
    const field = `generate.sites[${index}]`
    const raw = reader.object(item, field, ['name', 'lat', 'lon', 'region', 'weight'], ['name', 'lat', 'lon'])
    const name = reader.string(raw.name, join(field, 'name'), NAME, NAME_HINT)
    if (names.has(name)) reader.fail(join(field, 'name'), `duplicate site ${JSON.stringify(name)}`)
    names.add(name)
    const site: Site = { name, ...parseCoordinates(reader, raw, field), weight: reader.optionalNumber(raw.weight, join(field, 'weight'), 0.001, 1e6, 1, false) }
    if (raw.region !== undefined) site.region = reader.string(raw.region, join(field, 'region'), NAME, NAME_HINT)
    return site
  })
}

/**
 * Nodes around weighted sites: counts by largest remainder (every site gets at least one), each
 * node at a uniform point of a disc of radius spreadKm around its site, except `<site>-0` at the
 * site itself (a natural place for an origin). Placement depends only on the scenario, not on the
 * run's seed, so origins and geography are the same in every run.
 */
function generateNodes (reader: Reader, value: unknown): ScenarioNode[] {
  const raw = reader.object(value, 'generate', ['count', 'spreadKm', 'seed', 'sites'], ['count', 'sites'])
  const sites = parseSites(reader, raw.sites)
  const count = reader.number(raw.count, 'generate.count', Math.max(2, sites.length), MAX_NODES)
  const spreadKm = reader.optionalNumber(raw.spreadKm, 'generate.spreadKm', 0, 5000, 300, false)
  const random = createRandom(reader.optionalNumber(raw.seed, 'generate.seed', 0, 2 ** 31, 1)).fork('placement')
  const counts = apportion(count, sites.map((site) => site.weight))
  const nodes: ScenarioNode[] = []
  sites.forEach((site, siteIndex) => {
    for (let k = 0; k < counts[siteIndex]!; k++) {
      const place = k === 0 ? { lat: site.lat, lon: site.lon } : destinationPoint(site, random.next() * 360, spreadKm * Math.sqrt(random.next()))
      const node: ScenarioNode = { id: `${site.name}-${k}`, lat: round(place.lat, 4), lon: round(place.lon, 4) }
      if (site.region !== undefined) node.region = site.region
      nodes.push(node)
    }
  })
  return nodes
}

/** Split `total` by `weights`, at least one each, by largest remainder (Hamilton's method). */
export function apportion (total: number, weights: number[]): number[] {
  const spare = total - weights.length
  const sum = weights.reduce((a, b) => a + b, 0)
  const exact = weights.map((weight) => spare * weight / sum)
  const counts = exact.map((share) => 1 + Math.floor(share))
  const order = exact.map((share, index) => ({ index, remainder: share - Math.floor(share) }))
    .sort((a, b) => b.remainder - a.remainder || a.index - b.index)
  let left = total - counts.reduce((a, b) => a + b, 0)
  for (const { index } of order) {
    if (left-- <= 0) break
    counts[index]!++
  }
  return counts
}

function round (value: number, digits: number): number {
  const scale = 10 ** digits
  return Math.round(value * scale) / scale
}

function parseServices (reader: Reader, value: unknown, nodeIds: ReadonlySet<string>): ScenarioService[] {
  const names = new Set<string>()
  const prefixes = new Set<string>()
  return reader.array(value, 'services', 1, MAX_SERVICES).map((item, index) => {
    const field = `services[${index}]`
    const raw = reader.object(item, field, ['name', 'prefix', 'origins', 'preference'], ['name', 'prefix', 'origins'])
    const name = reader.string(raw.name, join(field, 'name'), NAME, NAME_HINT)
    if (names.has(name)) reader.fail(join(field, 'name'), `duplicate service ${JSON.stringify(name)}`)
    names.add(name)
    const prefixText = reader.string(raw.prefix, join(field, 'prefix'), undefined, undefined, 64)
    let prefix: string
    try { prefix = parsePrefix(prefixText).text } catch (error) { return reader.fail(join(field, 'prefix'), (error as Error).message) }
    if (prefix !== prefixText) reader.fail(join(field, 'prefix'), `must be written canonically as ${JSON.stringify(prefix)}`)
    if (prefixes.has(prefix)) reader.fail(join(field, 'prefix'), `prefix ${prefix} is already used by another service`)
    prefixes.add(prefix)
    const origins = reader.array(raw.origins, join(field, 'origins'), 1, 1024).map((origin, originIndex) => {
      const path = `${field}.origins[${originIndex}]`
      const id = reader.string(origin, path, NODE_ID, NODE_ID_HINT)
      if (!nodeIds.has(id)) reader.fail(path, `unknown node ${JSON.stringify(id)}`)
      return id
    })
    const duplicate = origins.find((origin, originIndex) => origins.indexOf(origin) !== originIndex)
    if (duplicate !== undefined) reader.fail(join(field, 'origins'), `lists ${JSON.stringify(duplicate)} twice`)
    return { name, prefix, origins, preference: reader.optionalNumber(raw.preference, join(field, 'preference'), 0, 1000, 100) }
  })
}

function parseProbe (reader: Reader, value: unknown, field: string): ProbeOverride | undefined {
  if (value === undefined) return undefined
  const raw = reader.object(value, field, ['intervalMs', 'timeoutMs', 'rise', 'fall', 'jitter'])
  const probe: ProbeOverride = {}
  if (raw.intervalMs !== undefined) probe.intervalMs = reader.number(raw.intervalMs, join(field, 'intervalMs'), 10, 600_000)
  if (raw.timeoutMs !== undefined) probe.timeoutMs = reader.number(raw.timeoutMs, join(field, 'timeoutMs'), 1, 600_000)
  if (raw.rise !== undefined) probe.rise = reader.number(raw.rise, join(field, 'rise'), 1, 100)
  if (raw.fall !== undefined) probe.fall = reader.number(raw.fall, join(field, 'fall'), 1, 100)
  if (raw.jitter !== undefined) probe.jitter = reader.number(raw.jitter, join(field, 'jitter'), 0, 0.99, false)
  if (probe.intervalMs !== undefined && probe.timeoutMs !== undefined && probe.timeoutMs > probe.intervalMs) {
    reader.fail(join(field, 'timeoutMs'), `must not exceed ${field}.intervalMs (${probe.intervalMs})`)
  }
  return probe
}

function parseProtocol (reader: Reader, value: unknown): ScenarioProtocol {
  if (value === undefined) return {}
  const raw = reader.object(value, 'protocol', ['serviceProbe', 'originProbe', 'announcementTtlMs', 'refreshIntervalMs', 'heartbeatIntervalMs', 'holdTimeMs'])
  const protocol: ScenarioProtocol = {}
  const serviceProbe = parseProbe(reader, raw.serviceProbe, 'protocol.serviceProbe')
  const originProbe = parseProbe(reader, raw.originProbe, 'protocol.originProbe')
  if (serviceProbe !== undefined) protocol.serviceProbe = serviceProbe
  if (originProbe !== undefined) protocol.originProbe = originProbe
  if (raw.announcementTtlMs !== undefined) protocol.announcementTtlMs = reader.number(raw.announcementTtlMs, 'protocol.announcementTtlMs', 1000, 3_600_000)
  if (raw.refreshIntervalMs !== undefined) protocol.refreshIntervalMs = reader.number(raw.refreshIntervalMs, 'protocol.refreshIntervalMs', 50, 600_000)
  if (raw.heartbeatIntervalMs !== undefined) protocol.heartbeatIntervalMs = reader.number(raw.heartbeatIntervalMs, 'protocol.heartbeatIntervalMs', 100, 600_000)
  if (raw.holdTimeMs !== undefined) protocol.holdTimeMs = reader.number(raw.holdTimeMs, 'protocol.holdTimeMs', 300, 3_600_000)
  return protocol
}

function parseExpect (reader: Reader, value: unknown): ScenarioExpect {
  const expect: ScenarioExpect = { ...defaultScenarioExpect, convergenceP99Ms: { ...defaultScenarioExpect.convergenceP99Ms } }
  if (value === undefined) return expect
  const raw = reader.object(value, 'expect', ['convergenceP99Ms', 'optimality', 'steadyAfterMs'])
  if (raw.convergenceP99Ms !== undefined) {
    const bounds = reader.object(raw.convergenceP99Ms, 'expect.convergenceP99Ms', FAILURE_EVENTS)
    for (const kind of FAILURE_EVENTS) {
      if (bounds[kind] !== undefined) expect.convergenceP99Ms[kind] = reader.number(bounds[kind], `expect.convergenceP99Ms.${kind}`, 0, 3_600_000)
    }
  }
  expect.optimality = reader.optionalNumber(raw.optimality, 'expect.optimality', 0, 1, expect.optimality, false)
  expect.steadyAfterMs = reader.optionalNumber(raw.steadyAfterMs, 'expect.steadyAfterMs', 0, 3_600_000, expect.steadyAfterMs)
  return expect
}

/**
 * A crashed node's old actors wind down on the clock before it can boot again (SimWorld.crashNode):
 * the node's drain is bounded at 3 × drainMs + 500 ms, 3.5 s by default.
 */
export const MIN_RESTART_AFTER_CRASH_MS = 5000

/** The world state the earlier events left: services down, and crashed nodes with their crash time. */
interface WorldState { down: Set<string>, crashed: Map<string, number> }

function parseTimeline (reader: Reader, value: unknown, durationMs: number, nodes: ScenarioNode[], services: ScenarioService[]): TimelineEvent[] {
  const nodeIds = new Set(nodes.map((node) => node.id))
  const state: WorldState = { down: new Set(), crashed: new Map() }
  let previousAt = 0
  return reader.array(value, 'timeline', 0, MAX_TIMELINE_EVENTS).map((item, index) => {
    const field = `timeline[${index}]`
    const raw = reader.object(item, field, ['at', 'event', 'node', 'service'], ['at', 'event', 'node'])
    const at = reader.number(raw.at, join(field, 'at'), 0, durationMs - 1)
    if (at < previousAt) reader.fail(join(field, 'at'), `must not be earlier than timeline[${index - 1}].at (${previousAt}), got ${at}`)
    previousAt = at
    const kind = reader.string(raw.event, join(field, 'event'))
    if (!(TIMELINE_EVENTS as readonly string[]).includes(kind)) reader.fail(join(field, 'event'), `must be one of ${TIMELINE_EVENTS.join(', ')}, got ${JSON.stringify(kind)}`)
    const node = reader.string(raw.node, join(field, 'node'), NODE_ID, NODE_ID_HINT)
    if (!nodeIds.has(node)) reader.fail(join(field, 'node'), `unknown node ${JSON.stringify(node)}`)
    const event: TimelineEvent = { at, event: kind as TimelineEventKind, node }
    if (event.event === 'serviceDown' || event.event === 'serviceUp') {
      if (raw.service === undefined) reader.fail(join(field, 'service'), `is required for ${event.event}`)
      event.service = reader.string(raw.service, join(field, 'service'), NAME, NAME_HINT)
      const service = services.find((candidate) => candidate.name === event.service)
      if (service === undefined) reader.fail(join(field, 'service'), `unknown service ${JSON.stringify(event.service)}`)
      if (!service.origins.includes(node)) reader.fail(join(field, 'node'), `${node} is not an origin of ${service.name}`)
    } else if (raw.service !== undefined) {
      reader.fail(join(field, 'service'), `not allowed for ${event.event}`)
    }
    const impossible = applyEvent(state, event)
    if (impossible !== undefined) reader.fail(join(field, 'event'), impossible)
    return event
  })
}

/** Why an event cannot happen in the state the earlier events left (undefined if it can); applies it. */
function applyEvent (state: WorldState, event: TimelineEvent): string | undefined {
  const key = `${event.node}/${event.service ?? ''}`
  switch (event.event) {
    case 'serviceDown':
      if (state.down.has(key)) return `${event.service} on ${event.node} is already down`
      state.down.add(key)
      return undefined
    case 'serviceUp':
      if (!state.down.has(key)) return `${event.service} on ${event.node} is not down`
      state.down.delete(key)
      return undefined
    case 'nodeCrash':
      if (state.crashed.has(event.node)) return `${event.node} has already crashed`
      state.crashed.set(event.node, event.at)
      return undefined
    case 'nodeRestart': {
      const crashedAt = state.crashed.get(event.node)
      if (crashedAt === undefined) return `${event.node} has not crashed`
      if (event.at - crashedAt < MIN_RESTART_AFTER_CRASH_MS) return `${event.node} crashed at ${crashedAt} and cannot restart before ${crashedAt + MIN_RESTART_AFTER_CRASH_MS} (its old actors wind down first)`
      state.crashed.delete(event.node)
      return undefined
    }
  }
}
