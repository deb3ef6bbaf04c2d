// Runs one scenario (simulations/scenario.ts) for one seed: builds a SimWorld of production
// NodeHosts placed by the scenario's coordinates (latency from simulations/latency.ts), replays the
// timeline on the virtual clock, and judges the run with the checkers (simulations/checkers.ts).
//
// Convergence is measured exactly, not by polling: every node's route changes arrive through
// ControlPlane.onRouteChange with their virtual timestamp, and the runner keeps, per prefix, the
// number of live nodes that still route to a failed origin (or have no route while a healthy
// origin exists). A failure event (serviceDown, nodeCrash) has converged for a prefix at the
// instant that count reaches zero. A failure undone (serviceUp, nodeRestart) before it converged
// counts as never converged.
import { SimWorld } from './world.ts'
import type { NodeHost } from '../src/runtime/node.ts'
import { defaultNodeTiming } from '../src/runtime/node.ts'
import type { ServiceConfig } from '../src/runtime/config.ts'
import type { RouteChange } from '../src/runtime/control-plane.ts'
import type { OverlayStats } from '../src/runtime/ports.ts'
import type { RouteEntry } from '../src/protocols/routes.ts'
import { oneWayLatencyMs, trueRttMs, type Coordinates, type LatencyModel } from './latency.ts'
import { FAILURE_EVENTS, type FailureEventKind, type Scenario, type ScenarioService, type TimelineEvent } from './scenario.ts'
import { Check, findRouteLoops, percentiles, tallyOptimality, type CheckResult, type Percentiles } from './checkers.ts'
import { createJsonlFileSink, type InspectionSink } from '../src/runtime/inspection.ts'
import { createFalseDeadSink, type FalseDeadSink } from './false-dead.ts'
import { SeriesRecorder, sampleIntervalMs, type RunSeries } from './time-series.ts'
import { FaultInjector, describeFault } from './faults.ts'
import { StateMeter, type StateChecks, type StateReport } from './state-checks.ts'
import { withRandomFaults } from './random-faults.ts'
import { regionLatency } from './latency.ts'
import { natReport, type NatReport } from './nat-report.ts'
import { DnsAccuracyMeter, dnsAccuracyCheck, summariseDns, type DnsAccuracyReport, type DnsSummary, type DnsWorldView } from './dns-accuracy.ts'

export interface RunOptions {
  /** Progress lines: `seed N` first, a summary, and `reproduce: …` when a check fails. */
  log?: (line: string) => void
  /** How the `reproduce:` line names the scenario file; default scenario.source. */
  file?: string
  /** Period of the loop checker's snapshots of every route, in simulated ms. Default 500. */
  loopCheckIntervalMs?: number
  /**
   * Fault injection for testing the checkers: called with the world after every timeline instant.
   * Production code is never touched; a test can, say, take a service down behind the runner's back.
   */
  inject?: (world: SimWorld, atMs: number) => void
  /** Collect the time series and map frames the HTML report plots (RunResult.series). */
  series?: boolean
  /**
   * Write the JSONL inspection trace here: exactly the lines RunResult.traceHash covers (up to the
   * end of the run, before the world is stopped), so sha256 of the file equals traceHash.
   */
  tracePath?: string
  /** Simulated progress, at every loop-check instant. */
  progress?: (simMs: number, durationMs: number) => void
}

export interface ConvergenceEventResult {
  at: number
  event: FailureEventKind
  node: string
  service?: string
  prefix: string
  /** null when the failure was undone, or the run ended, before it converged. */
  convergedMs: number | null
  /** Unconverged only: up to 20 live nodes still routing to a failed origin (or nowhere). */
  laggards?: string[]
}

export interface RunResult {
  scenario: string
  file: string
  seed: number
  nodes: number
  simSeconds: number
  wallSeconds: number
  traceHash: string
  convergence: Percentiles & { byType: Record<FailureEventKind, Percentiles>, events: ConvergenceEventResult[] }
  checks: Record<Exclude<CheckName, OptionalCheckName>, CheckResult> & Partial<Record<OptionalCheckName, CheckResult>>
  /** With protocol.state: acknowledged writes, convergence after the last fault, bound addresses. */
  state?: StateReport
  /** With scenario clients: their first GeoDNS answers against the oracle (dns-accuracy.ts). */
  dns?: DnsAccuracyReport
  optimality: { share: number | null, pairs: number, instants: number[] }
  gossip: { messagesPerNodePerSec: number, bytesPerNodePerSec: number, windowSeconds: number, note: string }
  /** Origin-probe verdicts `failed` for origins that were alive and reachable (simulations/false-dead.ts). */
  falseDead: number
  /** With nodes behind NAT: reachability and direct paths after hole punching (simulations/nat-report.ts). */
  nat?: NatReport
  /** Peak resident set of the whole process, sampled at every loop-check instant of this run. */
  memory: { peakRssMb: number }
  passed: boolean
  /** Only with RunOptions.series; never part of --json. */
  series?: RunSeries
}

