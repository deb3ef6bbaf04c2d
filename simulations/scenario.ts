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
//       "jitterFraction": 0,                       extra delay uniform in [0, fraction × latency + jitterMs)
//       "jitterMs": 0,
//       "lossRate": 0,                             gossip data-plane loss probability
//       "regions": [{ "between": ["eu", "ap"], "inflation": 2.5, "linkBaseMs": 5, "jitterMs": 3 }]
//     },                                           per region pair (either order; ["eu", "eu"] inside one)
//     "nodes": [{ "id": "fra-0", "lat": 50.1, "lon": 8.7, "region": "eu", "nat": false }, ...]
//       or
//     "generate": {                                nodes scattered around sites, by weight
//       "count": 1000, "spreadKm": 300, "seed": 1,
//       "sites": [{ "name": "fra", "lat": 50.11, "lon": 8.68, "region": "eu", "weight": 3 }, ...]
//     },                                           ids are "<site>-<k>"; "<site>-0" sits at the site itself
//       or, without "sites", from the bundled cities (simulations/data/cities.json, GeoNames CC BY 4.0):
//     "generate": {                                each node in a city drawn by population
//       "count": 1000, "spreadKm": 50, "seed": 1,
//       "regions": ["eu", "na"],                   optional: only cities of these regions (af ap eu me na oc sa)
//       "include": ["london", "tokyo"]             optional: cities that get a node whatever the draw
//     },                                           ids are "<city id>-<k>"; "<city>-0" sits at the city itself
//     "natShare": 0.3,                             optional: this share of the nodes that serve nothing sits
//                                                  behind NAT (dials out, cannot be dialled), picked with
//                                                  generate.seed; listed nodes may say "nat": true instead.
//                                                  No hole punching: NATed nodes never connect to each other
//       or
//     "nat": {                                     NAT with hole punching (src/runtime/sim-nat.ts)
//       "share": 0.6,                              of all nodes, picked with generate.seed as natShare is
//       "origins": true,                           optional: origins may sit behind NAT too (default false)
//       "symmetricShare": 0.25,                    optional: share of NATs that are symmetric (drawn from
//                                                  the run's seed); two symmetric NATs never punch
//       "punchSuccess": 0.9,                       optional: chance one DCUtR attempt succeeds
//       "attempts": 3                              optional: attempts per pair (DCUtR's 3)
//     },
//     "clients": [{ "id": "c1", "lat": 1.3, "lon": 103.8 }, ...]    optional: where clients sit
//       or   { "count": 500, "regions": ["eu"], "spreadKm": 30, "seed": 1 }   drawn by city population
//     "services": [{ "name": "api", "prefix": "10.42.255.1/32", "origins": ["fra-0", ...], "preference": 100 }],
//     "protocol": {                                optional overrides of the control-plane timing
//       "serviceProbe": { "intervalMs", "timeoutMs", "rise", "fall", "jitter" },
//       "originProbe":  { ... same ... },
//       "announcementTtlMs", "refreshIntervalMs", "heartbeatIntervalMs", "heartbeatBudgetPerSec", "holdTimeMs",
//       "directFallback": { "failures": 3, "windowMs": 300000, "holdDownMs": 300000 },
//       "originStandby": { "activePerPrefix": 2, "intervalMs": 5000 }   origins beyond the nearest usable
//                                                  ones per prefix are probed at this slower period
//     },
//     "timeline": [{ "at": 12000, "event": "serviceDown", "node": "fra-0", "service": "api" }, ...],
//                                                  serviceDown | serviceUp (the service's health check
//                                                  fails / passes again), nodeCrash (the machine dies,
//                                                  withdrawing nothing), nodeRestart (a fresh process,
//                                                  at least 5 s after its crash; "state": "kept" keeps
//                                                  its key, "wiped" gives it a new one), and the fault
//                                                  events of simulations/scenario-faults.ts (partition,
//                                                  loss, delay, reorder, clockSkew, cpuStall,
//                                                  serviceFlap); sorted by "at"
//     "faults": { "random": { ... } },             optional: faults drawn from the run's seed
//                                                  (simulations/scenario-faults.ts)
//     "expect": {                                  optional; the targets the checks hold a run to
//       "convergenceP99Ms": { "serviceDown": 2000, "nodeCrash": 3000 },
//       "optimality": 0.99,
//       "steadyAfterMs": 8000,                     an instant counts as steady this long after an event
//       "originReachability": 1,                   with NAT: share of (node, healthy origin) pairs with a
//                                                  route (direct or relayed) at the end of the run
//       "dnsAccuracy": { "steady": 0.95, "converged": 0 }   with clients: least shares of first GeoDNS
//     }                                            answers naming the oracle's origin, at steady instants
//                                                  and right after failures converged (dns-accuracy.ts)
//   }
//
// The timeline is replayed against the world's state while parsing, so an event that could not
// happen (a service taken down twice, a restart of a live node) is an error here, not a surprise
// in the middle of a run.
import { IpamConfigError, parseIpamConfig } from '../src/protocols/ipam.ts'
import { readJsonFile } from '../src/runtime/config.ts'
import { NAME, NAME_HINT, NODE_ID, NODE_ID_HINT, Reader, join } from './scenario-reader.ts'
import { parsePrefix } from '../src/protocols/cidr.ts'
import { createRandom } from '../src/runtime/random.ts'
import { DEFAULT_HOLE_PUNCH } from '../src/runtime/sim-nat.ts'
import { defaultDirectFallbackPolicy, type DirectFallbackPolicy } from '../src/protocols/direct-fallback.ts'
import { defaultOriginStandbyPolicy, type OriginStandbyPolicy } from '../src/protocols/probe-tiers.ts'
import { destinationPoint, DEFAULT_LINK_BASE_MS, DEFAULT_ROUTE_INFLATION, type RegionLatency } from './latency.ts'
import { CITY_REGIONS, citiesIn, createCitySampler, type City } from './cities.ts'
import {
  FAULT_EVENTS, faultEnds, parseFaultEvent, parseRandomFaults, type FaultContext, type FaultEvent, type FaultEventKind, type RandomFaults
} from './scenario-faults.ts'

