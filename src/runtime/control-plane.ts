// The anycast control plane of one node. Services served here are probed and their prefixes
// announced (signed, sequenced) while healthy; announcements from every origin arrive by gossip and,
// in full, over each newly established peer session; every origin is probed for reachability and
// RTT; neighbours exchange what they reach so an origin we cannot reach can still be used through a
// one-hop relay. The route table picks the best origin per prefix (src/protocols/best-path.ts).
import { createActor, type Actor } from 'xstate'
import { healthProberMachine, type HealthProberInput, type HealthProberPolicy } from '../actors/health-prober.ts'
import { prefixAnnouncerMachine, defaultPrefixAnnouncerPolicy } from '../actors/prefix-announcer.ts'
import type { SessionListener } from '../actors/peer-session.ts'
import { decodeUpdate, encodeUpdate, packUpdates, signAnnouncement, verifyAnnouncement, type UpdateMessage } from '../protocols/announcement-codec.ts'
import { RouteTable } from '../protocols/route-table.ts'
import { connectionLoad, isOverloaded } from '../protocols/origin-load.ts'
import { DirectFallback, defaultDirectFallbackPolicy, type DirectFallbackPolicy } from '../protocols/direct-fallback.ts'
import { activeOrigins, defaultOriginStandbyPolicy, type OriginStandbyPolicy, type TierCandidate } from '../protocols/probe-tiers.ts'
import type { GeoLocation, ReachReport, RouteAttributes, RouteEntry, SignedAnnouncement } from '../protocols/routes.ts'
import type { Verdict } from '../protocols/health-verdict.ts'
import { createSupervisor, type ChildSpec, type Supervisor, type SupervisorDefaults } from './supervisor.ts'
import { xstateInspector } from './inspection.ts'
import type { ServiceConfig } from './config.ts'
import type { Counter, OverlayMessage, PeerId, Prober, ProbeTarget } from './ports.ts'
import type { NodeComponents } from './node.ts'

/** The node's components, with the prober built. */
export type ControlPlaneComponents = Omit<NodeComponents, 'makeProber'> & { prober: Prober, originValidation?: OriginValidation }

/**
 * Route-origin validation (like RPKI ROV): may `origin` announce `prefix`? 'not-anycast' for
 * prefixes outside the anycast pool, which are not validated. `onChange` fires when the answer may
 * have changed (a lease was written).
 */
export interface OriginValidation {
  validate(prefix: string, origin: PeerId): 'valid' | 'invalid' | 'not-anycast'
  onChange(listener: () => void): () => void
}

/** An origin's invalid announcements are logged once per this window. */
const INVALID_ORIGIN_LOG_WINDOW_MS = 60_000
/**
 * An announcement usually arrives a moment before its origin's lease (two topics): held this long
 * without a lease, it is logged as a warning; before that it is the ordinary race.
 */
const HELD_WARN_AFTER_MS = 10_000
/** Announcements held until their origin's lease arrives, at most. */
const MAX_HELD_ANNOUNCEMENTS = 4096

export interface ControlPlaneConfig {
  nodeName: string
  routesTopic: string
  location?: GeoLocation
  services: ServiceConfig[]
  serviceProbe: HealthProberPolicy
  originProbe: HealthProberPolicy
  announcementTtlMs: number
  /** Expiry sweep, RTT refresh and reach reports to neighbours run at this period. */
  refreshIntervalMs: number
  drainMs: number
  /** Formation's relay rule (direct-fallback.ts); default 3 failures in 300 s, relayed for 300 s. */
  directFallback?: DirectFallbackPolicy
  /** Origins probed at a slower cadence (probe-tiers.ts); default 2 active per prefix, others every 5 s. */
  originStandby?: OriginStandbyPolicy
}

export const defaultControlPlaneTiming = {
  serviceProbe: { intervalMs: 500, timeoutMs: 400, rise: 3, fall: 3, jitter: 0.1 },
  // Origins are probed by every node, so a little slower; SWIM indirect probes guard against one
  // lossy link declaring a live origin dead.
  originProbe: { intervalMs: 500, timeoutMs: 300, rise: 2, fall: 2, jitter: 0.1 },
  announcementTtlMs: 15_000,
  refreshIntervalMs: 1000,
  drainMs: 1000,
  directFallback: defaultDirectFallbackPolicy as DirectFallbackPolicy,
  originStandby: defaultOriginStandbyPolicy as OriginStandbyPolicy
}

/**
 * The periodic reach report repeats an unchanged view only every this many refresh periods (10 s at
 * the defaults). Sent every period it was a third of all session traffic at 1,000 nodes, and
 * repeated what every neighbour already held: a report stands until the next one or until the
 * session ends. Changes of verdict are still reported at once (triggered), and a periodic report
 * goes out as soon as the view has moved (reachMoved).
 */
const REACH_REPEAT_PERIODS = 10
/** A relative RTT change the periodic report passes on: the route choice's incumbent margin. */
const REACH_RTT_MOVE = 0.1

/** True when the origins reached differ from `sent`, or an RTT moved by more than REACH_RTT_MOVE. */
function reachMoved (sent: ReadonlyMap<PeerId, number>, entries: ReachReport['entries']): boolean {
  if (sent.size !== entries.length) return true
  return entries.some((entry) => rttMoved(sent.get(entry.origin), entry.rttMs, REACH_RTT_MOVE))
}

/**
 * The periodic refresh passes on an RTT only once it has moved by more than this fraction of the
 * one held: the route choice keeps its incumbent within 10 %, so smaller moves change no path, and
 * recomputing every origin's paths for each jittered sample was the largest source of garbage in a
 * steady-state run.
 */
