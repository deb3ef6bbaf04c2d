// The node host: assembles one node from its components (the ports) and runs its actors under a
// root supervisor. The same host runs on libp2p in a process and on the simulated overlay, many
// to a process; it never reaches for the world except through the components it was given.
import { createActor, type Actor } from 'xstate'
import { peerSessionMachine, sessionStateName, type PeerSessionConfig } from '../actors/peer-session.ts'
import { heartbeatMachine } from '../actors/heartbeat.ts'
import { NotificationCode, SESSION_PROTOCOL, encode as encodeSessionFrame } from '../protocols/session-codec.ts'
import { decodeHeartbeat, encodeHeartbeat, type Heartbeat } from '../protocols/heartbeat-codec.ts'
import { memberStaleAfterMs, scaledHeartbeatIntervalMs } from '../protocols/membership.ts'
import { createSupervisor, type ChildSpec, type Supervisor, type SupervisionTree } from './supervisor.ts'
import { sessionFrameDetail, xstateInspector, type InspectionBus } from './inspection.ts'
import type { Clock, Logger, Metrics, Overlay, OverlayMessage, PeerId, Prober, Random, Signer, Store, Unsubscribe, Counter, Verifier } from './ports.ts'
import { StateReplicator } from './state-replicator.ts'
import { DEFAULT_LEASE_MS, LeaseManager } from './lease-manager.ts'
import { parseIpamConfig, type IpamConfig, type IpamConfigInput } from '../protocols/ipam.ts'
import type { DirectFallbackPolicy } from '../protocols/direct-fallback.ts'
import type { OriginStandbyPolicy } from '../protocols/probe-tiers.ts'
import { planServiceRegistration, type ServiceRecord } from '../protocols/service-registry.ts'
import type { NodeLocation, ServiceConfig } from './config.ts'
import { ControlPlane, defaultControlPlaneTiming, type OriginValidation } from './control-plane.ts'
import { createPeerProbes, type PeerProbes } from './probers.ts'
import type { HealthProberPolicy } from '../actors/health-prober.ts'

export interface NodeComponents {
  clock: Clock
  random: Random
  overlay: Overlay
  logger: Logger
  metrics: Metrics
  inspector: InspectionBus
  signer: Signer
  verifier: Verifier
  /** Builds the prober from the node's peer probes (served on the overlay once it runs). */
  makeProber: (peers: PeerProbes) => Prober
  /** Durable storage for the replicated state; with `config.state` and none given, in memory. */
  store?: Store
}

export interface NodeHostConfig {
  name: string
  networkId: string
  location?: NodeLocation
  session: PeerSessionConfig
  /** Period between heartbeats while the membership is small; it grows past heartbeatBudgetPerSec. */
  heartbeatIntervalMs: number
  /** Most heartbeats a node should receive per second from all members together (membership.ts). */
  heartbeatBudgetPerSec: number
  /**
   * A member is listed as stale when no heartbeat arrived for this long, stretched in proportion
   * when the member beats less often than heartbeatIntervalMs.
   */
  memberStaleMs: number
  /** Peers to hold sessions with from the start (bootstrap peers); others are added as they connect. */
  neighbours: PeerId[]
  /**
   * Most sessions held at once (configured neighbours always get one). Every connection would
   * otherwise become a session: a node that everyone probes (an origin, a bootstrap node) would
   * hold one per node in the network. Default DEFAULT_MAX_SESSIONS.
   */
  maxSessions?: number
  services: ServiceConfig[]
  serviceProbe: HealthProberPolicy
  originProbe: HealthProberPolicy
  announcementTtlMs: number
  refreshIntervalMs: number
  drainMs: number
  /** Formation's relay rule (src/protocols/direct-fallback.ts); default 3 failures in 300 s, 300 s relayed. */
  directFallback?: DirectFallbackPolicy
  /** Origins probed more slowly than originProbe (src/protocols/probe-tiers.ts); default 2 active per prefix, others every 5 s. */
  originStandby?: OriginStandbyPolicy
  /** The IP address DNS answers give for this node, sent in heartbeats (GeoDNS). */
  address?: string
  /** Replicated state (state-replicator.ts), IP leases and origin validation: off unless given. */
  state?: { antiEntropyIntervalMs?: number, ipam?: IpamConfigInput, leaseMs?: number }
}