export const CHECK_NAMES = ['routeLoops', 'failedOriginAfterConvergence', 'steadyStateOptimality', 'convergenceWithinTarget', 'leaseSafety', 'ackedWritesKept', 'stateConverged', 'originsReachable', 'dnsAccuracy'] as const
export type CheckName = typeof CHECK_NAMES[number]
/** Checks that run only with `protocol.state` on (state-checks.ts); absent from other runs' results. */
export const STATE_CHECK_NAMES = ['leaseSafety', 'ackedWritesKept', 'stateConverged'] as const satisfies readonly CheckName[]
/** Checks that run only when the scenario has clients (dns-accuracy.ts). */
export const CLIENT_CHECK_NAMES = ['dnsAccuracy'] as const satisfies readonly CheckName[]
/** Checks that run only in some scenarios: state (protocol.state), reachability (nodes behind NAT), DNS accuracy (clients). */
type OptionalCheckName = typeof STATE_CHECK_NAMES[number] | 'originsReachable' | typeof CLIENT_CHECK_NAMES[number]
/** The checks a run has results for, in CHECK_NAMES order. */
export function checkNamesOf (run: { checks: RunResult['checks'] }): CheckName[] {
  return CHECK_NAMES.filter((name) => run.checks[name] !== undefined)
}
/**
 * Safety: something bad happened (a loop, traffic to a dead origin). Liveness: something good did
 * not happen in time (convergence, optimality). `form-anycast sim` exits 1 and 3 for them.
 */
export const CHECK_KINDS: Record<CheckName, 'safety' | 'liveness'> = {
  routeLoops: 'safety',
  failedOriginAfterConvergence: 'safety',
  steadyStateOptimality: 'liveness',
  convergenceWithinTarget: 'liveness',
  leaseSafety: 'safety',
  ackedWritesKept: 'safety',
  stateConverged: 'liveness',
  originsReachable: 'liveness',
  dnsAccuracy: 'liveness'
}

interface Tracking {
  event: TimelineEvent & { event: FailureEventKind }
  prefix: string
  origin: string
  convergedAtMs: number | undefined
  /** Undone (restored) before it converged. */
  abandoned: boolean
  /** For an unconverged failure: the nodes still routing badly when it was undone or the run ended. */
  laggards?: string[]
}

/** The check that a service's simulated health check answers. */
function serviceCheck (node: string, service: ScenarioService): ServiceConfig['check'] {
  return { kind: 'http', url: `http://${node}.sim/${service.name}/health` }
}

/** The scenario's latency model, region-pair overrides included (the checkers judge by it too). */
function latencyModel (scenario: Scenario): LatencyModel {
  const { inflation, linkBaseMs, regions } = scenario.world
  return regions.length === 0 ? { inflation, linkBaseMs } : { inflation, linkBaseMs, regions }
}

function createWorld (scenario: Scenario, seed: number, sinks: InspectionSink[]): SimWorld {
  const where = new Map<string, Coordinates>(scenario.nodes.map((node) => [node.id, node]))
  const model = latencyModel(scenario)
  const { jitterFraction, jitterMs } = scenario.world
  const { protocol } = scenario
  const timing: Partial<typeof defaultNodeTiming> = {}
  if (protocol.serviceProbe !== undefined) timing.serviceProbe = { ...defaultNodeTiming.serviceProbe, ...protocol.serviceProbe }
  if (protocol.originProbe !== undefined) timing.originProbe = { ...defaultNodeTiming.originProbe, ...protocol.originProbe }
  if (protocol.announcementTtlMs !== undefined) timing.announcementTtlMs = protocol.announcementTtlMs
  if (protocol.refreshIntervalMs !== undefined) timing.refreshIntervalMs = protocol.refreshIntervalMs
  if (protocol.heartbeatBudgetPerSec !== undefined) timing.heartbeatBudgetPerSec = protocol.heartbeatBudgetPerSec
  if (protocol.directFallback !== undefined) timing.directFallback = protocol.directFallback
  if (protocol.originStandby !== undefined) timing.originStandby = protocol.originStandby
  return new SimWorld({
    seed,
    sinks,
    nodes: scenario.nodes.length,
    ids: scenario.nodes.map((node) => node.id),
    degree: scenario.degree,
    lossRate: scenario.world.lossRate,
    ...(jitterFraction > 0 || jitterMs > 0 ? { jitter: { fraction: jitterFraction, ms: jitterMs } } : {}),
    latency: (a, b) => oneWayLatencyMs(where.get(a)!, where.get(b)!, model),
    ...(model.regions?.some((entry) => entry.jitterMs !== undefined) === true ? { linkJitterMs: (a: string, b: string) => regionLatency(where.get(a)!, where.get(b)!, model)?.jitterMs ?? 0 } : {}),
    nat: (index) => scenario.nodes[index]!.nat === true,
    ...(scenario.nat === undefined ? {} : { holePunch: scenario.nat }),
    location: (index) => {
      const node = scenario.nodes[index]!
      return { lat: node.lat, lon: node.lon, ...(node.region === undefined ? {} : { region: node.region }) }
    },
    services: (_index, id) => scenario.services.filter((service) => service.origins.includes(id))
      .map((service) => ({ name: service.name, prefix: service.prefix, check: serviceCheck(id, service), preference: service.preference })),
    ...(protocol.heartbeatIntervalMs === undefined ? {} : { heartbeatIntervalMs: protocol.heartbeatIntervalMs }),
    ...(protocol.state === undefined ? {} : { state: protocol.state }),
    ...(protocol.holdTimeMs === undefined ? {} : { session: { holdTimeMs: protocol.holdTimeMs } }),
    timing
  })
}

/**
 * What the runner knows of the world from outside: each live node's chosen origin per prefix
 * (from route-change listeners), which origins are really serving, and the convergence of every
 * failure in flight.
 */