const RTT_REFRESH_MOVE = 0.02

/** True when nothing is held, or `measuredMs` is more than `fraction` of the held RTT (and 0.1 ms) away from it. */
function rttMoved (heldMs: number | undefined, measuredMs: number, fraction: number): boolean {
  return heldMs === undefined || Math.abs(measuredMs - heldMs) > Math.max(fraction * heldMs, 0.1)
}

/** A route change at one node, for logs, metrics and the simulator's checkers. */
export interface RouteChange {
  atMs: number
  prefix: string
  from: string | undefined
  to: string | undefined
  reason: RouteEntry['reason']
}

export interface ServiceHealthView {
  service: string
  prefix: string
  verdict: Verdict
  adminDown: boolean
  /** Announced load from proxied connections (setServiceConnections), 0..1. */
  load: number
  /** At its proxies' connection capacity: announced degraded while its checks pass. */
  overloaded: boolean
  announcer: string
  lastLatencyMs: number | undefined
  lastError: string | undefined
}

export interface OriginHealthView {
  origin: string
  verdict: Verdict
  /**
   * The RTT our own probes give the direct path (health-prober.ts pathRtt: lower samples at once,
   * higher ones at gain 1/8): its cost, and what reach reports carry. A late answer or two on a
   * loaded host barely moves it, so they do not make a relay look cheaper than the direct path.
   */
  rttMs: number | undefined
  /** The last probe's RTT, unsmoothed. */
  lastRttMs: number | undefined
  lastError: string | undefined
  /** Our own probes answer (healthy, or degraded only by slowness): a direct path exists. */
  direct: boolean
  /** Held on relays by Formation's rule (repeated direct failures); the direct path is demoted. */
  relayedByRule: boolean
  /** The probe period now: originProbe's, or originStandby's for an origin this node does not depend on. */
  intervalMs: number
}

/**
 * A direct path needs our own probes to get through. Degraded after failed probes means the origin
 * is suspect or reached only through helpers (SWIM): alive, so its announcements stand, but a
 * packet sent straight to it would not arrive; relays that reach it carry it instead.
 */
function directlyReachable (verdict: Verdict, consecutiveFail: number): boolean {
  return verdict === 'healthy' || (verdict === 'degraded' && consecutiveFail === 0)
}

type ProberActor = Actor<typeof healthProberMachine>
type AnnouncerActor = Actor<typeof prefixAnnouncerMachine>

/** Sequence numbers stay increasing across restarts by starting from the clock. */
function nextSequence (last: number, nowMs: number): number {
  return Math.max(last + 1, Math.floor(nowMs))
}

export class ControlPlane {
  readonly table: RouteTable
  readonly servicesSupervisor: Supervisor
  readonly originsSupervisor: Supervisor
  private readonly chosen = new Map<string, string | undefined>()
  private readonly adminDown = new Set<string>()
  /** Load of local services from their proxied connections, by service name. */
  private readonly serviceLoad = new Map<string, { load: number, overloaded: boolean }>()
  private readonly routeListeners: Array<(change: RouteChange) => void> = []
  private readonly counters: Record<'rejected' | 'applied' | 'routeChanges' | 'updatesSent' | 'directFallbacks', Counter>
  private readonly fallback: DirectFallback
  /** Origins held on their relays by Formation's rule: the timer that gives the direct path back. */
  private readonly fallbackTimers = new Map<PeerId, unknown>()
  private lastSeq = 0
  private unsubscribe: (() => void) | undefined
  /** Updates the validator accepted, by payload, so delivery does not decode them again. */
  private readonly validated = new WeakMap<Uint8Array, UpdateMessage>()
  private refreshTimer: unknown
  private running = false

  constructor (
    private readonly components: ControlPlaneComponents,
    private readonly config: ControlPlaneConfig,
    defaults: SupervisorDefaults,
    /** Sends an UPDATE payload to a neighbour over its session (dropped unless established). */
    private readonly sendToPeer: (peer: PeerId, payload: Uint8Array) => void,
    private readonly establishedPeers: () => Array<{ peerId: PeerId, rttMs: number | undefined }>
  ) {
    this.table = new RouteTable({ self: components.signer.nodeId, gateRelays: true })
    this.servicesSupervisor = createSupervisor({ ...defaults, id: 'services', strategy: 'one_for_one', intensity: 10, periodMs: 10_000, parent: 'root', children: this.serviceSpecs() })
    this.originsSupervisor = createSupervisor({ ...defaults, id: 'origins', strategy: 'one_for_one', intensity: 100, periodMs: 10_000, parent: 'root' })
    const { metrics } = components
    this.counters = {
      rejected: metrics.counter('route_announcements_rejected_total', 'Announcements dropped: bad signature, unknown origin key, malformed', ['reason']),
      applied: metrics.counter('route_announcements_applied_total', 'Announcements that changed the route table'),
      routeChanges: metrics.counter('route_changes_total', 'Times the chosen origin of a prefix changed'),
      updatesSent: metrics.counter('session_updates_sent_total', 'UPDATE messages sent to neighbours'),
      directFallbacks: metrics.counter('route_direct_fallbacks_total', 'Origins sent to their relays after repeated direct-path failures')
    }
    this.fallback = new DirectFallback(config.directFallback ?? defaultDirectFallbackPolicy)
  }

  /** Supervisor children to place under the node's root. */
  childSpecs (): ChildSpec[] {
    return [
      { id: 'services', kind: 'supervisor', restart: 'permanent', start: () => ({ kind: 'supervisor', supervisor: this.servicesSupervisor }) },
      { id: 'origins', kind: 'supervisor', restart: 'permanent', start: () => ({ kind: 'supervisor', supervisor: this.originsSupervisor }) }
    ]
  }