export interface ScenarioNode {
  id: string
  lat: number
  lon: number
  region?: string
  /** Behind NAT: dials out, cannot be dialled. */
  nat?: boolean
}

/** Where a client sits (for the DNS accuracy checker): listed, or drawn by city population. */
export interface ScenarioClient { id: string, lat: number, lon: number, region?: string }

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
  /** nodeRestart only: 'kept' (default) keeps the node's key, 'wiped' gives it a new identity. */
  state?: 'kept' | 'wiped'
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
  /** Most heartbeats a node receives per second; the heartbeat period grows past it (membership.ts). */
  heartbeatBudgetPerSec?: number
  holdTimeMs?: number
  /** Formation's relay rule: direct-path failures in a window before an origin is held on relays. */
  directFallback?: DirectFallbackPolicy
  /** Origins probed more slowly than originProbe: all but `activePerPrefix` usable ones per prefix (probe-tiers.ts). */
  originStandby?: OriginStandbyPolicy
  /** Replicated state, IP leases and origin validation on every node (state-checks.ts checks them). */
  state?: { leaseMs?: number, antiEntropyIntervalMs?: number, ipam?: { overlayCidr?: string, anycastCidr?: string } }
}

/** NAT traversal in the simulated network (`nat`); absent for natShare's punch-less NAT. */
export interface ScenarioNat {
  symmetricShare: number
  punchSuccess: number
  attempts: number
}

export interface ScenarioWorld {
  inflation: number
  linkBaseMs: number
  jitterFraction: number
  jitterMs: number
  lossRate: number
  /** Per region pair overrides of the latency model. */
  regions: RegionLatency[]
}

export interface ScenarioExpect {
  convergenceP99Ms: Record<FailureEventKind, number>
  optimality: number
  steadyAfterMs: number
  /** With protocol.state: replicas' digests equal within this long after the last fault ends. */
  stateConvergenceMs: number
  /** With NAT: the share of (live node, healthy origin) pairs that must have a route at the end. */
  originReachability: number
  /** With clients: least shares of first GeoDNS answers naming the oracle's origin, per sample phase (dns-accuracy.ts). */
  dnsAccuracy: { steady: number, converged: number }
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
  /** Client locations; empty when the scenario names none. */
  clients: ScenarioClient[]
  services: ScenarioService[]
  /** Hole punching between NATed nodes (`nat`); undefined: none. */
  nat?: ScenarioNat
  protocol: ScenarioProtocol
  /** serviceDown/Up (serviceFlap expanded), nodeCrash/Restart, sorted by "at". */
  timeline: TimelineEvent[]
  /** Fault events and their ends (faultEnd), sorted by "at"; a faultEnd names its fault's id. */
  faults: FaultEvent[]
  /** Faults drawn from each run's seed (simulations/random-faults.ts). */
  randomFaults?: RandomFaults
  expect: ScenarioExpect
}

export const defaultScenarioExpect: ScenarioExpect = {
  convergenceP99Ms: { serviceDown: 2000, nodeCrash: 3000 },
  optimality: 0.99,
  steadyAfterMs: 8000,
  stateConvergenceMs: 10_000,
  originReachability: 1,
  dnsAccuracy: { steady: 0.95, converged: 0 }
}

/** Bounds that keep one run inside a machine's memory and a person's patience. */
export const MAX_NODES = 10_000
export const MAX_DURATION_MS = 3_600_000
export const MAX_TIMELINE_EVENTS = 1000
const MAX_SERVICES = 64
const MAX_SITES = 256
export const MAX_CLIENTS = 100_000
/** Most serviceDown/serviceUp pairs one serviceFlap may expand to. */
const MAX_FLAPS = 500

const SCENARIO_KEYS = ['name', 'description', 'durationMs', 'degree', 'world', 'nodes', 'generate', 'natShare', 'nat', 'clients', 'services', 'protocol', 'timeline', 'faults', 'expect'] as const