class Observer {
  readonly chosen = new Map<string, Map<string, string | undefined>>()
  readonly live = new Set<string>()
  readonly down = new Set<string>()
  /** Live nodes per prefix that route to a failed origin, or nowhere while a healthy origin exists. */
  private readonly bad = new Map<string, number>()
  readonly trackings: Tracking[] = []
  readonly failedOriginCheck = new Check()
  /** Told of every counted route change (the report's route changes over time). */
  onRouteChange: ((prefix: string) => void) | undefined

  constructor (readonly scenario: Scenario, private readonly world: SimWorld) {
    for (const service of scenario.services) this.chosen.set(service.prefix, new Map())
    for (const node of scenario.nodes) this.live.add(node.id)
    for (const [id, host] of world.hosts) this.watch(id, host)
    for (const service of scenario.services) this.recount(service)
  }

  /** Listen to a host's route changes; a replaced (crashed) host is ignored from then on. */
  watch (id: string, host: NodeHost): void {
    for (const chosen of this.chosen.values()) chosen.set(id, undefined)
    host.controlPlane.onRouteChange((change) => {
      // Timed by the shared clock: a node's own clock may be skewed (clockSkew faults).
      if (this.world.hosts.get(id) === host && this.live.has(id)) this.routeChanged(id, { ...change, atMs: this.world.clock.now() })
    })
  }

  healthyOrigins (service: ScenarioService): string[] {
    return service.origins.filter((origin) => this.live.has(origin) && !this.down.has(`${origin}/${service.name}`))
  }

  private isBad (service: ScenarioService, origin: string | undefined, healthy: readonly string[]): boolean {
    if (origin === undefined) return healthy.length > 0
    return service.origins.includes(origin) && !healthy.includes(origin)
  }

  private routeChanged (node: string, change: RouteChange): void {
    const service = this.scenario.services.find((candidate) => candidate.prefix === change.prefix)
    if (service === undefined) return
    this.onRouteChange?.(service.prefix)
    const chosen = this.chosen.get(service.prefix)!
    const before = chosen.get(node)
    chosen.set(node, change.to)
    const healthy = this.healthyOrigins(service)
    const delta = Number(this.isBad(service, change.to, healthy)) - Number(this.isBad(service, before, healthy))
    this.bad.set(service.prefix, (this.bad.get(service.prefix) ?? 0) + delta)
    if (change.to !== undefined && !healthy.includes(change.to) && this.isConvergedFailure(service.prefix, change.to)) {
      this.failedOriginCheck.violation(`t=${change.atMs} ${node} routes ${service.prefix} to ${change.to}, whose failure had converged`)
    }
    this.settle(service.prefix, change.atMs)
  }

  private isConvergedFailure (prefix: string, origin: string): boolean {
    return this.trackings.some((t) => t.prefix === prefix && t.origin === origin && t.convergedAtMs !== undefined && !t.abandoned && !this.isRestored(t))
  }

  private isRestored (tracking: Tracking): boolean {
    const service = this.scenario.services.find((candidate) => candidate.prefix === tracking.prefix)!
    return this.healthyOrigins(service).includes(tracking.origin)
  }

  /** Recount a prefix from scratch (after an event changed which origins or nodes count). */
  recount (service: ScenarioService): void {
    const healthy = this.healthyOrigins(service)
    let bad = 0
    for (const [node, origin] of this.chosen.get(service.prefix)!) {
      if (this.live.has(node) && this.isBad(service, origin, healthy)) bad++
    }
    this.bad.set(service.prefix, bad)
  }

  /** Live nodes that hold `prefix`'s convergence back now, with the origin they route to. */
  laggards (prefix: string): string[] {
    const service = this.scenario.services.find((candidate) => candidate.prefix === prefix)!
    const healthy = this.healthyOrigins(service)
    return [...this.chosen.get(prefix)!].filter(([node, origin]) => this.live.has(node) && this.isBad(service, origin, healthy))
      .map(([node, origin]) => `${node} → ${origin ?? 'no route'}`)
  }

  /** Mark every failure in flight on `prefix` converged when no live node is left routing badly. */
  settle (prefix: string, atMs: number): void {
    if ((this.bad.get(prefix) ?? 0) > 0) return
    for (const tracking of this.trackings) {
      if (tracking.prefix === prefix && tracking.convergedAtMs === undefined && !tracking.abandoned) tracking.convergedAtMs = atMs
    }
  }

  /** No failure in flight: every one tracked so far has converged or was undone. */
  everyFailureSettled (): boolean {
    return this.trackings.every((tracking) => tracking.convergedAtMs !== undefined || tracking.abandoned)
  }

  /** Start measuring a failure of `origin` on each prefix it newly stops serving. */
  track (event: TimelineEvent & { event: FailureEventKind }, services: ScenarioService[]): void {
    for (const service of services) this.trackings.push({ event, prefix: service.prefix, origin: event.node, convergedAtMs: undefined, abandoned: false })
  }

  /** A restore: failures of `origin` on `prefixes` that have not converged never will. */
  abandon (origin: string, prefixes: readonly string[]): void {
    for (const tracking of this.trackings) {
      if (tracking.origin === origin && prefixes.includes(tracking.prefix) && tracking.convergedAtMs === undefined && !tracking.abandoned) {
        tracking.abandoned = true
        tracking.laggards = this.laggards(tracking.prefix)
      }
    }
  }
}