export const DEFAULT_MAX_SESSIONS = 32
/** RFC 4486 §4: Cease subcode "Connection Rejected". */
export const CEASE_CONNECTION_REJECTED = 5

/**
 * Heartbeats the validator accepted, by payload, so delivery does not decode them again. Shared by
 * every node of the process and never mutated: the simulator hands all its nodes the same payload,
 * so each heartbeat is held once however many member lists hold it.
 */
const decodedHeartbeats = new WeakMap<Uint8Array, Heartbeat>()

export const defaultNodeTiming = { heartbeatIntervalMs: 1000, heartbeatBudgetPerSec: 20, memberStaleMs: 5000, ...defaultControlPlaneTiming }

export interface PeerSummary {
  peerId: PeerId
  state: string
  established: boolean
  rttMs: number | undefined
  establishedAtMs: number | undefined
  failures: number
  lastError: string | undefined
  framesIn: number
  framesOut: number
  invalidFrames: number
}

export interface MemberSummary {
  peerId: PeerId
  name: string
  location?: Heartbeat['location']
  lastSeenMs: number
  ageMs: number
  stale: boolean
  established: number
  heartbeats: number
  /** The member's DNS address, when its heartbeats carry one. */
  address?: string
}

export interface NodeStatus {
  name: string
  peerId: PeerId
  networkId: string
  location?: NodeLocation
  running: boolean
  startedAtMs: number | undefined
  uptimeMs: number
  sessions: { total: number, established: number }
  members: number
  connectedPeers: number
  overlay: ReturnType<Overlay['stats']>
}

interface Member { heartbeat: Heartbeat, lastSeenMs: number, count: number }

const REQUIRED_COMPONENTS = ['clock', 'random', 'overlay', 'logger', 'metrics', 'inspector', 'signer', 'verifier', 'makeProber'] as const

export function topicName (networkId: string, topic: string): string {
  return `form-anycast/${networkId}/${topic}`
}

export class NodeHost {
  private readonly root: Supervisor
  private readonly sessionsSupervisor: Supervisor
  readonly controlPlane: ControlPlane
  /** The replicated state, when config.state is set. */
  readonly replicator: StateReplicator | undefined
  /** This node's IP leases over the replicated state, and origin validation. */
  readonly leases: LeaseManager | undefined
  private peerProbes: PeerProbes | undefined
  private readonly ipam: IpamConfig | undefined
  /** Registrations run one at a time, so two cannot both take the address neither has written yet. */
  private registering: Promise<unknown> = Promise.resolve()
  private readonly members = new Map<PeerId, Member>()
  /** Sessions in `established`, kept by their actors' subscriptions: the control plane asks on every update. */
  private readonly establishedSessions = new Map<PeerId, Actor<typeof peerSessionMachine>>()
  private readonly unsubscribes: Unsubscribe[] = []
  private readonly incarnation: number
  private readonly counters: { invalidGossip: Counter, sessionsEstablished: Counter, sessionsRefused: Counter }
  private state: 'idle' | 'running' | 'stopped' = 'idle'
  private startedAtMs: number | undefined
  private stopping: Promise<void> | undefined

