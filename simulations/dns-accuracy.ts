// DNS accuracy: does a client's first GeoDNS answer name the origin it should use? At sample
// instants the checker asks, for every scenario client and every service, the real node agent's zone
// (createNodeZone over zoneSourceFromNode, the same code `form-anycast node` serves) through the real
// answerer (dns-answer.ts: wire query in, wire response out), and compares the first A record with an
// oracle computed from the world's ground truth. Production code is unchanged: the simulator has no
// GeoIP database, so each client gets its own /24 and the query carries it as an EDNS Client Subnet
// (RFC 7871); a small GeoIp of the simulator's own maps that /24 to the client's coordinates.
//
// Which node answers (the client's resolver): the live node with the lowest true RTT from the client.
// A recursive resolver sends a zone's queries to the authoritative server it measured fastest (BIND's
// SRTT, Unbound's RTT band), so a client's answers come, in steady state, from the nameserver
// nearest to its resolver; the resolver is assumed to sit with the client. A seeded-random node would
// judge every node's view equally, but clients would never see most of those answers.
//
// The oracle: the healthy origin (service up, node live, per the runner's ground truth) with the
// lowest true RTT from the client in the latency model (latency.ts, region overrides included; the
// client is placed and modelled exactly as a node is). GeoDNS ranks by great-circle distance only
// (geo.ts; the simulated clients and nodes carry no country, so no country bonus applies), so where
// the model has region-pair overrides the distance-nearest origin may not be the RTT-nearest one:
// such a miss is GeoDNS's design, not stale state. `geoAccuracy` judges the same answers against the
// distance-nearest healthy origin, so a report shows which of the two a miss is. Partitions are not
// part of the oracle: clients sit outside the overlay, and a partition cuts overlay links only.
import dnsPacket from 'dns-packet'
import { createAnswerer, type Answerer } from '../src/protocols/dns-answer.ts'
import { decodeQuery } from '../src/protocols/dns-codec.ts'
import { createNodeZone, zoneSourceFromNode } from '../src/runtime/zone-view.ts'
import type { ZoneView } from '../src/protocols/dns-answer.ts'
import type { GeoIp, GeoIpLocation } from '../src/runtime/geoip.ts'
import type { NodeHost } from '../src/runtime/node.ts'
import { greatCircleKm, trueRttMs, type Coordinates, type LatencyModel } from './latency.ts'
import { MAX_EXAMPLES, percentiles, type CheckResult, type Percentiles } from './checkers.ts'
import type { ScenarioClient, ScenarioNode, ScenarioService } from './scenario.ts'

export const DNS_ZONE = 'anycast.form'
/** The resolver's own address: outside the overlay, so answers are the public ones. */
const RESOLVER_ADDRESS = '192.0.2.53'
/** Most clients the ECS numbering below can name (scenario.ts allows at most 100,000). */
export const MAX_DNS_CLIENTS = 200_000

/** Where in a run a sample was taken. */
export type DnsSamplePhase = 'steady' | 'converged' | 'end'
export const DNS_SAMPLE_PHASES: readonly DnsSamplePhase[] = ['steady', 'converged', 'end']

/** The ECS /24 of client `index`: 20.0.0.0/24, 20.0.1.0/24, … (a /24 per client, so no two share a place). */
export function clientSubnet (index: number): string {
  if (!Number.isInteger(index) || index < 0 || index >= MAX_DNS_CLIENTS) throw new RangeError(`client index must be an integer from 0 to ${MAX_DNS_CLIENTS - 1}, not ${index}`)
  return `${20 + Math.floor(index / 65_536)}.${Math.floor(index / 256) % 256}.${index % 256}.0`
}

/** The address DNS answers give for node `index` (198.18.0.0/15, the benchmarking range of RFC 2544). */
export function nodeAddress (index: number): string {
  if (!Number.isInteger(index) || index < 0 || index >= 131_072) throw new RangeError(`node index must be an integer from 0 to 131071, not ${index}`)
  return `198.${18 + Math.floor(index / 65_536)}.${Math.floor(index / 256) % 256}.${index % 256}`
}

/** The simulator's GeoIP: each client's /24 at its coordinates; anything else unknown. */
export function createClientGeoIp (clients: readonly ScenarioClient[]): GeoIp {
  const places = new Map<string, GeoIpLocation>(clients.map((client, index) => [clientSubnet(index), { lat: client.lat, lon: client.lon }]))
  return {
    path: 'sim:clients',
    available: true,
    databaseType: 'form-anycast-sim-clients',
    lookupErrors: 0,
    lookup (ip) {
      const octets = ip.split('.')
      if (octets.length !== 4) return undefined
      return places.get(`${octets[0]}.${octets[1]}.${octets[2]}.0`)
    }
  }
}