/** Per-run measurement state around the observer: checks, samples, traffic counters. */
interface Meters {
  loops: Check
  optimality: Check
  optimalPairs: number
  pairs: number
  instants: number[]
  /** Traffic of nodes before their restart (SimNetwork.restart zeroes a node's counters). */
  restartedTraffic: OverlayStats
  windowStart: { atMs: number, totals: OverlayStats } | undefined
}

const zeroStats = (): OverlayStats => ({ messagesSent: 0, bytesSent: 0, messagesReceived: 0, bytesReceived: 0 })

function addStats (a: OverlayStats, b: OverlayStats): OverlayStats {
  return { messagesSent: a.messagesSent + b.messagesSent, bytesSent: a.bytesSent + b.bytesSent, messagesReceived: a.messagesReceived + b.messagesReceived, bytesReceived: a.bytesReceived + b.bytesReceived }
}

function trafficTotals (world: SimWorld, meters: Meters): OverlayStats {
  return addStats(world.network.totals(), meters.restartedTraffic)
}

/** Snapshot every live node's route for each prefix and look for loops. */
function checkLoops (world: SimWorld, observer: Observer, meters: Meters): void {
  const atMs = world.clock.now()
  const byPrefix = new Map<string, Map<string, RouteEntry | undefined>>()
  for (const service of observer.scenario.services) byPrefix.set(service.prefix, new Map())
  for (const id of observer.live) {
    const entries = world.hosts.get(id)!.controlPlane.routes()
    for (const [prefix, routes] of byPrefix) routes.set(id, entries.find((entry) => entry.prefix === prefix))
  }
  for (const [prefix, routes] of byPrefix) for (const loop of findRouteLoops(prefix, routes, atMs)) meters.loops.violation(loop)
}

/** A steady-state instant: how many (node, prefix) pairs route to an origin near the true best. */
function sampleOptimality (world: SimWorld, observer: Observer, meters: Meters, model: LatencyModel): void {
  const atMs = world.clock.now()
  const where = new Map<string, Coordinates>(observer.scenario.nodes.map((node) => [node.id, node]))
  meters.instants.push(atMs)
  const rtt = observer.scenario.nodes.some((node) => node.nat === true) ? natAwareRtt(world, where, model) : undefined
  for (const service of observer.scenario.services) {
    const chosen = new Map([...observer.chosen.get(service.prefix)!].filter(([node]) => observer.live.has(node)))
    const tally = tallyOptimality(service.prefix, { chosen, healthyOrigins: observer.healthyOrigins(service), where: (node) => where.get(node)!, model, ...(rtt === undefined ? {} : { rtt }) }, atMs)
    meters.pairs += tally.pairs
    meters.optimalPairs += tally.optimal
    for (const miss of tally.misses) meters.optimality.violation(miss)
  }
}

/**
 * With NAT, the best a node can do for an origin it cannot connect to directly (both behind NAT,
 * unpunchable) is a one-hop relay through one of its peers that can: the optimality oracle holds
 * it to that, not to a direct path the network does not allow.
 */
function natAwareRtt (world: SimWorld, where: ReadonlyMap<string, Coordinates>, model: LatencyModel): (node: string, origin: string) => number {
  const direct = (a: string, b: string): number => trueRttMs(where.get(a)!, where.get(b)!, model)
  return (node, origin) => {
    if (world.network.canConnectDirectly(node, origin)) return direct(node, origin)
    let best = Infinity
    for (const relay of world.network.overlay(node)!.connectedPeers()) {
      if (relay !== origin && world.network.canConnectDirectly(relay, origin)) best = Math.min(best, direct(node, relay) + direct(relay, origin))
    }
    return best
  }
}

async function applyEvent (world: SimWorld, observer: Observer, meters: Meters, event: TimelineEvent): Promise<void> {
  const { scenario } = observer
  const servedHere = scenario.services.filter((service) => service.origins.includes(event.node))
  switch (event.event) {
    case 'serviceDown': {
      const service = servedHere.find((candidate) => candidate.name === event.service)!
      const wasHealthy = observer.healthyOrigins(service).includes(event.node)
      world.downServices.add(`${event.node}/${service.name}`)
      observer.down.add(`${event.node}/${service.name}`)
      if (wasHealthy) observer.track({ ...event, event: 'serviceDown' }, [service])
      break
    }
    case 'serviceUp': {
      const service = servedHere.find((candidate) => candidate.name === event.service)!
      world.downServices.delete(`${event.node}/${service.name}`)
      observer.down.delete(`${event.node}/${service.name}`)
      observer.abandon(event.node, [service.prefix])
      break
    }
    case 'nodeCrash': {
      const failing = servedHere.filter((service) => observer.healthyOrigins(service).includes(event.node))
      world.crashNode(event.node)
      observer.live.delete(event.node)
      observer.track({ ...event, event: 'nodeCrash' }, failing)
      break
    }
    case 'nodeRestart': {
      // SimNetwork.restart zeroes the node's counters; keep what it sent in its first life.
      meters.restartedTraffic = addStats(meters.restartedTraffic, world.network.overlay(event.node)!.stats())
      observer.abandon(event.node, servedHere.map((service) => service.prefix))
      const host = await world.restartNode(event.node, { state: event.state ?? 'kept' })
      observer.live.add(event.node)
      observer.watch(event.node, host)
      break
    }
  }
  for (const service of scenario.services) {
    observer.recount(service)
    observer.settle(service.prefix, world.clock.now())
  }
}