/** Validate a parsed JSON value as a scenario. `source` names the file in errors. */
export function parseScenario (value: unknown, source: string): Scenario {
  const reader = new Reader(source)
  const raw = reader.object(value, '', SCENARIO_KEYS, ['name', 'durationMs', 'services', 'timeline'])
  const durationMs = reader.number(raw.durationMs, 'durationMs', 1000, MAX_DURATION_MS)
  if (raw.nodes === undefined && raw.generate === undefined) reader.fail('nodes', 'is required (or "generate")')
  if (raw.nodes !== undefined && raw.generate !== undefined) reader.fail('generate', 'cannot be given together with "nodes"')
  const nodes = raw.nodes !== undefined ? parseNodes(reader, raw.nodes) : generateNodes(reader, raw.generate)
  const services = parseServices(reader, raw.services, new Set(nodes.map((node) => node.id)))
  if (raw.natShare !== undefined && raw.nat !== undefined) reader.fail('natShare', 'cannot be given together with "nat" (use nat.share)')
  if (raw.natShare !== undefined) placeBehindNat(reader, raw.natShare, 'natShare', nodes, services, raw.generate, false)
  const nat = raw.nat === undefined ? undefined : parseNat(reader, raw.nat, nodes, services, raw.generate)
  const expect = parseExpect(reader, raw.expect)
  const { timeline, faults } = parseTimeline(reader, raw.timeline, durationMs, nodes, services)
  const scenario: Scenario = {
    source,
    name: reader.string(raw.name, 'name', { pattern: NAME, patternHint: NAME_HINT }),
    durationMs,
    degree: reader.optionalNumber(raw.degree, 'degree', 2, 64, 8),
    world: parseWorld(reader, raw.world),
    nodes,
    clients: parseClients(reader, raw.clients),
    services,
    ...(nat === undefined ? {} : { nat }),
    protocol: parseProtocol(reader, raw.protocol),
    timeline,
    faults,
    expect
  }
  const randomFaults = parseRandomFaults(reader, raw.faults, durationMs, expect.steadyAfterMs, nodes.some((node) => node.region !== undefined))
  if (randomFaults !== undefined) scenario.randomFaults = randomFaults
  if (raw.description !== undefined) scenario.description = reader.string(raw.description, 'description', { maxLength: 2000 })
  if (nodes.every((node) => node.nat === true)) reader.fail(raw.natShare !== undefined ? 'natShare' : raw.nat !== undefined ? 'nat.share' : 'nodes', 'every node is behind NAT: nobody could accept a connection')
  if (scenario.degree >= nodes.length) reader.fail('degree', `must be below the number of nodes (${nodes.length}), got ${scenario.degree}`)
  return scenario
}

/** Read and parse a scenario file; ConfigError for a missing file, bad JSON or a bad scenario. */
export function loadScenario (path: string): Scenario {
  return parseScenario(readJsonFile(path, 'scenario'), path)
}

function parseWorld (reader: Reader, value: unknown): ScenarioWorld {
  if (value === undefined) return { inflation: DEFAULT_ROUTE_INFLATION, linkBaseMs: DEFAULT_LINK_BASE_MS, jitterFraction: 0, jitterMs: 0, lossRate: 0, regions: [] }
  const raw = reader.object(value, 'world', ['inflation', 'linkBaseMs', 'jitterFraction', 'jitterMs', 'lossRate', 'regions'])
  return {
    inflation: reader.optionalNumber(raw.inflation, 'world.inflation', 1, 10, DEFAULT_ROUTE_INFLATION, false),
    linkBaseMs: reader.optionalNumber(raw.linkBaseMs, 'world.linkBaseMs', 0, 1000, DEFAULT_LINK_BASE_MS, false),
    jitterFraction: reader.optionalNumber(raw.jitterFraction, 'world.jitterFraction', 0, 1, 0, false),
    jitterMs: reader.optionalNumber(raw.jitterMs, 'world.jitterMs', 0, 1000, 0, false),
    lossRate: reader.optionalNumber(raw.lossRate, 'world.lossRate', 0, 0.5, 0, false),
    regions: raw.regions === undefined ? [] : parseRegionLatencies(reader, raw.regions)
  }
}

function parseRegionLatencies (reader: Reader, value: unknown): RegionLatency[] {
  const pairs = new Set<string>()
  return reader.array(value, 'world.regions', 1, 64).map((item, index) => {
    const field = `world.regions[${index}]`
    const raw = reader.object(item, field, ['between', 'inflation', 'linkBaseMs', 'jitterMs'], ['between'])
    const ends = reader.array(raw.between, join(field, 'between'), 2, 2).map((region, end) => reader.string(region, `${field}.between[${end}]`, { pattern: NAME, patternHint: NAME_HINT }))
    const between: [string, string] = [ends[0]!, ends[1]!]
    const key = [...between].sort().join('\n')
    if (pairs.has(key)) reader.fail(join(field, 'between'), `${between.join(' – ')} is already set by an earlier entry`)
    pairs.add(key)
    if (raw.inflation === undefined && raw.linkBaseMs === undefined && raw.jitterMs === undefined) reader.fail(field, 'sets nothing: give "inflation", "linkBaseMs" or "jitterMs"')
    const entry: RegionLatency = { between }
    if (raw.inflation !== undefined) entry.inflation = reader.number(raw.inflation, join(field, 'inflation'), 1, 10, false)
    if (raw.linkBaseMs !== undefined) entry.linkBaseMs = reader.number(raw.linkBaseMs, join(field, 'linkBaseMs'), 0, 1000, false)
    if (raw.jitterMs !== undefined) entry.jitterMs = reader.number(raw.jitterMs, join(field, 'jitterMs'), 0, 1000, false)
    return entry
  })
}