  start (): void {
    if (this.running) return
    this.running = true
    const { overlay } = this.components
    overlay.setValidator(this.config.routesTopic, (message) => this.validateGossip(message))
    this.unsubscribe = overlay.subscribe(this.config.routesTopic, (message) => {
      this.applyUpdate(this.validated.get(message.data) ?? this.decodeQuietly(message.data), undefined)
    })
    this.unsubscribeValidation = this.components.originValidation?.onChange(() => { this.revalidate() })
    this.scheduleRefresh()
  }

  // ---- origin validation ----------------------------------------------------------------------

  /** Announcements from origins without a lease (yet), by prefix and origin: the lease may be on its way. */
  private readonly held = new Map<string, { signed: SignedAnnouncement, sinceMs: number, lastMs: number }>()
  /** Local announcements waiting for this node's own anycast lease. */
  private readonly heldLocal = new Map<string, { service: ServiceConfig, attributes: RouteAttributes | undefined }>()
  private readonly invalidLogged = new Map<string, number>()
  private unsubscribeValidation: (() => void) | undefined

  /** False (and counted, logged once per origin per window, held for a lease to arrive) when the origin may not announce it. */
  private originAllowed (signed: SignedAnnouncement): boolean {
    const { announcement } = signed
    const validation = this.components.originValidation
    if (validation === undefined || announcement.withdrawn) return true
    if (validation.validate(announcement.prefix, announcement.origin) !== 'invalid') return true
    this.counters.rejected.inc({ reason: 'no-lease' })
    const now = this.components.clock.now()
    const key = `${announcement.prefix} ${announcement.origin}`
    const known = this.held.get(key)
    if (known === undefined || known.signed.announcement.seq < announcement.seq) {
      if (known === undefined && this.held.size >= MAX_HELD_ANNOUNCEMENTS) return false
      this.held.set(key, { signed, sinceMs: known?.sinceMs ?? now, lastMs: now })
    }
    this.components.logger.debug('holding an announcement until its origin\'s lease arrives', { origin: announcement.origin, prefix: announcement.prefix })
    return false
  }

  /**
   * Announcements still without a lease after HELD_WARN_AFTER_MS: warned, once per origin per
   * window. One whose origin stopped sending it for longer than its ttl is forgotten.
   */
  private warnLongHeld (now: number): void {
    for (const [key, { signed, sinceMs, lastMs }] of this.held) {
      const { origin, prefix } = signed.announcement
      if (now - lastMs > signed.announcement.attributes.ttlMs) { this.held.delete(key); continue }
      if (now - sinceMs < HELD_WARN_AFTER_MS) continue
      const last = this.invalidLogged.get(origin)
      if (last !== undefined && now - last < INVALID_ORIGIN_LOG_WINDOW_MS) continue
      if (this.invalidLogged.size >= MAX_HELD_ANNOUNCEMENTS) this.invalidLogged.clear()
      this.invalidLogged.set(origin, now)
      this.components.logger.warn('ignoring announcements from an origin without a lease for its prefix', { origin, prefix, heldForMs: now - sinceMs })
    }
  }

  /** Leases changed: apply what was held and is now valid, announce what waited for our own lease. */
  private revalidate (): void {
    if (!this.running) return
    const validation = this.components.originValidation
    if (validation === undefined) return
    const now = this.components.clock.now()
    const changed: string[] = []
    for (const [key, { signed }] of this.held) {
      if (validation.validate(signed.announcement.prefix, signed.announcement.origin) === 'invalid') continue
      this.held.delete(key)
      const result = this.table.applyAnnouncement(signed, now)
      if (result.changedPrefix !== undefined) { changed.push(result.changedPrefix); this.counters.applied.inc() }
    }
    if (changed.length > 0) { this.routesChanged(changed); this.syncOriginProbers() }
    for (const [prefix, local] of this.heldLocal) {
      if (validation.validate(prefix, this.components.signer.nodeId) === 'invalid') continue
      this.heldLocal.delete(prefix)
      this.originate(local.service, local.attributes, false)
    }
  }

  stop (): void {
    this.running = false
    this.unsubscribe?.()
    this.unsubscribe = undefined
    this.unsubscribeValidation?.()
    this.unsubscribeValidation = undefined
    for (const timer of this.relayHoldDowns.values()) this.components.clock.clearTimeout(timer as never)
    this.relayHoldDowns.clear()
    for (const timer of this.fallbackTimers.values()) this.components.clock.clearTimeout(timer as never)
    this.fallbackTimers.clear()
    for (const timer of this.relayingPrefixes.values()) if (timer !== undefined) this.components.clock.clearTimeout(timer as never)
    this.relayingPrefixes.clear()
    this.components.overlay.setValidator(this.config.routesTopic, undefined)
    if (this.refreshTimer !== undefined) this.components.clock.clearTimeout(this.refreshTimer)
    this.refreshTimer = undefined
  }

  onRouteChange (listener: (change: RouteChange) => void): void { this.routeListeners.push(listener) }

  /** Session events from the node's peer sessions. */
  readonly sessionListener: SessionListener = {
    established: (peer) => {
      // A new neighbour gets the whole table at once (RFC 4271 §9.4's initial exchange).
      const reach = this.reachReport()
      if (reach.entries.length > 0) this.reachReported = true
      for (const message of packUpdates(this.table.snapshotAnnouncements(), reach)) this.send(peer, message)
    },
    down: (peer) => { this.routesChanged(this.table.dropNeighbour(peer)) },
    update: (peer, payload) => {
      const message = this.decodeQuietly(payload, peer)
      if (message !== undefined) this.applyUpdate(message, peer)
    }
  }