/** Advance to `untilMs`, stopping at every loop-check instant on the way (where `atCheck` runs too). */
async function advance (world: SimWorld, observer: Observer, meters: Meters, untilMs: number, checkEveryMs: number, atCheck: (atMs: number) => void): Promise<void> {
  while (world.clock.now() < untilMs) {
    const nextCheck = (Math.floor(world.clock.now() / checkEveryMs) + 1) * checkEveryMs
    const stepTo = Math.min(untilMs, nextCheck)
    await world.run(stepTo - world.clock.now())
    if (world.clock.now() === nextCheck) {
      checkLoops(world, observer, meters)
      atCheck(nextCheck)
    }
  }
}

/** What a run observes besides the checks: false dead verdicts, memory, the trace file, series. */
interface Outputs {
  falseDead: FalseDeadSink
  peakRssBytes: number
  /** Writes the trace file while open; closed when traceHash is taken. */
  trace: { sink: InspectionSink, close: () => void } | undefined
  series: SeriesRecorder | undefined
}

/**
 * When an origin last came back or the partitions last changed, at or before `atMs`: a probe that
 * left before then may still time out after it, so a failed verdict so soon is not judged.
 */
export function settledSince (scenario: Scenario): (origin: string, atMs: number) => number {
  const partitions = scenario.faults.filter((fault) => fault.event === 'partition')
  const ids = new Set(partitions.map((fault) => fault.id))
  const changes = [
    ...partitions.flatMap((fault) => fault.durationMs === undefined ? [fault.at] : [fault.at, fault.at + fault.durationMs]),
    ...scenario.faults.flatMap((fault) => fault.event === 'faultEnd' && ids.has(fault.ends) ? [fault.at] : [])
  ].sort((a, b) => a - b)
  const restarts = scenario.timeline.filter((event) => event.event === 'nodeRestart')
  const lastAtOrBefore = (times: readonly number[], atMs: number): number => {
    let last = -Infinity
    for (const t of times) { if (t > atMs) break; last = t }
    return last
  }
  return (origin, atMs) => Math.max(lastAtOrBefore(changes, atMs), lastAtOrBefore(restarts.filter((event) => event.node === origin).map((event) => event.at), atMs))
}

function createOutputs (scenario: Scenario, options: RunOptions, checkEveryMs: number, observed: () => { observer: Observer, world: SimWorld } | undefined): Outputs {
  const settled = settledSince(scenario)
  // The longest a probe can be in flight: the slowest period's 0.9, plus the prober's 10 % (health-prober.ts).
  const { originProbe, originStandby } = { ...defaultNodeTiming, ...scenario.protocol }
  const graceMs = Math.max(originProbe.intervalMs ?? defaultNodeTiming.originProbe.intervalMs, originStandby.intervalMs)
  const falseDead = createFalseDeadSink({
    isObserved: (node) => observed()?.observer.live.has(node) ?? false,
    isAliveAndReachable: (node, origin) => {
      const { observer, world } = observed()!
      if (world.clock.now() - settled(origin, world.clock.now()) < graceMs) return false
      // Behind NAT, an origin the node cannot connect to directly (an unpunchable pair) is not reachable by its own probes.
      return observer.live.has(origin) && world.network.isReachable(node, origin) && world.network.isReachable(origin, node) && world.network.canConnectDirectly(node, origin)
    }
  })
  let trace: Outputs['trace']
  if (options.tracePath !== undefined) {
    const file = createJsonlFileSink(options.tracePath)
    let open = true
    trace = { sink: { write: (event) => { if (open) file.write(event) } }, close: () => { if (open) { open = false; file.close() } } }
  }
  const series = options.series === true
    ? new SeriesRecorder({
      intervalMs: sampleIntervalMs(scenario.durationMs, checkEveryMs),
      nodes: scenario.nodes.map((node) => ({ id: node.id, lat: node.lat, lon: node.lon })),
      origins: Object.fromEntries(scenario.services.map((service) => [service.prefix, [...service.origins]]))
    })
    : undefined
  return { falseDead, peakRssBytes: process.memoryUsage.rss(), trace, series }
}

/** At a loop-check instant: memory, progress, and a time-series sample when one is due. */
function observeInstant (world: SimWorld, observer: Observer, outputs: Outputs, options: RunOptions, atMs: number): void {
  outputs.peakRssBytes = Math.max(outputs.peakRssBytes, process.memoryUsage.rss())
  options.progress?.(atMs, observer.scenario.durationMs)
  const { series } = outputs
  if (series === undefined || atMs % series.intervalMs !== 0) return
  series.sample(atMs, [...observer.live].map((id) => ({ id, life: world.hosts.get(id)!, stats: world.network.overlay(id)!.stats() })))
}

/** A map frame of every node's chosen origin now, before the events `events` (none: the end). */
function mapFrame (observer: Observer, outputs: Outputs, atMs: number, events: TimelineEvent[]): void {
  outputs.series?.frame(atMs, events.map((event) => `${event.event} ${event.node}${event.service === undefined ? '' : ` ${event.service}`}`),
    (node) => observer.live.has(node), (prefix, node) => observer.chosen.get(prefix)?.get(node))
}

/** When the last fault or failure of the timeline is over: a partition's end, a restart. */
function lastFaultEndMs (scenario: Scenario): number {
  let end = 0
  for (const event of scenario.timeline) end = Math.max(end, event.at)
  for (const fault of scenario.faults) end = Math.max(end, fault.at + ('durationMs' in fault && fault.durationMs !== undefined ? fault.durationMs : 0))
  return end
}