function parseCoordinates (reader: Reader, raw: Record<string, unknown>, field: string): { lat: number, lon: number } {
  return { lat: reader.number(raw.lat, join(field, 'lat'), -90, 90, false), lon: reader.number(raw.lon, join(field, 'lon'), -180, 180, false) }
}

function parseNodes (reader: Reader, value: unknown): ScenarioNode[] {
  const ids = new Set<string>()
  return reader.array(value, 'nodes', 2, MAX_NODES).map((item, index) => {
    const field = `nodes[${index}]`
    const raw = reader.object(item, field, ['id', 'lat', 'lon', 'region', 'nat'], ['id', 'lat', 'lon'])
    const id = reader.string(raw.id, join(field, 'id'), { pattern: NODE_ID, patternHint: NODE_ID_HINT })
    if (ids.has(id)) reader.fail(join(field, 'id'), `duplicate node id ${JSON.stringify(id)}`)
    ids.add(id)
    const node: ScenarioNode = { id, ...parseCoordinates(reader, raw, field) }
    if (raw.region !== undefined) node.region = reader.string(raw.region, join(field, 'region'), { pattern: NAME, patternHint: NAME_HINT })
    if (reader.optionalBoolean(raw.nat, join(field, 'nat'), false)) node.nat = true
    return node
  })
}

interface Site { name: string, lat: number, lon: number, region?: string, weight: number }