  /**
   * Whether this node has any overlay path to `origin`, directly or through a neighbour that
   * reports reaching it, whatever a route for one of its prefixes may use now (a prefix's relay
   * paths can be gated shut, or a neighbour can relay that prefix itself). The zone's liveness view.
   */
  hasPathTo (origin: string): boolean { return this.table.pathTo(origin) !== undefined }

  routes (): RouteEntry[] {
    return this.table.entries().map((entry) => {
      if (!this.relayingPrefixes.has(entry.prefix)) return entry
      return { ...entry, relaying: this.relayingPrefixes.get(entry.prefix) === undefined ? 'open' : 'pending' }
    })
  }

  /** Operator switch: treat a local service as failed whatever its checks say. */
  setAdminDown (service: string, down: boolean): boolean {
    const config = this.config.services.find((candidate) => candidate.name === service)
    if (config === undefined) return false
    if (down) this.adminDown.add(service); else this.adminDown.delete(service)
    this.components.logger.info(down ? 'service marked down by operator' : 'service marked up by operator', { service })
    const verdict = down ? 'failed' : this.effectiveVerdict(service, this.proberFor(`service:${service}`)?.getSnapshot().context.verdict ?? 'unknown')
    this.announcerFor(config.prefix)?.send({ type: verdictEvent(verdict) })
    return true
  }

  /**
   * Proxied connections open to a local service (tcp-proxy.ts) and the proxies' capacity for it:
   * the announced load becomes active ÷ capacity (origin-load.ts), re-announced at once when its
   * step changes; at capacity the service is announced degraded while its checks pass, so other
   * nodes send new traffic to healthy origins first. False for a service not served here.
   */
  setServiceConnections (service: string, active: number, capacity: number | undefined): boolean {
    const config = this.config.services.find((candidate) => candidate.name === service)
    if (config === undefined) return false
    const before = this.serviceLoad.get(service) ?? { load: 0, overloaded: false }
    const after = { load: connectionLoad(active, capacity), overloaded: isOverloaded(active, capacity) }
    if (before.load === after.load && before.overloaded === after.overloaded) return true
    this.serviceLoad.set(service, after)
    if (before.overloaded !== after.overloaded) {
      this.components.logger.info(after.overloaded ? 'service at its connection capacity: announced degraded' : 'service below its connection capacity again', { service, active, capacity })
      if (!this.adminDown.has(service)) {
        const verdict = this.proberFor(`service:${service}`)?.getSnapshot().context.verdict ?? 'unknown'
        this.announcerFor(config.prefix)?.send({ type: verdictEvent(this.effectiveVerdict(service, verdict)) })
      }
      return true
    }
    // Same health, new load: re-sign what is announced now with it.
    const announced = this.announcerFor(config.prefix)?.getSnapshot().context.announced
    if (announced !== undefined) this.originate(config, announced, false)
    return true
  }

  /** A passing check of an overloaded service counts as degraded. */
  private effectiveVerdict (service: string, verdict: Verdict): Verdict {
    return verdict === 'healthy' && this.serviceLoad.get(service)?.overloaded === true ? 'degraded' : verdict
  }

  /** De-prefer, then withdraw every local prefix; resolves when all are drained or after a bound. */
  async drain (): Promise<void> {
    const announcers = this.config.services.map((service) => this.announcerFor(service.prefix)).filter((actor) => actor !== undefined)
    await new Promise<void>((resolve) => {
      let pending = announcers.length
      if (pending === 0) { resolve(); return }
      const guard = this.components.clock.setTimeout(resolve, this.config.drainMs * 3 + 500)
      for (const actor of announcers) {
        const subscription = actor.subscribe((snapshot) => {
          if (snapshot.status === 'done' || snapshot.context.announced === undefined) {
            subscription.unsubscribe()
            if (--pending === 0) { this.components.clock.clearTimeout(guard); resolve() }
          }
        })
        actor.send({ type: 'announcer.drain' })
      }
    })
  }

  serviceHealth (): ServiceHealthView[] {
    return this.config.services.map((service) => {
      const prober = this.proberFor(`service:${service.name}`)?.getSnapshot().context
      const announcer = this.announcerFor(service.prefix)?.getSnapshot()
      return {
        service: service.name,
        prefix: service.prefix,
        verdict: this.adminDown.has(service.name) ? 'failed' : prober?.verdict ?? 'unknown',
        adminDown: this.adminDown.has(service.name),
        load: this.serviceLoad.get(service.name)?.load ?? 0,
        overloaded: this.serviceLoad.get(service.name)?.overloaded ?? false,
        announcer: announcer === undefined ? 'stopped' : JSON.stringify(announcer.value),
        lastLatencyMs: prober?.lastLatencyMs,
        lastError: prober?.lastError
      }
    })
  }

  originHealth (): OriginHealthView[] {
    return this.originsSupervisor.children().flatMap((child) => {
      const ref = this.originsSupervisor.child(child.id)
      if (ref?.kind !== 'actor') return []
      const context = (ref.actor as ProberActor).getSnapshot().context
      return [{
        origin: child.id.slice('origin-probe:'.length),
        verdict: context.verdict,
        rttMs: context.pathRttMs,
        lastRttMs: context.lastLatencyMs,
        lastError: context.lastError,
        direct: directlyReachable(context.verdict, context.consecutiveFail),
        relayedByRule: this.table.isDirectDemoted(child.id.slice('origin-probe:'.length)),
        intervalMs: context.policy.intervalMs
      }]
    })
  }