  constructor (readonly components: NodeComponents, readonly config: NodeHostConfig) {
    for (const name of REQUIRED_COMPONENTS) {
      if (components[name] === undefined) throw new TypeError(`NodeHost: missing component "${name}"`)
    }
    const { clock, random, inspector } = components
    this.incarnation = random.fork('incarnation').nextUint32()
    const defaults = { clock, random: random.fork('supervision'), inspector, node: config.name }
    this.sessionsSupervisor = createSupervisor({ ...defaults, id: 'sessions', strategy: 'one_for_one', intensity: 10, periodMs: 10_000, parent: 'root' })
    let prober: Prober | undefined
    const lazyProber: Prober = {
      probe: async (target, options) => await (prober ??= this.prober()).probe(target, options),
      probeVia: async (via, target, options) => await (prober ??= this.prober()).probeVia(via, target, options)
    }
    this.replicator = config.state === undefined
      ? undefined
      : new StateReplicator(
        { clock, random: random.fork('state'), overlay: components.overlay, signer: components.signer, verifier: components.verifier, logger: components.logger, metrics: components.metrics },
        {
          topic: topicName(config.networkId, 'state'),
          ...(components.store === undefined ? {} : { store: components.store }),
          ...(config.state.antiEntropyIntervalMs === undefined ? {} : { antiEntropyIntervalMs: config.state.antiEntropyIntervalMs }),
          peers: () => this.establishedPeers().map((peer) => peer.peerId)
        })
    this.ipam = config.state === undefined ? undefined : parseIpamConfig(config.state.ipam ?? {})
    this.leases = this.replicator === undefined || this.ipam === undefined
      ? undefined
      : new LeaseManager({ clock, replicator: this.replicator, inspector, logger: components.logger, metrics: components.metrics }, {
        nodeId: components.overlay.peerId,
        nodeName: config.name,
        ipam: this.ipam,
        leaseMs: config.state?.leaseMs ?? DEFAULT_LEASE_MS,
        services: config.services
      })
    const leases = this.leases
    const replicator = this.replicator
    const originValidation: OriginValidation | undefined = leases === undefined || replicator === undefined
      ? undefined
      : {
          validate: (prefix, origin) => leases.validateOrigin(prefix, origin),
          onChange: (listener) => replicator.onChange((change) => { if (change.signed.op.collection === 'leases') listener() })
        }
    this.controlPlane = new ControlPlane(
      { ...components, prober: lazyProber, ...(originValidation === undefined ? {} : { originValidation }) },
      {
        nodeName: config.name,
        routesTopic: topicName(config.networkId, 'routes'),
        services: config.services,
        serviceProbe: config.serviceProbe,
        originProbe: config.originProbe,
        announcementTtlMs: config.announcementTtlMs,
        refreshIntervalMs: config.refreshIntervalMs,
        drainMs: config.drainMs,
        ...(config.directFallback === undefined ? {} : { directFallback: config.directFallback }),
        ...(config.originStandby === undefined ? {} : { originStandby: config.originStandby }),
        ...(config.location === undefined ? {} : { location: { lat: config.location.lat, lon: config.location.lon, ...(config.location.region === undefined ? {} : { region: config.location.region }) } })
      },
      defaults,
      (peer, payload) => { this.sessionActor(peer)?.send({ type: 'session.send.update', payload }) },
      () => this.establishedPeers()
    )
    this.root = createSupervisor({
      ...defaults,
      id: 'root',
      strategy: 'one_for_one',
      children: [
        {
          id: 'sessions',
          kind: 'supervisor',
          restart: 'permanent',
          start: (ctx) => {
            // A restarted supervisor comes back with no dynamic children: re-create the sessions.
            if (ctx.incarnation > 0) clock.setTimeout(() => this.resyncSessions(), 0)
            return { kind: 'supervisor', supervisor: this.sessionsSupervisor }
          }
        },
        this.heartbeatSpec(),
        ...this.controlPlane.childSpecs(),
        ...(this.leases === undefined
          ? []
          : [{
              id: 'leases',
              kind: 'supervisor' as const,
              restart: 'permanent' as const,
              start: () => ({ kind: 'supervisor' as const, supervisor: createSupervisor({ ...defaults, id: 'leases', strategy: 'one_for_one', intensity: 10, periodMs: 10_000, parent: 'root', children: this.leases!.specs() }) })
            }])
      ],
      onEscalate: (error) => {
        components.logger.error('root supervisor gave up; stopping the node', { error: error.message })
        void this.stop()
      }
    })
    this.counters = {
      invalidGossip: components.metrics.counter('gossip_invalid_total', 'Gossip messages rejected by validation', ['topic']),
      sessionsEstablished: components.metrics.counter('sessions_established_total', 'Peer sessions that reached established'),
      sessionsRefused: components.metrics.counter('sessions_refused_total', 'Connected peers given no session because maxSessions were held')
    }
  }

  get peerId (): PeerId { return this.components.overlay.peerId }
  get running (): boolean { return this.state === 'running' }