function parseSites (reader: Reader, value: unknown): Site[] {
  const names = new Set<string>()
  return reader.array(value, 'generate.sites', 1, MAX_SITES).map((item, index) => {
    const field = `generate.sites[${index}]`
    const raw = reader.object(item, field, ['name', 'lat', 'lon', 'region', 'weight'], ['name', 'lat', 'lon'])
    const name = reader.string(raw.name, join(field, 'name'), { pattern: NAME, patternHint: NAME_HINT })
    if (names.has(name)) reader.fail(join(field, 'name'), `duplicate site ${JSON.stringify(name)}`)
    names.add(name)
    const site: Site = { name, ...parseCoordinates(reader, raw, field), weight: reader.optionalNumber(raw.weight, join(field, 'weight'), 0.001, 1e6, 1, false) }
    if (raw.region !== undefined) site.region = reader.string(raw.region, join(field, 'region'), { pattern: NAME, patternHint: NAME_HINT })
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
  const raw = reader.object(value, 'generate', ['count', 'spreadKm', 'seed', 'sites', 'regions', 'include'], ['count'])
  if (raw.sites === undefined) return generateFromCities(reader, raw)
  if (raw.regions !== undefined) reader.fail('generate.regions', 'draws from the bundled cities; it cannot be given together with "sites"')
  if (raw.include !== undefined) reader.fail('generate.include', 'names bundled cities; it cannot be given together with "sites"')
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

function parseRegions (reader: Reader, value: unknown, field: string): string[] | undefined {
  if (value === undefined) return undefined
  const regions = reader.array(value, field, 1, CITY_REGIONS.length).map((item, index) => {
    const region = reader.string(item, `${field}[${index}]`)
    if (!(CITY_REGIONS as readonly string[]).includes(region)) reader.fail(`${field}[${index}]`, `must be one of ${CITY_REGIONS.join(', ')}, got ${JSON.stringify(region)}`)
    return region
  })
  const twice = regions.find((region, index) => regions.indexOf(region) !== index)
  if (twice !== undefined) reader.fail(field, `lists ${JSON.stringify(twice)} twice`)
  return regions
}

/** A uniform point of the disc of radius spreadKm around `city` (the city itself when spreadKm is 0). */
function around (city: City, spreadKm: number, random: ReturnType<typeof createRandom>): { lat: number, lon: number } {
  const place = spreadKm === 0 ? city : destinationPoint(city, random.next() * 360, spreadKm * Math.sqrt(random.next()))
  return { lat: round(place.lat, 4), lon: round(place.lon, 4) }
}

/**
 * Nodes in the bundled cities: the `include`d cities first (one node each, at the city), then
 * each further node in a city drawn by population, scattered within spreadKm of it; the first node
 * of a city sits at the city. Like sites, placement depends only on the scenario.
 */
function generateFromCities (reader: Reader, raw: Record<string, unknown>): ScenarioNode[] {
  const regions = parseRegions(reader, raw.regions, 'generate.regions')
  const cities = citiesIn(regions)
  const count = reader.number(raw.count, 'generate.count', 2, MAX_NODES)
  const spreadKm = reader.optionalNumber(raw.spreadKm, 'generate.spreadKm', 0, 5000, 50, false)
  const random = createRandom(reader.optionalNumber(raw.seed, 'generate.seed', 0, 2 ** 31, 1)).fork('cities')
  const included = raw.include === undefined ? [] : reader.array(raw.include, 'generate.include', 1, count).map((item, index) => {
    const field = `generate.include[${index}]`
    const id = reader.string(item, field, { pattern: NAME, patternHint: NAME_HINT })
    const city = cities.find((candidate) => candidate.id === id)
    if (city === undefined) reader.fail(field, `no city ${JSON.stringify(id)} in the bundled cities${regions === undefined ? '' : ` of ${regions.join(', ')}`} (simulations/data/cities.json)`)
    return city
  })
  const draw = createCitySampler(cities)
  const perCity = new Map<string, number>()
  const nodes: ScenarioNode[] = []
  for (let index = 0; index < count; index++) {
    const city = index < included.length ? included[index]! : draw(random)
    const k = perCity.get(city.id) ?? 0
    perCity.set(city.id, k + 1)
    const place = k === 0 ? { lat: city.lat, lon: city.lon } : around(city, spreadKm, random)
    nodes.push({ id: `${city.id}-${k}`, ...place, region: city.region })
  }
  return nodes
}

/** `clients`: a list of places, or `{count, regions, spreadKm, seed}` drawn by city population. */
function parseClients (reader: Reader, value: unknown): ScenarioClient[] {
  if (value === undefined) return []
  if (Array.isArray(value)) {
    const ids = new Set<string>()
    return reader.array(value, 'clients', 1, MAX_CLIENTS).map((item, index) => {
      const field = `clients[${index}]`
      const raw = reader.object(item, field, ['id', 'lat', 'lon', 'region'], ['id', 'lat', 'lon'])
      const id = reader.string(raw.id, join(field, 'id'), { pattern: NODE_ID, patternHint: NODE_ID_HINT })
      if (ids.has(id)) reader.fail(join(field, 'id'), `duplicate client id ${JSON.stringify(id)}`)
      ids.add(id)
      const client: ScenarioClient = { id, ...parseCoordinates(reader, raw, field) }
      if (raw.region !== undefined) client.region = reader.string(raw.region, join(field, 'region'), { pattern: NAME, patternHint: NAME_HINT })
      return client
    })
  }
  const raw = reader.object(value, 'clients', ['count', 'regions', 'spreadKm', 'seed'], ['count'])
  const count = reader.number(raw.count, 'clients.count', 1, MAX_CLIENTS)
  const draw = createCitySampler(citiesIn(parseRegions(reader, raw.regions, 'clients.regions')))
  const spreadKm = reader.optionalNumber(raw.spreadKm, 'clients.spreadKm', 0, 5000, 30, false)
  const random = createRandom(reader.optionalNumber(raw.seed, 'clients.seed', 0, 2 ** 31, 1)).fork('clients')
  return Array.from({ length: count }, (_, index) => {
    const city = draw(random)
    return { id: `client-${index}`, ...around(city, spreadKm, random), region: city.region }
  })
}

/** `nat`: who sits behind NAT (as natShare, origins too if asked) and how hole punching behaves. */
function parseNat (reader: Reader, value: unknown, nodes: ScenarioNode[], services: ScenarioService[], generate: unknown): ScenarioNat {
  const raw = reader.object(value, 'nat', ['share', 'origins', 'symmetricShare', 'punchSuccess', 'attempts'], ['share'])
  const origins = reader.optionalBoolean(raw.origins, 'nat.origins', false)
  placeBehindNat(reader, raw.share, 'nat.share', nodes, services, generate, origins)
  return {
    symmetricShare: reader.optionalNumber(raw.symmetricShare, 'nat.symmetricShare', 0, 1, DEFAULT_HOLE_PUNCH.symmetricShare, false),
    punchSuccess: reader.optionalNumber(raw.punchSuccess, 'nat.punchSuccess', 0, 1, DEFAULT_HOLE_PUNCH.punchSuccess, false),
    attempts: reader.optionalNumber(raw.attempts, 'nat.attempts', 1, 10, DEFAULT_HOLE_PUNCH.attempts)
  }
}

/**
 * `share` of all nodes, chosen among the nodes that serve nothing (an origin is where clients
 * connect, so it must accept inbound connections) unless `origins` allows them too, with
 * generate.seed (1 for listed nodes).
 */
function placeBehindNat (reader: Reader, value: unknown, field: string, nodes: ScenarioNode[], services: ScenarioService[], generate: unknown, includeOrigins: boolean): void {
  const share = reader.number(value, field, 0, 0.95, false)
  const origins = new Set(includeOrigins ? [] : services.flatMap((service) => service.origins))
  const eligible = nodes.filter((node) => !origins.has(node.id) && node.nat !== true)
  const wanted = Math.round(share * nodes.length) - nodes.filter((node) => node.nat === true).length
  if (wanted > eligible.length) reader.fail(field, `${share} of ${nodes.length} nodes is ${Math.round(share * nodes.length)}, but only ${eligible.length} nodes ${includeOrigins ? 'are left' : 'serve nothing and'} may sit behind NAT`)
  const seed = typeof generate === 'object' && generate !== null && typeof (generate as { seed?: unknown }).seed === 'number' ? (generate as { seed: number }).seed : 1
  const random = createRandom(seed).fork('nat')
  // Partial Fisher–Yates over the eligible nodes: the first `wanted` go behind NAT.
  for (let i = 0; i < wanted; i++) {
    const j = i + random.int(eligible.length - i)
    const picked = eligible[j]!
    eligible[j] = eligible[i]!
    eligible[i] = picked
    picked.nat = true
  }
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
    const name = reader.string(raw.name, join(field, 'name'), { pattern: NAME, patternHint: NAME_HINT })
    if (names.has(name)) reader.fail(join(field, 'name'), `duplicate service ${JSON.stringify(name)}`)
    names.add(name)
    const prefixText = reader.string(raw.prefix, join(field, 'prefix'), { maxLength: 64 })
    let prefix: string
    try { prefix = parsePrefix(prefixText).text } catch (error) { return reader.fail(join(field, 'prefix'), (error as Error).message) }
    if (prefix !== prefixText) reader.fail(join(field, 'prefix'), `must be written canonically as ${JSON.stringify(prefix)}`)
    if (prefixes.has(prefix)) reader.fail(join(field, 'prefix'), `prefix ${prefix} is already used by another service`)
    prefixes.add(prefix)
    const origins = reader.array(raw.origins, join(field, 'origins'), 1, 1024).map((origin, originIndex) => {
      const path = `${field}.origins[${originIndex}]`
      const id = reader.string(origin, path, { pattern: NODE_ID, patternHint: NODE_ID_HINT })
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
  const raw = reader.object(value, 'protocol', ['serviceProbe', 'originProbe', 'announcementTtlMs', 'refreshIntervalMs', 'heartbeatIntervalMs', 'heartbeatBudgetPerSec', 'holdTimeMs', 'state', 'directFallback', 'originStandby'])
  const protocol: ScenarioProtocol = {}
  const serviceProbe = parseProbe(reader, raw.serviceProbe, 'protocol.serviceProbe')
  const originProbe = parseProbe(reader, raw.originProbe, 'protocol.originProbe')
  if (serviceProbe !== undefined) protocol.serviceProbe = serviceProbe
  if (originProbe !== undefined) protocol.originProbe = originProbe
  if (raw.announcementTtlMs !== undefined) protocol.announcementTtlMs = reader.number(raw.announcementTtlMs, 'protocol.announcementTtlMs', 1000, 3_600_000)
  if (raw.refreshIntervalMs !== undefined) protocol.refreshIntervalMs = reader.number(raw.refreshIntervalMs, 'protocol.refreshIntervalMs', 50, 600_000)
  if (raw.heartbeatIntervalMs !== undefined) protocol.heartbeatIntervalMs = reader.number(raw.heartbeatIntervalMs, 'protocol.heartbeatIntervalMs', 100, 600_000)
  if (raw.heartbeatBudgetPerSec !== undefined) protocol.heartbeatBudgetPerSec = reader.number(raw.heartbeatBudgetPerSec, 'protocol.heartbeatBudgetPerSec', 1, 100_000)
  if (raw.holdTimeMs !== undefined) protocol.holdTimeMs = reader.number(raw.holdTimeMs, 'protocol.holdTimeMs', 300, 3_600_000)
  if (raw.directFallback !== undefined) {
    const fallback = reader.object(raw.directFallback, 'protocol.directFallback', ['failures', 'windowMs', 'holdDownMs'])
    protocol.directFallback = {
      failures: reader.optionalNumber(fallback.failures, 'protocol.directFallback.failures', 1, 100, defaultDirectFallbackPolicy.failures),
      windowMs: reader.optionalNumber(fallback.windowMs, 'protocol.directFallback.windowMs', 0, 86_400_000, defaultDirectFallbackPolicy.windowMs),
      holdDownMs: reader.optionalNumber(fallback.holdDownMs, 'protocol.directFallback.holdDownMs', 0, 86_400_000, defaultDirectFallbackPolicy.holdDownMs)
    }
  }
  if (raw.originStandby !== undefined) {
    const standby = reader.object(raw.originStandby, 'protocol.originStandby', ['activePerPrefix', 'intervalMs'])
    protocol.originStandby = {
      activePerPrefix: reader.optionalNumber(standby.activePerPrefix, 'protocol.originStandby.activePerPrefix', 1, 1000, defaultOriginStandbyPolicy.activePerPrefix),
      intervalMs: reader.optionalNumber(standby.intervalMs, 'protocol.originStandby.intervalMs', 50, 600_000, defaultOriginStandbyPolicy.intervalMs)
    }
  }
  if (raw.state !== undefined) {
    const state = reader.object(raw.state, 'protocol.state', ['leaseMs', 'antiEntropyIntervalMs', 'overlayCidr', 'anycastCidr'])
    protocol.state = {}
    if (state.overlayCidr !== undefined || state.anycastCidr !== undefined) {
      const ipam: { overlayCidr?: string, anycastCidr?: string } = {}
      if (state.overlayCidr !== undefined) ipam.overlayCidr = reader.string(state.overlayCidr, 'protocol.state.overlayCidr')
      if (state.anycastCidr !== undefined) ipam.anycastCidr = reader.string(state.anycastCidr, 'protocol.state.anycastCidr')
      try { parseIpamConfig(ipam) } catch (error) {
        if (error instanceof IpamConfigError) reader.fail(`protocol.state.${error.field}`, error.reason)
        throw error
      }
      protocol.state.ipam = ipam
    }
    if (state.leaseMs !== undefined) protocol.state.leaseMs = reader.number(state.leaseMs, 'protocol.state.leaseMs', 2000, 86_400_000)
    if (state.antiEntropyIntervalMs !== undefined) protocol.state.antiEntropyIntervalMs = reader.number(state.antiEntropyIntervalMs, 'protocol.state.antiEntropyIntervalMs', 100, 600_000)
  }
  return protocol
}

function parseExpect (reader: Reader, value: unknown): ScenarioExpect {
  const expect: ScenarioExpect = { ...defaultScenarioExpect, convergenceP99Ms: { ...defaultScenarioExpect.convergenceP99Ms }, dnsAccuracy: { ...defaultScenarioExpect.dnsAccuracy } }
  if (value === undefined) return expect
  const raw = reader.object(value, 'expect', ['convergenceP99Ms', 'optimality', 'steadyAfterMs', 'stateConvergenceMs', 'originReachability', 'dnsAccuracy'])
  if (raw.convergenceP99Ms !== undefined) {
    const bounds = reader.object(raw.convergenceP99Ms, 'expect.convergenceP99Ms', FAILURE_EVENTS)
    for (const kind of FAILURE_EVENTS) {
      if (bounds[kind] !== undefined) expect.convergenceP99Ms[kind] = reader.number(bounds[kind], `expect.convergenceP99Ms.${kind}`, 0, 3_600_000)
    }
  }
  expect.optimality = reader.optionalNumber(raw.optimality, 'expect.optimality', 0, 1, expect.optimality, false)
  expect.steadyAfterMs = reader.optionalNumber(raw.steadyAfterMs, 'expect.steadyAfterMs', 0, 3_600_000, expect.steadyAfterMs)
  expect.stateConvergenceMs = reader.optionalNumber(raw.stateConvergenceMs, 'expect.stateConvergenceMs', 0, 3_600_000, expect.stateConvergenceMs)
  expect.originReachability = reader.optionalNumber(raw.originReachability, 'expect.originReachability', 0, 1, expect.originReachability, false)
  if (raw.dnsAccuracy !== undefined) {
    const bounds = reader.object(raw.dnsAccuracy, 'expect.dnsAccuracy', ['steady', 'converged'])
    expect.dnsAccuracy.steady = reader.optionalNumber(bounds.steady, 'expect.dnsAccuracy.steady', 0, 1, expect.dnsAccuracy.steady, false)
    expect.dnsAccuracy.converged = reader.optionalNumber(bounds.converged, 'expect.dnsAccuracy.converged', 0, 1, expect.dnsAccuracy.converged, false)
  }
  return expect
}

/**
 * A crashed node's old actors wind down on the clock before it can boot again (SimWorld.crashNode):
 * the node's drain is bounded at 3 × drainMs + 500 ms, 3.5 s by default.
 */
export const MIN_RESTART_AFTER_CRASH_MS = 5000

/** The world state the earlier events left: services down, and crashed nodes with their crash time. */
interface WorldState { down: Set<string>, crashed: Map<string, number> }

/** Keys any timeline item may have; each kind then allows only its own. */
const TIMELINE_KEYS = ['at', 'event', 'node', 'nodes', 'service', 'state', 'periodMs', 'count', 'downMs', 'between', 'oneWay', 'durationMs', 'rate', 'extraMs', 'jitterMs', 'windowMs', 'offsetMs'] as const
const TIMELINE_KINDS = [...TIMELINE_EVENTS, 'serviceFlap', ...FAULT_EVENTS] as const

/** A core event and the timeline item it came from (a serviceFlap yields several). */
interface Placed { event: TimelineEvent, field: string, note: string }

export function regionsOf (nodes: readonly ScenarioNode[]): Map<string, string[]> {
  const regions = new Map<string, string[]>()
  for (const node of nodes) {
    if (node.region === undefined) continue
    const members = regions.get(node.region)
    if (members === undefined) regions.set(node.region, [node.id])
    else members.push(node.id)
  }
  return regions
}

function parseTimeline (reader: Reader, value: unknown, durationMs: number, nodes: ScenarioNode[], services: ScenarioService[]): { timeline: TimelineEvent[], faults: FaultEvent[] } {
  const nodeIds = new Set(nodes.map((node) => node.id))
  const context: FaultContext = { durationMs, nodeIds, regions: regionsOf(nodes) }
  const placed: Placed[] = []
  const faults: FaultEvent[] = []
  let previousAt = 0
  reader.array(value, 'timeline', 0, MAX_TIMELINE_EVENTS).forEach((item, index) => {
    const field = `timeline[${index}]`
    const raw = reader.object(item, field, TIMELINE_KEYS, ['at', 'event'])
    const at = reader.number(raw.at, join(field, 'at'), 0, durationMs - 1)
    if (at < previousAt) reader.fail(join(field, 'at'), `must not be earlier than timeline[${index - 1}].at (${previousAt}), got ${at}`)
    previousAt = at
    const kind = reader.string(raw.event, join(field, 'event'))
    if (!(TIMELINE_KINDS as readonly string[]).includes(kind)) reader.fail(join(field, 'event'), `must be one of ${TIMELINE_KINDS.join(', ')}, got ${JSON.stringify(kind)}`)
    if ((FAULT_EVENTS as readonly string[]).includes(kind)) {
      faults.push(parseFaultEvent(reader, item, field, kind as FaultEventKind, at, faults.length, context))
    } else if (kind === 'serviceFlap') {
      placed.push(...parseFlap(reader, raw, field, at, durationMs, nodeIds, services))
    } else {
      placed.push({ event: parseCoreEvent(reader, raw, field, at, kind as TimelineEventKind, nodeIds, services), field, note: '' })
    }
  })
  // Flaps interleave with later items: replay every core event in time order (stable).
  placed.sort((a, b) => a.event.at - b.event.at)
  const state: WorldState = { down: new Set(), crashed: new Map() }
  for (const { event, field, note } of placed) {
    const impossible = applyEvent(state, event)
    if (impossible !== undefined) reader.fail(join(field, 'event'), impossible + note)
  }
  const withEnds = [...faults, ...faultEnds(faults, faults.length)].sort((a, b) => a.at - b.at)
  return { timeline: placed.map(({ event }) => event), faults: withEnds }
}

function parseCoreEvent (reader: Reader, raw: Record<string, unknown>, field: string, at: number, kind: TimelineEventKind, nodeIds: ReadonlySet<string>, services: ScenarioService[]): TimelineEvent {
  reader.object(raw, field, ['at', 'event', 'node', 'service', 'state'], ['node'])
  const node = readNode(reader, raw.node, join(field, 'node'), nodeIds)
  const event: TimelineEvent = { at, event: kind, node }
  if (event.event === 'serviceDown' || event.event === 'serviceUp') {
    event.service = readOriginService(reader, raw, field, event.event, node, services).name
  } else if (raw.service !== undefined) {
    reader.fail(join(field, 'service'), `not allowed for ${event.event}`)
  }
  if (raw.state !== undefined) {
    if (event.event !== 'nodeRestart') reader.fail(join(field, 'state'), `not allowed for ${event.event}`)
    if (raw.state !== 'kept' && raw.state !== 'wiped') reader.fail(join(field, 'state'), `must be "kept" or "wiped", got ${JSON.stringify(raw.state)}`)
    event.state = raw.state
  }
  return event
}

function readNode (reader: Reader, value: unknown, field: string, nodeIds: ReadonlySet<string>): string {
  const node = reader.string(value, field, { pattern: NODE_ID, patternHint: NODE_ID_HINT })
  if (!nodeIds.has(node)) reader.fail(field, `unknown node ${JSON.stringify(node)}`)
  return node
}

function readOriginService (reader: Reader, raw: Record<string, unknown>, field: string, kind: string, node: string, services: ScenarioService[]): ScenarioService {
  if (raw.service === undefined) reader.fail(join(field, 'service'), `is required for ${kind}`)
  const name = reader.string(raw.service, join(field, 'service'), { pattern: NAME, patternHint: NAME_HINT })
  const service = services.find((candidate) => candidate.name === name)
  if (service === undefined) reader.fail(join(field, 'service'), `unknown service ${JSON.stringify(name)}`)
  if (!service.origins.includes(node)) reader.fail(join(field, 'node'), `${node} is not an origin of ${service.name}`)
  return service
}

/** serviceFlap: `count` cycles of periodMs, each down for downMs (default half the period) then up. */
function parseFlap (reader: Reader, raw: Record<string, unknown>, field: string, at: number, durationMs: number, nodeIds: ReadonlySet<string>, services: ScenarioService[]): Placed[] {
  reader.object(raw, field, ['at', 'event', 'node', 'service', 'periodMs', 'count', 'downMs'], ['node', 'periodMs', 'count'])
  const node = readNode(reader, raw.node, join(field, 'node'), nodeIds)
  const service = readOriginService(reader, raw, field, 'serviceFlap', node, services)
  const periodMs = reader.number(raw.periodMs, join(field, 'periodMs'), 2, durationMs)
  const count = reader.number(raw.count, join(field, 'count'), 1, MAX_FLAPS)
  const downMs = reader.optionalNumber(raw.downMs, join(field, 'downMs'), 1, periodMs - 1, Math.floor(periodMs / 2))
  const lastUpMs = at + (count - 1) * periodMs + downMs
  if (lastUpMs >= durationMs) reader.fail(join(field, 'count'), `${count} flaps of ${periodMs} ms end at ${lastUpMs}, past the run (durationMs ${durationMs})`)
  const events: Placed[] = []
  for (let k = 0; k < count; k++) {
    const downAt = at + k * periodMs
    events.push({ event: { at: downAt, event: 'serviceDown', node, service: service.name }, field, note: ` (serviceFlap: serviceDown at ${downAt})` })
    events.push({ event: { at: downAt + downMs, event: 'serviceUp', node, service: service.name }, field, note: ` (serviceFlap: serviceUp at ${downAt + downMs})` })
  }
  return events
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