export interface FirstAnswerJudgement {
  /** The answer names the healthy origin with the lowest true RTT (ties: any of the lowest). */
  correct: boolean
  /** The answer names the healthy origin at the smallest great-circle distance. */
  geoCorrect: boolean
  /** Undefined when there is no healthy origin: nothing to judge. */
  bestOrigin: string | undefined
  bestRttMs: number | undefined
}

/** Relative slack for ties: two origins equally far are both right. */
const TIE = 1e-9

/** The oracle for one client and one service: pure, table-tested. */
export function judgeFirstAnswer (client: Coordinates, answered: string | undefined, healthyOrigins: readonly string[], where: (origin: string) => Coordinates, model: LatencyModel): FirstAnswerJudgement {
  if (healthyOrigins.length === 0) return { correct: false, geoCorrect: false, bestOrigin: undefined, bestRttMs: undefined }
  const rtt = new Map(healthyOrigins.map((origin) => [origin, trueRttMs(client, where(origin), model)]))
  const km = new Map(healthyOrigins.map((origin) => [origin, greatCircleKm(client, where(origin))]))
  let bestOrigin = healthyOrigins[0]!
  for (const origin of healthyOrigins) if (rtt.get(origin)! < rtt.get(bestOrigin)!) bestOrigin = origin
  const bestRttMs = rtt.get(bestOrigin)!
  const nearestKm = Math.min(...km.values())
  const isHealthy = answered !== undefined && rtt.has(answered)
  return {
    correct: isHealthy && rtt.get(answered)! <= bestRttMs * (1 + TIE),
    geoCorrect: isHealthy && km.get(answered)! <= nearestKm * (1 + TIE) + 1e-9,
    bestOrigin,
    bestRttMs
  }
}

/** What the meter reads of the run at a sample instant. */
export interface DnsWorldView {
  atMs: number
  /** Live nodes, each with its running host. */
  live: ReadonlyMap<string, NodeHost>
  /** Origins of the service really serving now. */
  healthyOrigins: (service: ScenarioService) => readonly string[]
}

/** What a zone is built from: the node, its running host, every node's address, the clients' GeoIP. */
export interface ZoneParts { node: string, host: NodeHost, addresses: ReadonlyMap<string, string>, geoip: GeoIp }
/** Builds the zone a node answers from. */
export type ZoneFactory = (parts: ZoneParts) => ZoneView

/** The node agent's own zone (node-dns.ts builds the same) over the node's live state. */
export const nodeZoneFactory: ZoneFactory = ({ node, host, addresses, geoip }) => createNodeZone({
  // The node's own address as `dns.address` gives it in production: without it a node never answers itself.
  source: zoneSourceFromNode(host, { ...(addresses.has(node) ? { address: addresses.get(node)! } : {}), addresses }),
  now: () => host.components.clock.now(),
  geoip,
  zone: DNS_ZONE,
  ttlS: 30,
  failoverTtlS: 5,
  failoverWindowMs: 30_000,
  maxAnswers: 3
})

export interface DnsAccuracyInput {
  clients: readonly ScenarioClient[]
  nodes: readonly ScenarioNode[]
  services: readonly ScenarioService[]
  model: LatencyModel
  /** Default nodeZoneFactory; tests swap in a broken zone to see the checker fail. */
  zoneFactory?: ZoneFactory
}

export interface DnsInstant { atMs: number, phase: DnsSamplePhase, samples: number, correct: number, accuracy: number | null }

export interface DnsAccuracyReport {
  /** Share of (client, service, instant) samples whose first answer was the oracle's origin. */
  accuracy: number | null
  samples: number
  correct: number
  /** The same answers judged against the distance-nearest healthy origin. */
  geoAccuracy: number | null
  byPhase: Record<DnsSamplePhase, { samples: number, accuracy: number | null }>
  instants: DnsInstant[]
  /**
   * Per failure event: how long after it some client's first answer still named an origin that was
   * not serving (checked at every 500 ms loop-check instant; null: until the run ended). Route
   * convergence (RunResult.convergence) is the same question asked of the route tables.
   */
  failedOriginAnswers: Array<{ atMs: number, lastedMs: number | null }>
  /** The first MAX_EXAMPLES wrong answers of each phase, described (steady ones first). */
  misses: string[]
  clients: number
  resolver: string
}

const round = (value: number): number => Math.round(value * 100_000) / 100_000
const share = (correct: number, samples: number): number | null => samples === 0 ? null : round(correct / samples)