  // ---- local services -------------------------------------------------------------------------

  private serviceSpecs (): ChildSpec[] {
    return this.config.services.flatMap((service) => [this.announcerSpec(service), this.serviceProberSpec(service)])
  }

  private announcerSpec (service: ServiceConfig): ChildSpec {
    const id = `prefix-announcer:${service.prefix}`
    return {
      id,
      kind: 'prefix-announcer',
      restart: 'permanent',
      start: (ctx) => ({
        kind: 'actor',
        actor: createActor(prefixAnnouncerMachine, {
          ...ctx.actorOptions,
          inspect: this.inspect(id, 'prefix-announcer', 'services'),
          input: {
            prefix: service.prefix,
            service: service.name,
            attributes: {
              preference: service.preference,
              load: 0,
              ttlMs: this.config.announcementTtlMs,
              ...(this.config.location === undefined ? {} : { location: this.config.location })
            },
            announce: (attributes) => { this.originate(service, attributes, false) },
            withdraw: () => { this.originate(service, undefined, true) },
            clock: ctx.clock,
            random: ctx.random,
            policy: { ...defaultPrefixAnnouncerPolicy, drainTimeMs: this.config.drainMs }
          }
        })
      })
    }
  }

  private serviceProberSpec (service: ServiceConfig): ChildSpec {
    return this.proberSpec(`service:${service.name}`, 'services', service.check, this.config.serviceProbe, (verdict) => {
      if (!this.adminDown.has(service.name)) this.announcerFor(service.prefix)?.send({ type: verdictEvent(this.effectiveVerdict(service.name, verdict)) })
    })
  }

  private proberSpec (id: string, parent: string, target: ProbeTarget, policy: HealthProberPolicy, onVerdict: HealthProberInput['onVerdict']): ChildSpec {
    return {
      id,
      kind: 'health-prober',
      restart: 'permanent',
      start: (ctx) => ({
        kind: 'actor',
        actor: createActor(healthProberMachine, {
          ...ctx.actorOptions,
          inspect: this.inspect(id, 'health-prober', parent),
          input: { target, prober: this.components.prober, random: ctx.random, clock: ctx.clock, policy, ...(onVerdict === undefined ? {} : { onVerdict }) }
        })
      })
    }
  }

  /** Sign and spread this node's (re-)announcement or withdrawal of a local prefix. */
  private originate (service: ServiceConfig, attributes: RouteAttributes | undefined, withdrawn: boolean): void {
    const { signer, clock, overlay } = this.components
    // Without our own lease for the prefix nobody would accept it: wait for the lease.
    if (!withdrawn && this.components.originValidation?.validate(service.prefix, signer.nodeId) === 'invalid') {
      this.heldLocal.set(service.prefix, { service, attributes })
      return
    }
    this.heldLocal.delete(service.prefix)
    // The announcer knows health and preference; the load comes from the proxies.
    const load = this.serviceLoad.get(service.name)?.load
    if (attributes !== undefined && load !== undefined) attributes = { ...attributes, load }
    this.lastSeq = nextSequence(this.lastSeq, clock.now())
    const signed = signAnnouncement({
      prefix: service.prefix,
      service: service.name,
      origin: signer.nodeId,
      seq: this.lastSeq,
      withdrawn,
      attributes: attributes ?? { health: 'failed', preference: 0, load: 0, ttlMs: this.config.announcementTtlMs }
    }, signer)
    const result = this.table.applyAnnouncement(signed, clock.now())
    if (result.changedPrefix !== undefined) this.routesChanged([result.changedPrefix])
    const payload = encodeUpdate({ announcements: [signed] })
    overlay.publish(this.config.routesTopic, payload).catch((error: Error) => {
      this.components.logger.warn('publishing an announcement failed', { prefix: service.prefix, error: error.message })
    })
    // Neighbours also get it over their sessions, so a partitioned gossip mesh cannot hide it.
    for (const peer of this.establishedPeers()) { this.sendToPeer(peer.peerId, payload); this.counters.updatesSent.inc() }
  }

  // ---- announcements from others --------------------------------------------------------------

  private decodeQuietly (bytes: Uint8Array, from?: PeerId): UpdateMessage | undefined {
    try {
      return decodeUpdate(bytes)
    } catch (error) {
      this.counters.rejected.inc({ reason: 'malformed' })
      this.components.logger.debug('dropped a malformed update', { from, error: (error as Error).message })
      return undefined
    }
  }

  /** gossipsub validation: only well-formed updates whose every announcement verifies pass. */
  private validateGossip (message: OverlayMessage): 'accept' | 'reject' {
    const update = this.decodeQuietly(message.data, message.from)
    if (update === undefined) return 'reject'
    if (update.reach !== undefined) { this.counters.rejected.inc({ reason: 'reach-on-gossip' }); return 'reject' }
    if (!update.announcements.every((signed) => this.verified(signed, message.from))) return 'reject'
    this.validated.set(message.data, update)
    return 'accept'
  }

  private verified (signed: SignedAnnouncement, from: PeerId | undefined): boolean {
    if (verifyAnnouncement(signed, this.components.verifier)) return true
    this.counters.rejected.inc({ reason: 'bad-signature' })
    this.components.logger.debug('dropped a forged or unverifiable announcement', { from, origin: signed.announcement.origin, prefix: signed.announcement.prefix })
    return false
  }