  async start (): Promise<void> {
    if (this.state !== 'idle') return
    this.state = 'running'
    const { overlay, clock, logger } = this.components
    await overlay.start()
    // State before anything announces: leases and membership are read from it.
    await this.replicator?.start()
    this.startedAtMs = clock.now()
    this.peerProbes = createPeerProbes({ overlay, clock, random: this.components.random.fork('probes') })
    this.controlPlane.start()
    overlay.handleStream(SESSION_PROTOCOL, (stream) => {
      const session = this.ensureSession(stream.remotePeer)
      if (session !== undefined) { session.send({ type: 'session.incoming', stream }); return }
      if (this.state === 'running') {
        stream.send(encodeSessionFrame({ type: 'notification', code: NotificationCode.cease, subcode: CEASE_CONNECTION_REJECTED, message: `session limit ${this.maxSessions} reached` }))
      }
      stream.close()
    })
    const healthTopic = topicName(this.config.networkId, 'health')
    overlay.setValidator(healthTopic, (message) => this.validateHeartbeat(message))
    this.unsubscribes.push(
      overlay.subscribe(healthTopic, (message) => this.recordHeartbeat(message)),
      overlay.onPeerEvent((event) => {
        if (event.type === 'peer.connected') this.ensureSession(event.peerId)?.send({ type: 'peer.connected' })
      })
    )
    this.root.start()
    this.resyncSessions()
    logger.info('node started', { name: this.config.name, peerId: overlay.peerId })
  }

  async stop (): Promise<void> {
    if (this.state === 'idle') { this.state = 'stopped'; return }
    if (this.stopping !== undefined) return await this.stopping
    this.state = 'stopped'
    this.stopping = (async () => {
      // Drain first: de-prefer, then withdraw local prefixes while sessions and gossip still work.
      await this.controlPlane.drain()
      this.controlPlane.stop()
      // Sessions next, so neighbours get a CEASE NOTIFICATION rather than waiting out a hold timer.
      for (const child of this.sessionsSupervisor.children()) {
        const ref = this.sessionsSupervisor.child(child.id)
        if (ref?.kind === 'actor') ref.actor.send({ type: 'session.stop' })
      }
      await this.root.stop()
      this.peerProbes?.stop()
      for (const unsubscribe of this.unsubscribes.splice(0)) unsubscribe()
      this.components.overlay.unhandleStream(SESSION_PROTOCOL)
      await this.replicator?.stop()
      await this.components.overlay.stop()
      this.components.logger.info('node stopped', { name: this.config.name })
    })()
    return await this.stopping
  }

  private heartbeatSpec (): ChildSpec {
    return {
      id: 'heartbeat',
      kind: 'heartbeat',
      restart: 'permanent',
      start: (ctx) => ({
        kind: 'actor',
        actor: createActor(heartbeatMachine, {
          ...ctx.actorOptions,
          inspect: xstateInspector(this.components.inspector, ctx.clock, { node: this.config.name, systemId: ctx.id, actor: ctx.kind, parent: 'root', startDetail: this.inspectionIdentity() }),
          input: {
            intervalMs: () => this.heartbeatIntervalMs(),
            random: ctx.random,
            describe: () => this.describeSelf(),
            publish: async (heartbeat) => { await this.components.overlay.publish(topicName(this.config.networkId, 'health'), encodeHeartbeat(heartbeat)) }
          }
        })
      })
    }
  }

  /** This node's heartbeat period for the membership it knows of (itself included). */
  private heartbeatIntervalMs (): number {
    return scaledHeartbeatIntervalMs(this.config.heartbeatIntervalMs, this.members.size + 1, this.config.heartbeatBudgetPerSec)
  }

  /** On the heartbeat's start record: lets the debugger name session peers and place the node on its map. */
  private inspectionIdentity (): Record<string, unknown> {
    const location = this.config.location
    return location === undefined ? { peerId: this.peerId } : { peerId: this.peerId, location: { lat: location.lat, lon: location.lon } }
  }

  private describeSelf (): Omit<Heartbeat, 'seq'> {
    const heartbeat: Omit<Heartbeat, 'seq'> = { name: this.config.name, incarnation: this.incarnation, established: this.establishedPeers().length, intervalMs: this.heartbeatIntervalMs() }
    if (this.config.location !== undefined) {
      heartbeat.location = { lat: this.config.location.lat, lon: this.config.location.lon }
      if (this.config.location.region !== undefined) heartbeat.location.region = this.config.location.region
    }
    if (this.config.address !== undefined) heartbeat.address = this.config.address
    return heartbeat
  }