/** Samples first answers at the instants the runner chooses and keeps the tallies. */
export class DnsAccuracyMeter {
  private readonly geoip: GeoIp
  private readonly addresses: Map<string, string>
  private readonly byAddress: Map<string, string>
  private readonly where: Map<string, Coordinates>
  /** One zone and answerer per host: a restarted node is a new process with a new zone. */
  private readonly zones = new WeakMap<NodeHost, Answerer>()
  private readonly queries: Array<Map<string, Uint8Array>>
  private readonly instants: DnsInstant[] = []
  private readonly misses: Record<DnsSamplePhase, string[]> = { steady: [], converged: [], end: [] }
  private geoCorrect = 0
  /** A failure was applied and has not converged yet: sample once it has. */
  private awaitingConvergence = false
  private readonly failedOriginAnswers: DnsAccuracyReport['failedOriginAnswers'] = []
  /** Failures after which some client may still be answered an origin that is not serving. */
  private readonly open: Array<DnsAccuracyReport['failedOriginAnswers'][number]> = []

  constructor (private readonly input: DnsAccuracyInput) {
    if (input.clients.length > MAX_DNS_CLIENTS) throw new RangeError(`at most ${MAX_DNS_CLIENTS} clients, got ${input.clients.length}`)
    this.geoip = createClientGeoIp(input.clients)
    this.addresses = new Map(input.nodes.map((node, index) => [node.id, nodeAddress(index)]))
    this.byAddress = new Map([...this.addresses].map(([id, address]) => [address, id]))
    this.where = new Map(input.nodes.map((node) => [node.id, node]))
    // Each client's query per service, encoded once: the bytes a resolver would send with ECS /24.
    this.queries = input.clients.map((_, index) => new Map(input.services.map((service) => [service.name, encodeQuery(`${service.name}.${DNS_ZONE}`, clientSubnet(index))])))
  }

  private answererFor (node: string, host: NodeHost): Answerer {
    let answerer = this.zones.get(host)
    if (answerer === undefined) {
      const factory = this.input.zoneFactory ?? nodeZoneFactory
      answerer = createAnswerer(factory({ node, host, addresses: this.addresses, geoip: this.geoip }))
      this.zones.set(host, answerer)
    }
    return answerer
  }

  /** The live node with the lowest true RTT from `client` (ties: the smaller id). */
  resolverOf (client: Coordinates, live: ReadonlyMap<string, NodeHost>): string | undefined {
    let best: string | undefined
    let bestRtt = Infinity
    for (const id of live.keys()) {
      const rtt = trueRttMs(client, this.where.get(id)!, this.input.model)
      if (rtt < bestRtt || (rtt === bestRtt && best !== undefined && id < best)) { best = id; bestRtt = rtt }
    }
    return best
  }

  /** A failure event was applied: the first check instant at which it has converged gets a sample. */
  failureApplied (atMs: number): void {
    this.awaitingConvergence = true
    const lag = { atMs, lastedMs: null }
    this.failedOriginAnswers.push(lag)
    this.open.push(lag)
  }

  /**
   * At a loop-check instant: while a failure is open, whether any client is still answered an origin
   * that is not serving; and a sample when every failure in flight has just converged.
   */
  atCheck (view: DnsWorldView, everyFailureSettled: boolean): void {
    if (this.open.length > 0 && !this.anyAnswerNotServing(view)) {
      for (const lag of this.open.splice(0)) lag.lastedMs = view.atMs - lag.atMs
    }
    if (!this.awaitingConvergence || !everyFailureSettled) return
    this.awaitingConvergence = false
    this.sample(view, 'converged')
  }

  /** Some client's first answer names an origin of the service that is not serving now. */
  private anyAnswerNotServing (view: DnsWorldView): boolean {
    const healthy = new Map(this.input.services.map((service) => [service.name, view.healthyOrigins(service)]))
    return this.input.clients.some((client, index) => {
      const resolver = this.resolverOf(client, view.live)
      if (resolver === undefined) return false
      const answerer = this.answererFor(resolver, view.live.get(resolver)!)
      return this.input.services.some((service) => {
        const origins = healthy.get(service.name)!
        if (origins.length === 0) return false
        const first = this.firstAnswer(answerer, this.queries[index]!.get(service.name)!)
        const answered = first === undefined ? undefined : this.byAddress.get(first)
        return answered !== undefined && !origins.includes(answered)
      })
    })
  }