  private applyUpdate (update: UpdateMessage | undefined, neighbour: PeerId | undefined): void {
    if (update === undefined) return
    const now = this.components.clock.now()
    const changed = new Set<string>()
    let candidatesChanged = false
    for (const signed of update.announcements) {
      if (signed.announcement.origin === this.components.signer.nodeId) continue
      // Gossip was verified by the validator; session updates are verified here.
      if (neighbour !== undefined && !this.verified(signed, neighbour)) continue
      if (!this.originAllowed(signed)) continue
      const result = this.table.applyAnnouncement(signed, now)
      if (result.changedPrefix !== undefined) { changed.add(result.changedPrefix); candidatesChanged = true; this.counters.applied.inc() }
    }
    if (update.reach !== undefined && neighbour !== undefined) {
      const rtt = this.establishedPeers().find((peer) => peer.peerId === neighbour)?.rttMs
      for (const prefix of this.table.applyReachReport(neighbour, rtt, update.reach)) changed.add(prefix)
    }
    this.routesChanged([...changed])
    // Only an announcement that changed a prefix's candidates can bring a new origin, or fail or
    // withdraw one (expiry is the refresh's to handle): a refresh with the same content, a reach
    // report or a duplicate leaves the origins to probe, and their tiers, as they were.
    if (candidatesChanged) { this.syncOriginProbers(); this.retierOriginProbers() }
  }

  // ---- origins: reachability and RTT ----------------------------------------------------------

  /** One peer prober per remote origin in the table; none for origins that left it. */
  private syncOriginProbers (): void {
    if (!this.running) return
    const wanted = this.table.heldOrigins()
    wanted.delete(this.components.signer.nodeId)
    for (const child of this.originsSupervisor.children()) {
      const origin = child.id.slice('origin-probe:'.length)
      if (!wanted.has(origin)) {
        this.originsSupervisor.stopChild(child.id)
        this.routesChanged(this.table.setDirectReach(origin, undefined))
        this.endFallback(origin)
        this.fallback.forget(origin)
      }
      wanted.delete(origin)
    }
    for (const origin of wanted) this.originsSupervisor.startChild(this.originProberSpec(origin))
  }

  private originProberSpec (origin: PeerId): ChildSpec {
    const helpers = (): PeerId[] => this.establishedPeers().map((peer) => peer.peerId).filter((peer) => peer !== origin)
    return this.proberSpec(`origin-probe:${origin}`, 'origins', { kind: 'peer', peerId: origin }, { ...this.config.originProbe, indirect: { k: 2, via: helpers } }, (verdict, detail) => {
      const rtt = directlyReachable(verdict, detail.consecutiveFail) ? detail.pathRttMs ?? 0 : undefined
      const hadDirect = this.table.hasDirectReach(origin)
      // Demoted by Formation's rule, the direct path carried nothing: losing it moves no route, so
      // there is no stale relay report to guard against.
      const wasDemoted = this.table.isDirectDemoted(origin)
      this.routesChanged(this.table.setDirectReach(origin, rtt))
      if (rtt !== undefined) this.holdDownRelays(origin, false)
      else if (hadDirect) {
        if (!wasDemoted) this.holdDownRelays(origin, true)
        this.directFailed(origin)
      }
      // A triggered report: neighbours relaying through us learn at once, not at the next refresh.
      // The prober's snapshot still shows the old verdict while it notifies, so this one is given.
      this.sendReachReport(this.establishedPeers(), { origin, rttMs: rtt })
      // A failed origin hands its place among the active ones to the next (after this verdict lands).
      if (verdict === 'failed' || detail.previous === 'failed') this.retierSoon()
    })
  }

  private retierPending = false
  private retierSoon (): void {
    if (this.retierPending) return
    this.retierPending = true
    this.components.clock.setTimeout(() => { this.retierPending = false; this.retierOriginProbers() }, 0)
  }

  /**
   * Probe at the full rate the origins this node routes to or would fail over to (probe-tiers.ts),
   * the chosen ones, and any origin a neighbour may reach only through us (its reach report lacks
   * it, so our report may be its path there: that must not go stale); the rest every
   * originStandby.intervalMs.
   */
  private retierOriginProbers (): void {
    if (!this.running) return
    const standby = this.config.originStandby ?? defaultOriginStandbyPolicy
    const probers = new Map<PeerId, ProberActor>()
    for (const child of this.originsSupervisor.children()) {
      const ref = this.originsSupervisor.child(child.id)
      if (ref?.kind === 'actor') probers.set(child.id.slice('origin-probe:'.length), ref.actor as ProberActor)
    }
    const candidates = (origins: string[]): TierCandidate[] => origins.flatMap((origin) => {
      const context = probers.get(origin)?.getSnapshot().context
      return context === undefined ? [] : [{ origin, rttMs: context.pathRttMs, failed: context.verdict === 'failed' }]
    })
    const active = activeOrigins([...this.table.usableOrigins()].map(candidates), standby.activePerPrefix)
    for (const origin of this.chosen.values()) if (origin !== undefined) active.add(origin)
    const neighbours = this.establishedPeers()
    for (const origin of probers.keys()) {
      if (active.has(origin)) continue
      const others = neighbours.length - (neighbours.some((peer) => peer.peerId === origin) ? 1 : 0)
      if (this.table.relayCount(origin) < others) active.add(origin)
    }
    for (const [origin, prober] of probers) {
      const intervalMs = active.has(origin) ? this.config.originProbe.intervalMs : Math.max(standby.intervalMs, this.config.originProbe.intervalMs)
      if (prober.getSnapshot().context.policy.intervalMs !== intervalMs) prober.send({ type: 'health.cadence.set', intervalMs })
    }
  }

  private readonly relayHoldDowns = new Map<PeerId, unknown>()