/** Run `scenario` once with `seed`. Never throws for a failed check: the result says so. */
export async function runScenario (written: Scenario, seed: number, options: RunOptions = {}): Promise<RunResult> {
  const log = options.log ?? (() => {})
  const file = options.file ?? written.source
  log(`seed ${seed}`)
  const scenario = withRandomFaults(written, seed)
  const wallStart = performance.now()
  const model = latencyModel(scenario)
  const checkEveryMs = options.loopCheckIntervalMs ?? 500
  let observed: { observer: Observer, world: SimWorld } | undefined
  const outputs = createOutputs(scenario, options, checkEveryMs, () => observed)
  try {
    const world = createWorld(scenario, seed, [outputs.falseDead, ...(outputs.trace === undefined ? [] : [outputs.trace.sink])])
    const faults = new FaultInjector(world)
    const stateMeter = scenario.protocol.state === undefined ? undefined : new StateMeter(lastFaultEndMs(scenario), scenario.expect.stateConvergenceMs)
    const observer = new Observer(scenario, world)
    observed = { observer, world }
    observer.onRouteChange = (prefix) => outputs.series?.routeChanged(prefix)
    const meters: Meters = { loops: new Check(), optimality: new Check(), optimalPairs: 0, pairs: 0, instants: [], restartedTraffic: zeroStats(), windowStart: undefined }
    const { steadyAfterMs } = scenario.expect
    const dns = scenario.clients.length === 0 ? undefined : new DnsAccuracyMeter({ clients: scenario.clients, nodes: scenario.nodes, services: scenario.services, model })
    const dnsView = (atMs: number): DnsWorldView => ({ atMs, live: new Map([...observer.live].map((id) => [id, world.hosts.get(id)!])), healthyOrigins: (service) => observer.healthyOrigins(service) })
    await world.start()
    const instants = [...new Set([...scenario.timeline, ...scenario.faults].map((event) => event.at))].sort((a, b) => a - b)
    let lastEventMs = 0
    for (const atMs of [...instants, scenario.durationMs]) {
      await advance(world, observer, meters, atMs, checkEveryMs, (checkMs) => {
        observeInstant(world, observer, outputs, options, checkMs)
        stateMeter?.observe(world, observer.live, checkMs)
        dns?.atCheck(dnsView(checkMs), observer.everyFailureSettled())
      })
      // Traffic is measured from the end of warm-up: the first steady instant or the first event.
      meters.windowStart ??= { atMs, totals: trafficTotals(world, meters) }
      const steady = atMs - lastEventMs >= steadyAfterMs
      if (steady) sampleOptimality(world, observer, meters, model)
      if (steady || atMs === scenario.durationMs) dns?.sample(dnsView(atMs), steady ? 'steady' : 'end')
      const events = scenario.timeline.filter((candidate) => candidate.at === atMs)
      mapFrame(observer, outputs, atMs, atMs === scenario.durationMs ? [] : events)
      if (atMs === scenario.durationMs) break
      const tracked = observer.trackings.length
      for (const event of events) {
        log(`seed ${seed} t=${atMs / 1000} s: ${event.event} ${event.node}${event.service === undefined ? '' : ` ${event.service}`} (wall ${((performance.now() - wallStart) / 1000).toFixed(1)} s)`)
        await applyEvent(world, observer, meters, event)
      }
      if (observer.trackings.length > tracked) dns?.failureApplied(atMs)
      for (const fault of scenario.faults) if (fault.at === atMs) log(`seed ${seed} t=${atMs / 1000} s: ${describeFault(fault)}`)
      faults.applyAt(scenario.faults, atMs)
      options.inject?.(world, atMs)
      lastEventMs = atMs
    }
    checkLoops(world, observer, meters)
    const result = summarise(scenario, seed, file, world, observer, meters, outputs, (performance.now() - wallStart) / 1000, stateMeter?.result(world, observer.live), dns?.result())
    outputs.trace?.close()
    await world.stop()
    report(result, outputs.falseDead, log)
    return result
  } finally {
    outputs.trace?.close()
  }
}