  private prober (): Prober {
    if (this.peerProbes === undefined) throw new Error('NodeHost: prober used before start')
    return this.components.makeProber(this.peerProbes)
  }

  private sessionActor (peer: PeerId): Actor<typeof peerSessionMachine> | undefined {
    const child = this.sessionsSupervisor.child(`peer-session:${peer}`)
    return child?.kind === 'actor' ? child.actor as Actor<typeof peerSessionMachine> : undefined
  }

  private get maxSessions (): number { return this.config.maxSessions ?? DEFAULT_MAX_SESSIONS }

  /** One session per configured neighbour and per connected peer, up to maxSessions. */
  private resyncSessions (): void {
    for (const peer of this.config.neighbours) this.ensureSession(peer)
    for (const peer of this.components.overlay.connectedPeers()) this.ensureSession(peer)
  }

  /** The session actor for a peer, created on first use; undefined once the node is stopping. */
  private ensureSession (peer: PeerId): Actor<typeof peerSessionMachine> | undefined {
    if (this.state !== 'running' || peer === this.peerId) return undefined
    const id = `peer-session:${peer}`
    const children = this.sessionsSupervisor.children()
    if (children.every((child) => child.id !== id)) {
      if (children.length >= this.maxSessions && !this.config.neighbours.includes(peer)) {
        this.counters.sessionsRefused.inc()
        return undefined
      }
      this.sessionsSupervisor.startChild(this.sessionSpec(id, peer))
    }
    const child = this.sessionsSupervisor.child(id)
    return child?.kind === 'actor' ? child.actor as Actor<typeof peerSessionMachine> : undefined
  }

  private sessionSpec (id: string, peer: PeerId): ChildSpec {
    const { overlay, clock } = this.components
    return {
      id,
      kind: 'peer-session',
      restart: 'permanent',
      start: (ctx) => {
        const actor = createActor(peerSessionMachine, {
          ...ctx.actorOptions,
          inspect: xstateInspector(this.components.inspector, ctx.clock, { node: this.config.name, systemId: id, actor: 'peer-session', parent: 'sessions', describe: sessionFrameDetail }),
          input: {
            localNodeId: overlay.peerId,
            peerId: peer,
            networkId: this.config.networkId,
            autoStart: true,
            config: this.config.session,
            listener: this.controlPlane.sessionListener,
            clock,
            random: ctx.random,
            transport: {
              openSession: async (target, signal) => {
                await overlay.dial(target, { signal })
                return await overlay.openStream(target, SESSION_PROTOCOL, { signal })
              }
            }
          }
        })
        let wasEstablished = false
        const forget = (): void => { if (this.establishedSessions.get(peer) === actor) this.establishedSessions.delete(peer) }
        actor.subscribe({
          next: (snapshot) => {
            const established = sessionStateName(snapshot.value) === 'established'
            if (established && !wasEstablished) {
              this.counters.sessionsEstablished.inc()
              // Anti-entropy with a new neighbour at once (one side asks: the one that dials).
              if (overlay.peerId < peer) void this.replicator?.syncWith(peer)
            }
            if (established) this.establishedSessions.set(peer, actor)
            else forget()
            wasEstablished = established
          },
          error: forget,
          complete: forget
        })
        return { kind: 'actor', actor }
      }
    }
  }

  private validateHeartbeat (message: OverlayMessage): 'accept' | 'reject' {
    try {
      if (!decodedHeartbeats.has(message.data)) decodedHeartbeats.set(message.data, decodeHeartbeat(message.data))
      return 'accept'
    } catch (error) {
      this.counters.invalidGossip.inc({ topic: 'health' })
      this.components.logger.debug('dropped invalid heartbeat', { from: message.from, error: (error as Error).message })
      return 'reject'
    }
  }

  private recordHeartbeat (message: OverlayMessage): void {
    let heartbeat: Heartbeat | undefined = decodedHeartbeats.get(message.data)
    try { heartbeat ??= decodeHeartbeat(message.data) } catch { return }
    const known = this.members.get(message.from)
    const newer = known === undefined || known.heartbeat.incarnation !== heartbeat.incarnation || heartbeat.seq > known.heartbeat.seq
    if (!newer) return
    this.members.set(message.from, { heartbeat, lastSeenMs: this.components.clock.now(), count: (known?.count ?? 0) + 1 })
  }