  /**
   * Losing a direct path holds the origin's relay paths down for two refresh periods: long enough
   * for every neighbour that also lost it to have sent its triggered withdrawal, so no two nodes
   * relay to each other's stale report (a loop). An origin that is alive but unreachable from here
   * is used through relays after the hold-down.
   */
  private holdDownRelays (origin: PeerId, hold: boolean): void {
    const { clock } = this.components
    const pending = this.relayHoldDowns.get(origin)
    if (pending !== undefined) { clock.clearTimeout(pending as never); this.relayHoldDowns.delete(origin) }
    if (!hold) { this.routesChanged(this.table.setRelaysHeldDown(origin, false)); return }
    this.routesChanged(this.table.setRelaysHeldDown(origin, true))
    this.relayHoldDowns.set(origin, clock.setTimeout(() => {
      this.relayHoldDowns.delete(origin)
      if (this.running) this.routesChanged(this.table.setRelaysHeldDown(origin, false))
    }, 2 * this.config.refreshIntervalMs))
  }

  /**
   * Formation's rule: the direct path to `origin` was lost; the `failures`-th loss within the
   * window demotes it below any relay path for the hold-down (the route table still falls back to
   * it when no relay reaches the origin).
   */
  private directFailed (origin: PeerId): void {
    const { clock, logger } = this.components
    const untilMs = this.fallback.recordFailure(origin, clock.now())
    if (untilMs === undefined) return
    const { failures, windowMs, holdDownMs } = this.fallback.policy
    logger.info('direct path keeps failing: using relays for this origin', { origin, failures, windowMs, holdDownMs })
    this.counters.directFallbacks.inc()
    this.routesChanged(this.table.setDirectDemoted(origin, true))
    const pending = this.fallbackTimers.get(origin)
    if (pending !== undefined) clock.clearTimeout(pending as never)
    this.fallbackTimers.set(origin, clock.setTimeout(() => {
      this.fallbackTimers.delete(origin)
      if (this.running) this.routesChanged(this.table.setDirectDemoted(origin, false))
    }, untilMs - clock.now()))
  }

  private endFallback (origin: PeerId): void {
    const pending = this.fallbackTimers.get(origin)
    if (pending !== undefined) this.components.clock.clearTimeout(pending as never)
    this.fallbackTimers.delete(origin)
    this.routesChanged(this.table.setDirectDemoted(origin, false))
  }

  /** Periodic: expire silent origins, refresh measured RTTs, tell neighbours what we reach. */
  private refresh (): void {
    const now = this.components.clock.now()
    this.warnLongHeld(now)
    const changed = new Set(this.table.expire(now))
    for (const view of this.originHealth()) {
      if (view.direct && rttMoved(this.table.directRttMs(view.origin), view.rttMs ?? 0, RTT_REFRESH_MOVE)) {
        for (const prefix of this.table.setDirectReach(view.origin, view.rttMs ?? 0)) changed.add(prefix)
      }
    }
    const peers = this.establishedPeers()
    for (const peer of peers) {
      if (peer.rttMs !== undefined && rttMoved(this.table.neighbourRttMs(peer.peerId), peer.rttMs, RTT_REFRESH_MOVE)) {
        for (const prefix of this.table.setNeighbourRtt(peer.peerId, peer.rttMs)) changed.add(prefix)
      }
    }
    this.routesChanged([...changed])
    this.syncOriginProbers()
    this.retierOriginProbers()
    this.sendReachReport(peers, undefined, true)
  }

  /**
   * Tell neighbours which origins we reach directly. A report replaces the previous one, so once
   * we reached something and now reach nothing, an empty report must still go out: without it a
   * neighbour would keep relaying through us to an origin we lost (and two such neighbours would
   * loop). Nothing is sent while there is nothing to say and nothing to take back.
   */
  private sendReachReport (peers: ReadonlyArray<{ peerId: PeerId }>, changed?: { origin: PeerId, rttMs: number | undefined }, periodic = false): void {
    const entries = this.reachEntries(changed)
    if (entries.length === 0 && !this.reachReported) return
    if (periodic && ++this.reachPeriodsQuiet < REACH_REPEAT_PERIODS && !reachMoved(this.reachSent, entries)) return
    this.reachPeriodsQuiet = 0
    this.relayingReportPending = false
    this.reachSent = new Map(entries.map((entry) => [entry.origin, entry.rttMs]))
    this.reachReported = entries.length > 0
    const payload = encodeUpdate({ announcements: [], reach: this.reachReport(entries) })
    for (const peer of peers) { this.sendToPeer(peer.peerId, payload); this.counters.updatesSent.inc() }
  }

  private scheduleRefresh (): void {
    if (!this.running) return
    this.refreshTimer = this.components.clock.setTimeout(() => {
      this.refresh()
      this.scheduleRefresh()
    }, this.config.refreshIntervalMs)
  }

  private reachSeq = 0
  /** The last reach report sent was not empty. */
  private reachReported = false
  /** The origins and RTTs of the last reach report sent. */
  private reachSent = new Map<PeerId, number>()
  /** Refresh periods since a reach report last went out. */
  private reachPeriodsQuiet = 0
  private reachReport (entries = this.reachEntries()): ReachReport {
    const report: ReachReport = { from: this.components.signer.nodeId, seq: ++this.reachSeq, entries }
    const relaying: string[] = []
    const relayPending: string[] = []
    for (const [prefix, timer] of this.relayingPrefixes) (timer === undefined ? relaying : relayPending).push(prefix)
    if (relaying.length > 0) report.relaying = relaying.sort()
    if (relayPending.length > 0) report.relayPending = relayPending.sort()
    return report
  }