function summarise (scenario: Scenario, seed: number, file: string, world: SimWorld, observer: Observer, meters: Meters, outputs: Outputs, wallSeconds: number, state?: { checks: StateChecks, report: StateReport }, dns?: DnsAccuracyReport): RunResult {
  const events: ConvergenceEventResult[] = observer.trackings.map((t) => ({
    at: t.event.at,
    event: t.event.event,
    node: t.event.node,
    ...(t.event.service === undefined ? {} : { service: t.event.service }),
    prefix: t.prefix,
    convergedMs: t.convergedAtMs === undefined || t.abandoned ? null : t.convergedAtMs - t.event.at,
    ...(t.convergedAtMs === undefined || t.abandoned ? { laggards: (t.laggards ?? observer.laggards(t.prefix)).slice(0, 20) } : {})
  }))
  const times = (kind?: FailureEventKind): number[] => events.filter((e) => kind === undefined || e.event === kind).map((e) => e.convergedMs ?? Infinity)
  const byType = Object.fromEntries(FAILURE_EVENTS.map((kind) => [kind, percentiles(times(kind))])) as Record<FailureEventKind, Percentiles>
  const convergence = new Check()
  for (const event of events) {
    const bound = scenario.expect.convergenceP99Ms[event.event]
    if (event.convergedMs === null) convergence.violation(`${event.event} of ${event.node} at t=${event.at} (${event.prefix}) never converged; still routing badly: ${event.laggards?.slice(0, 3).join(', ')}`)
    else if (event.convergedMs > bound) convergence.violation(`${event.event} of ${event.node} at t=${event.at} (${event.prefix}) took ${event.convergedMs} ms > ${bound} ms`)
  }
  const p99WithinBound = FAILURE_EVENTS.every((kind) => byType[kind].samples === 0 || (byType[kind].p99Ms !== null && byType[kind].p99Ms! <= scenario.expect.convergenceP99Ms[kind]))
  const share = meters.pairs === 0 ? null : meters.optimalPairs / meters.pairs
  if (meters.instants.length === 0) meters.optimality.violation(`no steady-state instant (none ${scenario.expect.steadyAfterMs} ms after an event)`)
  const windowStart = meters.windowStart ?? { atMs: 0, totals: zeroStats() }
  const traffic = trafficTotals(world, meters)
  const windowSeconds = (world.clock.now() - windowStart.atMs) / 1000
  const perNodePerSec = (value: number): number => windowSeconds <= 0 ? 0 : Math.round(value / scenario.nodes.length / windowSeconds * 10) / 10
  const nat = scenario.nodes.some((node) => node.nat === true) ? natReport(world, observer.live, healthyOrigins(scenario, observer)) : undefined
  const checks: RunResult['checks'] = {
    ...state?.checks,
    ...(nat === undefined ? {} : { originsReachable: reachabilityCheck(nat, scenario.expect.originReachability) }),
    routeLoops: meters.loops.result(),
    failedOriginAfterConvergence: observer.failedOriginCheck.result(),
    steadyStateOptimality: { ...meters.optimality.result(), passed: share !== null && share >= scenario.expect.optimality },
    convergenceWithinTarget: { ...convergence.result(), passed: p99WithinBound && events.every((e) => e.convergedMs !== null) },
    ...(dns === undefined ? {} : { dnsAccuracy: dnsAccuracyCheck(dns, scenario.expect.dnsAccuracy) })
  }
  return {
    scenario: scenario.name,
    file,
    seed,
    nodes: scenario.nodes.length,
    simSeconds: world.clock.now() / 1000,
    wallSeconds: Math.round(wallSeconds * 100) / 100,
    traceHash: world.traceHash(),
    convergence: { ...percentiles(times()), byType, events },
    checks,
    ...(state === undefined ? {} : { state: state.report }),
    ...(dns === undefined ? {} : { dns }),
    optimality: { share: share === null ? null : Math.round(share * 100_000) / 100_000, pairs: meters.pairs, instants: meters.instants },
    gossip: {
      messagesPerNodePerSec: perNodePerSec(traffic.messagesSent - windowStart.totals.messagesSent),
      bytesPerNodePerSec: perNodePerSec(traffic.bytesSent - windowStart.totals.bytesSent),
      windowSeconds,
      note: 'all overlay traffic sent (gossip RPCs, session and probe stream frames) after warm-up, per node'
    },
    falseDead: outputs.falseDead.count,
    ...(nat === undefined ? {} : { nat }),
    memory: { peakRssMb: Math.round(outputs.peakRssBytes / 1024 / 1024 * 10) / 10 },
    passed: checkNamesOf({ checks }).every((name) => checks[name]!.passed),
    ...(outputs.series === undefined ? {} : { series: outputs.series.result() })
  }
}

/** Every origin serving some service now (live, its service up). */
function healthyOrigins (scenario: Scenario, observer: Observer): string[] {
  return [...new Set(scenario.services.flatMap((service) => observer.healthyOrigins(service)))]
}

function reachabilityCheck (nat: NatReport, target: number): CheckResult {
  return {
    passed: nat.reachableShare === null || nat.reachableShare >= target,
    violations: nat.pairs - nat.reachable,
    examples: nat.unreachable.map((pair) => `${pair}: no route at the end of the run (neither direct nor through a relay)`)
  }
}

function formatMs (value: number | null): string { return value === null ? '∞' : `${value} ms` }

function report (result: RunResult, falseDead: FalseDeadSink, log: (line: string) => void): void {
  const types = FAILURE_EVENTS.filter((kind) => result.convergence.byType[kind].samples > 0)
    .map((kind) => `${kind} p99 ${formatMs(result.convergence.byType[kind].p99Ms)}`).join(', ')
  const share = result.optimality.share === null ? 'n/a' : `${(result.optimality.share * 100).toFixed(2)} %`
  log(`seed ${result.seed}: convergence ${types || 'no failure events'}; optimality ${share}; ${result.gossip.bytesPerNodePerSec} B/node/s; wall ${result.wallSeconds} s for ${result.simSeconds} s simulated`)
  if (result.nat !== undefined) log(`seed ${result.seed}: ${natLine(result.nat)}`)
  if (result.dns !== undefined) log(`seed ${result.seed}: DNS accuracy ${result.dns.accuracy === null ? 'n/a' : `${(result.dns.accuracy * 100).toFixed(2)} %`} of ${result.dns.samples} first answers (${result.dns.clients} clients)${result.dns.failedOriginAnswers.length === 0 ? '' : `; a failed origin answered for ${result.dns.failedOriginAnswers.map((lag) => lag.lastedMs === null ? '∞' : `${lag.lastedMs} ms`).join(', ')}`}${result.dns.misses[0] === undefined ? '' : `, e.g. ${result.dns.misses[0]}`}`)
  if (result.falseDead > 0) log(`seed ${result.seed}: ${result.falseDead} false dead verdict(s) of ${falseDead.failedVerdicts} failed, e.g. ${falseDead.examples[0]}`)
  const failed = checkNamesOf(result).filter((name) => !result.checks[name]!.passed)
  if (failed.length === 0) return
  for (const name of failed) {
    const check = result.checks[name]!
    log(`check ${name} FAILED: ${check.violations} violation(s)${check.examples.length > 0 ? `, e.g. ${check.examples[0]}` : ''}`)
  }
  log(`reproduce: form-anycast sim ${result.file} --seed ${result.seed}`)
}