  /** Established sessions with their RTT, by peer id; cheap enough for every routing update. */
  private establishedPeers (): Array<{ peerId: PeerId, rttMs: number | undefined }> {
    const peers: Array<{ peerId: PeerId, rttMs: number | undefined }> = []
    for (const [peerId, actor] of this.establishedSessions) {
      if (actor.getSnapshot().status !== 'active') { this.establishedSessions.delete(peerId); continue }
      peers.push({ peerId, rttMs: this.sessionRtt(peerId, actor.getSnapshot().context.rttMs) })
    }
    return peers.sort((a, b) => a.peerId < b.peerId ? -1 : 1)
  }

  private sessionRtt (peerId: PeerId, rttMs: number | undefined): number | undefined {
    return rttMs === undefined ? this.components.overlay.rttMs(peerId) : Math.round(rttMs * 100) / 100
  }

  sessions (): PeerSummary[] {
    const summaries: PeerSummary[] = []
    for (const child of this.sessionsSupervisor.children()) {
      const ref = this.sessionsSupervisor.child(child.id)
      if (ref?.kind !== 'actor') continue
      const snapshot = (ref.actor as Actor<typeof peerSessionMachine>).getSnapshot()
      const context = snapshot.context
      const state = sessionStateName(snapshot.value)
      summaries.push({
        peerId: context.peerId,
        state,
        established: state === 'established',
        rttMs: this.sessionRtt(context.peerId, context.rttMs),
        establishedAtMs: context.establishedAtMs,
        failures: context.failures,
        lastError: context.lastError,
        framesIn: context.framesIn,
        framesOut: context.framesOut,
        invalidFrames: context.invalidFrames
      })
    }
    return summaries.sort((a, b) => a.peerId < b.peerId ? -1 : 1)
  }

  memberList (): MemberSummary[] {
    const now = this.components.clock.now()
    return [...this.members.entries()].map(([peerId, member]) => {
      const summary: MemberSummary = {
        peerId,
        name: member.heartbeat.name,
        lastSeenMs: member.lastSeenMs,
        ageMs: now - member.lastSeenMs,
        stale: now - member.lastSeenMs > memberStaleAfterMs(this.config.memberStaleMs, this.config.heartbeatIntervalMs, member.heartbeat.intervalMs),
        established: member.heartbeat.established,
        heartbeats: member.count
      }
      if (member.heartbeat.location !== undefined) summary.location = member.heartbeat.location
      if (member.heartbeat.address !== undefined) summary.address = member.heartbeat.address
      return summary
    }).sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  }

  status (): NodeStatus {
    const sessions = this.sessions()
    const now = this.components.clock.now()
    const status: NodeStatus = {
      name: this.config.name,
      peerId: this.peerId,
      networkId: this.config.networkId,
      running: this.running,
      startedAtMs: this.startedAtMs,
      uptimeMs: this.startedAtMs === undefined ? 0 : now - this.startedAtMs,
      sessions: { total: sessions.length, established: sessions.filter((s) => s.established).length },
      members: this.memberList().filter((m) => !m.stale).length,
      connectedPeers: this.components.overlay.connectedPeers().length,
      overlay: this.components.overlay.stats()
    }
    if (this.config.location !== undefined) status.location = this.config.location
    return status
  }

  tree (): SupervisionTree { return this.root.tree() }

  /**
   * Registers a service in the replicated state with a fresh anycast address from the pool;
   * resolves once the record is durable. Throws ServiceExistsError, ServiceRecordError (bad
   * name), IpamExhaustedError, or an Error when this node keeps no replicated state.
   */
  async registerService (name: string): Promise<ServiceRecord> {
    const replicator = this.replicator
    const ipam = this.ipam
    if (replicator === undefined || ipam === undefined || !this.running) throw new Error('this node keeps no replicated state (config state.enabled)')
    const register = async (): Promise<ServiceRecord> => {
      const record = planServiceRegistration(ipam, name, {
        services: replicator.state.entries('services'),
        leases: replicator.state.entries('leases'),
        nowMs: this.components.clock.now()
      })
      await replicator.write('services', record.name, { anycast: record.anycast })
      return record
    }
    const result = this.registering.then(register, register)
    this.registering = result.catch(() => undefined)
    return await result
  }
}