  /** The origins this node reaches directly, with their RTT; `changed` overrides one origin's. */
  private reachEntries (changed?: { origin: PeerId, rttMs: number | undefined }): ReachReport['entries'] {
    const entries: ReachReport['entries'] = []
    for (const view of this.originHealth()) {
      const rttMs = view.origin === changed?.origin ? changed.rttMs : view.direct ? view.rttMs : undefined
      if (rttMs !== undefined) entries.push({ origin: view.origin, rttMs })
    }
    return entries
  }

  private send (peer: PeerId, message: UpdateMessage): void {
    this.sendToPeer(peer, encodeUpdate(message))
    this.counters.updatesSent.inc()
  }

  /**
   * Prefixes this node routes, or is about to route, through a relay, each with the timer that
   * opens its relay paths (undefined once open). Its reach reports list them: `relayPending` while
   * the timer runs, `relaying` once open.
   */
  private readonly relayingPrefixes = new Map<string, unknown>()

  /**
   * One-hop relay paths are loop-free only if the relay hands the packet straight to an origin:
   * two nodes relaying a prefix through each other loop, and they can, on stale reports (an RTT
   * spike makes each see the other as the cheaper way to the same origin) or with Formation's rule
   * (each demoted its direct path, so each prefers the other's relay). So a node about to route a
   * prefix through a relay first says so in a reach report (`relayPending`), which makes every
   * neighbour whose id sorts before ours stop relaying that prefix through it, and opens its own
   * relay paths for the prefix only one refresh period later (a report crosses any session well
   * within it), saying so at once (`relaying`: then no neighbour relays it through us); meanwhile
   * it keeps its direct paths. Why the neighbours after us in id order may stay until we open is
   * in route-table.ts (relaysFor): a passing wish to relay, an RTT spike, then cuts off only half
   * of the nodes that depend on us. The wait is skipped when no neighbour holds a report from us
   * listing an origin, since then none relays through us. Returns true when the prefix's flag
   * changed (the caller sends a reach report).
   */
  private gateRelays (prefix: string): boolean {
    const wants = this.table.wantsRelay(prefix)
    if (wants === this.relayingPrefixes.has(prefix)) return false
    const { clock, logger } = this.components
    if (!wants) {
      const timer = this.relayingPrefixes.get(prefix)
      if (timer !== undefined) clock.clearTimeout(timer as never)
      this.relayingPrefixes.delete(prefix)
      this.table.setRelaysOpen(prefix, false)
      logger.debug('relay gate closed: the route wants no relay', { prefix, wasOpen: timer === undefined })
      return true
    }
    if (!this.reachReported) {
      this.relayingPrefixes.set(prefix, undefined)
      this.table.setRelaysOpen(prefix, true)
      logger.debug('relay gate open at once: no neighbour holds a report of ours listing an origin', { prefix })
      return true
    }
    logger.debug('relay gate pending: neighbours told this node will relay the prefix', { prefix, opensInMs: this.config.refreshIntervalMs })
    this.relayingPrefixes.set(prefix, clock.setTimeout(() => {
      if (!this.running || !this.relayingPrefixes.has(prefix)) return
      this.relayingPrefixes.set(prefix, undefined)
      logger.debug('relay gate open: the refresh period since neighbours were told has passed', { prefix })
      this.routesChanged(this.table.setRelaysOpen(prefix, true))
      // Pending became open: the neighbours still relaying through us (their id sorts after ours)
      // must hear it now, not at the next refresh.
      this.reportRelayingSoon()
    }, this.config.refreshIntervalMs))
    return true
  }

  private routesChanged (prefixes: Iterable<string>): void {
    const now = this.components.clock.now()
    let flagged = false
    for (const prefix of prefixes) {
      if (this.gateRelays(prefix)) flagged = true
      const entry = this.table.entry(prefix)
      const before = this.chosen.get(prefix)
      if (entry.origin === before) continue
      this.chosen.set(prefix, entry.origin)
      this.counters.routeChanges.inc()
      const change: RouteChange = { atMs: now, prefix, from: before, to: entry.origin, reason: entry.reason }
      this.components.logger.debug('route changed', { ...change })
      for (const listener of this.routeListeners) listener(change)
    }
    if (flagged) this.reportRelayingSoon()
  }

  private relayingReportPending = false
  /**
   * A changed `relaying` list goes out in a reach report in this same instant, after the caller
   * (a verdict handler may be sending its own report, which then carries the list) has finished.
   */
  private reportRelayingSoon (): void {
    if (this.relayingReportPending) return
    this.relayingReportPending = true
    this.components.clock.setTimeout(() => {
      if (!this.relayingReportPending || !this.running) return
      this.relayingReportPending = false
      this.sendReachReport(this.establishedPeers())
    }, 0)
  }

  private proberFor (id: string): ProberActor | undefined {
    const ref = this.servicesSupervisor.child(id)
    return ref?.kind === 'actor' ? ref.actor as ProberActor : undefined
  }

  private announcerFor (prefix: string): AnnouncerActor | undefined {
    const ref = this.servicesSupervisor.child(`prefix-announcer:${prefix}`)
    return ref?.kind === 'actor' ? ref.actor as AnnouncerActor : undefined
  }

  private inspect (systemId: string, actor: string, parent: string): ReturnType<typeof xstateInspector> {
    return xstateInspector(this.components.inspector, this.components.clock, { node: this.config.nodeName, systemId, actor, parent })
  }
}

function verdictEvent (verdict: Verdict): 'service.healthy' | 'service.degraded' | 'service.failed' {
  return verdict === 'healthy' ? 'service.healthy' : verdict === 'degraded' ? 'service.degraded' : 'service.failed'
}