/** One line on NAT: reachability, direct paths after hole punching, what the punches did. */
export function natLine (nat: NatReport): string {
  const pct = (value: number | null): string => value === null ? 'n/a' : `${(value * 100).toFixed(2)} %`
  const punch = nat.holePunch
  return `NAT: ${nat.natNodes} nodes behind NAT (${nat.symmetricNodes} symmetric); origins reachable ${pct(nat.reachableShare)} of ${nat.pairs} pairs ` +
    `(worst node ${pct(nat.originsReachedPerNode.min)}), ${nat.relayedOnly} relayed only, ${nat.heldDown} in relay hold-down; direct after hole punching ${pct(nat.directPathShare)} of ${nat.natPairs} NAT pairs; ` +
    `punches ${punch.punched} ok of ${punch.attempts} attempts, ${punch.reversals} reversals, ${punch.failedPairs} pairs left relayed`
}

export interface SeedsSummary {
  convergence: Percentiles & { byType: Record<FailureEventKind, Percentiles> }
  checksPassed: boolean
  failedSeeds: number[]
  optimality: { share: number | null, min: number | null }
  gossip: { messagesPerNodePerSec: number, bytesPerNodePerSec: number }
  wallSecondsPerRun: { mean: number, max: number }
  /** False dead verdicts over every run. */
  falseDead: number
  /** The largest peak RSS of any run. */
  memory: { peakRssMb: number }
  /** With NAT: the worst run's origin reachability, and direct paths after hole punching over every run's NAT pairs. */
  nat?: { reachableShareMin: number | null, directPathShare: number | null, natPairs: number, relayedOnly: number }
  /** With scenario clients: first answers pooled over every run, and the worst run's share. */
  dns?: DnsSummary
}

/** Pool the runs of several seeds: percentiles over every event of every run. */
export function summariseRuns (runs: readonly RunResult[]): SeedsSummary {
  const times = (kind?: FailureEventKind): number[] => runs.flatMap((run) => run.convergence.events)
    .filter((event) => kind === undefined || event.event === kind).map((event) => event.convergedMs ?? Infinity)
  const pairs = runs.reduce((sum, run) => sum + run.optimality.pairs, 0)
  const optimal = runs.reduce((sum, run) => sum + (run.optimality.share ?? 0) * run.optimality.pairs, 0)
  const shares = runs.map((run) => run.optimality.share).filter((share) => share !== null)
  const mean = (values: number[]): number => values.length === 0 ? 0 : Math.round(values.reduce((a, b) => a + b, 0) / values.length * 10) / 10
  return {
    convergence: { ...percentiles(times()), byType: Object.fromEntries(FAILURE_EVENTS.map((kind) => [kind, percentiles(times(kind))])) as Record<FailureEventKind, Percentiles> },
    checksPassed: runs.every((run) => run.passed),
    failedSeeds: runs.filter((run) => !run.passed).map((run) => run.seed),
    optimality: { share: pairs === 0 ? null : Math.round(optimal / pairs * 100_000) / 100_000, min: shares.length === 0 ? null : Math.min(...shares) },
    gossip: { messagesPerNodePerSec: mean(runs.map((run) => run.gossip.messagesPerNodePerSec)), bytesPerNodePerSec: mean(runs.map((run) => run.gossip.bytesPerNodePerSec)) },
    wallSecondsPerRun: { mean: mean(runs.map((run) => run.wallSeconds)), max: Math.max(0, ...runs.map((run) => run.wallSeconds)) },
    falseDead: runs.reduce((sum, run) => sum + run.falseDead, 0),
    memory: { peakRssMb: Math.max(0, ...runs.map((run) => run.memory.peakRssMb)) },
    ...summariseNat(runs),
    ...(runs.some((run) => run.dns !== undefined) ? { dns: summariseDns(runs.flatMap((run) => run.dns === undefined ? [] : [run.dns])) } : {})
  }
}

function summariseNat (runs: readonly RunResult[]): Pick<SeedsSummary, 'nat'> {
  const reports = runs.map((run) => run.nat).filter((nat) => nat !== undefined)
  if (reports.length === 0) return {}
  const shares = reports.map((nat) => nat.reachableShare).filter((share) => share !== null)
  const natPairs = reports.reduce((sum, nat) => sum + nat.natPairs, 0)
  const natDirect = reports.reduce((sum, nat) => sum + nat.natDirect, 0)
  return {
    nat: {
      reachableShareMin: shares.length === 0 ? null : Math.min(...shares),
      directPathShare: natPairs === 0 ? null : Math.round(natDirect / natPairs * 100_000) / 100_000,
      natPairs,
      relayedOnly: reports.reduce((sum, nat) => sum + nat.relayedOnly, 0)
    }
  }
}