  /** Ask every client's resolver for every service's first answer and judge it. */
  sample (view: DnsWorldView, phase: DnsSamplePhase): DnsInstant {
    const instant: DnsInstant = { atMs: view.atMs, phase, samples: 0, correct: 0, accuracy: null }
    const healthy = new Map(this.input.services.map((service) => [service.name, view.healthyOrigins(service)]))
    this.input.clients.forEach((client, index) => {
      const resolver = this.resolverOf(client, view.live)
      if (resolver === undefined) return
      const answerer = this.answererFor(resolver, view.live.get(resolver)!)
      for (const service of this.input.services) {
        const origins = healthy.get(service.name)!
        if (origins.length === 0) continue
        const first = this.firstAnswer(answerer, this.queries[index]!.get(service.name)!)
        const answered = first === undefined ? undefined : this.byAddress.get(first)
        const judged = judgeFirstAnswer(client, answered, origins, (origin) => this.where.get(origin)!, this.input.model)
        instant.samples++
        if (judged.correct) instant.correct++
        if (judged.geoCorrect) this.geoCorrect++
        if (!judged.correct && this.misses[phase].length < MAX_EXAMPLES) {
          const got = answered ?? (first === undefined ? 'no answer' : first)
          this.misses[phase].push(`t=${view.atMs} (${phase}) ${client.id} asked ${resolver} for ${service.name}: first answer ${got}, oracle ${judged.bestOrigin} (${judged.bestRttMs!.toFixed(1)} ms RTT)`)
        }
      }
    })
    instant.accuracy = share(instant.correct, instant.samples)
    this.instants.push(instant)
    return instant
  }

  /** The first A record's address of the real answerer's reply, or undefined (no answer). */
  private firstAnswer (answerer: Answerer, query: Uint8Array): string | undefined {
    const response = answerer.answer(decodeQuery(query), { address: RESOLVER_ADDRESS, family: 4, overlay: false }, 'udp')
    const decoded = dnsPacket.decode(Buffer.from(response.bytes))
    for (const record of decoded.answers ?? []) if (record.type === 'A') return record.data
    return undefined
  }

  result (): DnsAccuracyReport {
    const samples = this.instants.reduce((sum, instant) => sum + instant.samples, 0)
    const correct = this.instants.reduce((sum, instant) => sum + instant.correct, 0)
    const byPhase = Object.fromEntries(DNS_SAMPLE_PHASES.map((phase) => {
      const of = this.instants.filter((instant) => instant.phase === phase)
      const n = of.reduce((sum, instant) => sum + instant.samples, 0)
      return [phase, { samples: n, accuracy: share(of.reduce((sum, instant) => sum + instant.correct, 0), n) }]
    })) as DnsAccuracyReport['byPhase']
    return {
      accuracy: share(correct, samples),
      samples,
      correct,
      geoAccuracy: share(this.geoCorrect, samples),
      byPhase,
      instants: [...this.instants],
      failedOriginAnswers: this.failedOriginAnswers.map((lag) => ({ ...lag })),
      misses: DNS_SAMPLE_PHASES.flatMap((phase) => this.misses[phase]),
      clients: this.input.clients.length,
      resolver: 'the live node with the lowest true RTT from the client'
    }
  }
}

/** Least shares of right first answers per phase; a phase without a bound is reported, not judged. */
export interface DnsAccuracyBounds { steady: number, converged: number }

/**
 * The run's check: at steady state, and at the instants right after failures converged, the share
 * of right first answers reaches the scenario's bound for that phase. No steady sample at all fails.
 */
export function dnsAccuracyCheck (report: DnsAccuracyReport, bounds: DnsAccuracyBounds): CheckResult {
  const short: string[] = []
  for (const phase of ['steady', 'converged'] as const) {
    const { accuracy } = report.byPhase[phase]
    if (accuracy !== null && accuracy < bounds[phase]) short.push(`${phase} accuracy ${accuracy} < ${bounds[phase]}`)
  }
  if (report.byPhase.steady.samples === 0) short.push('no steady-state DNS sample (no steady instant with a live node and a healthy origin)')
  return { passed: short.length === 0, violations: report.samples - report.correct, examples: [...short, ...report.misses].slice(0, MAX_EXAMPLES) }
}

/** Several runs' reports pooled: every sample counts once. */
export function summariseDns (reports: readonly DnsAccuracyReport[]): DnsSummary {
  const samples = reports.reduce((sum, report) => sum + report.samples, 0)
  const correct = reports.reduce((sum, report) => sum + report.correct, 0)
  const shares = reports.map((report) => report.accuracy).filter((value) => value !== null)
  return { accuracy: share(correct, samples), samples, min: shares.length === 0 ? null : Math.min(...shares), failedOriginAnswers: percentiles(reports.flatMap((report) => report.failedOriginAnswers.map((lag) => lag.lastedMs ?? Infinity))) }
}

export interface DnsSummary {
  accuracy: number | null
  samples: number
  /** The worst run's accuracy. */
  min: number | null
  /** How long clients were still answered a failed origin, over every failure of every run (500 ms resolution). */
  failedOriginAnswers: Percentiles
}

/** An A query for `name` with an ECS option carrying `subnet`/24, as a resolver sends it. */
function encodeQuery (name: string, subnet: string): Uint8Array {
  return dnsPacket.encode({
    type: 'query',
    id: 1,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type: 'A', name, class: 'IN' }],
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [{ code: 8, family: 1, sourcePrefixLength: 24, scopePrefixLength: 0, ip: subnet }] }]
  })
}
