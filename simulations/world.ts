// The simulated world: many NodeHosts — the production assembly — on one virtual clock, one
// seeded PRNG and one simulated overlay. Nothing here is a model of a node; only the network and
// time are simulated. Same seed and code, same trace, byte for byte.
import { VirtualClock } from '../src/runtime/clock.ts'
import { createRandom } from '../src/runtime/random.ts'
import { SimNetwork } from '../src/runtime/sim-network.ts'
import type { HolePunchOptions } from '../src/runtime/sim-nat.ts'
import { InspectionBus, createHashSink, type InspectionSink } from '../src/runtime/inspection.ts'
import { createMemoryLogger } from '../src/runtime/logger.ts'
import { createMemoryMetrics } from '../src/runtime/metrics.ts'
import { defaultNodeTiming, NodeHost, type NodeHostConfig } from '../src/runtime/node.ts'
import { defaultPeerSessionConfig, type PeerSessionConfig } from '../src/actors/peer-session.ts'
import type { PeerId, Random, Signer } from '../src/runtime/ports.ts'
import { KeyDirectory, createSimSigner } from '../src/runtime/signing.ts'
import { createSimProber, type ServiceOracle } from '../src/runtime/probers.ts'
import type { NodeLocation, ServiceConfig } from '../src/runtime/config.ts'
import type { SimOverlay } from '../src/runtime/sim-overlay.ts'
import { MemoryStore, type MemoryDisk } from '../src/runtime/memory-store.ts'

export interface WorldOptions {
  seed: number
  nodes: number
  /** Average overlay degree of the random neighbour graph. */
  degree?: number
  latencyMs?: number
  lossRate?: number
  session?: Partial<PeerSessionConfig>
  heartbeatIntervalMs?: number
  /** Extra inspection sinks (trace file, memory). */
  sinks?: InspectionSink[]
  /** Services each node serves (by node index); none by default. */
  services?: (index: number, id: PeerId) => ServiceConfig[]
  /** One-way latency between two nodes; default a constant latencyMs. */
  latency?: (a: PeerId, b: PeerId) => number
  /** Overrides of the control-plane timing. */
  timing?: Partial<typeof defaultNodeTiming>
  /** Node ids, in order; default `n00000`, `n00001`, …. When given, its length must equal `nodes`. */
  ids?: PeerId[]
  /** Where each node says it is (announcements and heartbeats carry it); none by default. */
  location?: (index: number, id: PeerId) => NodeLocation | undefined
  /** Extra delay per message (SimNetworkOptions.jitter); none by default. */
  jitter?: { ms?: number, fraction?: number }
  /** NodeHostConfig.maxSessions; default DEFAULT_MAX_SESSIONS. */
  maxSessions?: number
  /** Replicated state on every node (NodeHostConfig.state), each on an in-memory disk that survives its restarts. */
  state?: NodeHostConfig['state']
  /** Nodes behind NAT (SimNetwork.setNat): they dial out but cannot be dialled. None by default. */
  nat?: (index: number, id: PeerId) => boolean
  /** Hole punching between NATed nodes (SimNetworkOptions.holePunch); none by default. */
  holePunch?: HolePunchOptions
  /** Extra jitter spread of one link (SimNetworkOptions.linkJitterMs); none by default. */
  linkJitterMs?: (a: PeerId, b: PeerId) => number
}

export interface RestartOptions {
  /**
   * 'kept' (default): the machine's disk survives, so the node comes back with the same key and
   * (with options.state) reloads its replicated state from its memory disk.
   * 'wiped': a new disk, so a new key (a new identity under the same name), an empty memory disk
   * and, as always, a new incarnation.
   */
  state?: 'kept' | 'wiped'
}

export class SimWorld {
  readonly clock = new VirtualClock()
  readonly network: SimNetwork
  readonly bus = new InspectionBus()
  readonly hosts = new Map<PeerId, NodeHost>()
  readonly keys = new KeyDirectory({ fromPeerIds: false })
  /** Services the world has taken down, as `<node>/<service>`; their checks fail. */
  readonly downServices = new Set<string>()
  private readonly hash = createHashSink()
  private readonly random: Random
  private readonly ids: PeerId[]
  /** Each node's overlay neighbours when the world started: a restarted node dials them again. */
  private readonly bootstrap = new Map<PeerId, PeerId[]>()
  /** Crashed hosts whose actors are still winding down (crashNode), by node. */
  private readonly windingDown = new Map<PeerId, { done: boolean }>()
  /** Each node's simulated disk for its state store: kept across a crash and restart. */
  readonly disks = new Map<PeerId, MemoryDisk>()
  /** Restarts so far per node: each life draws from its own random fork. */
  private readonly lives = new Map<PeerId, number>()

  constructor (readonly options: WorldOptions) {
    const random = this.random = createRandom(options.seed)
    this.network = new SimNetwork({
      clock: this.clock,
      random: random.fork('network'),
      latencyMs: options.latency ?? (() => options.latencyMs ?? 20),
      lossRate: options.lossRate ?? 0,
      ...(options.jitter === undefined ? {} : { jitter: options.jitter }),
      ...(options.linkJitterMs === undefined ? {} : { linkJitterMs: options.linkJitterMs }),
      ...(options.holePunch === undefined ? {} : { holePunch: options.holePunch })
    })
    this.bus.addSink(this.hash)
    for (const sink of options.sinks ?? []) this.bus.addSink(sink)
    if (options.ids !== undefined && options.ids.length !== options.nodes) throw new RangeError(`SimWorld: ids has ${options.ids.length} entries, nodes is ${options.nodes}`)
    const ids = this.ids = options.ids ?? Array.from({ length: options.nodes }, (_, index) => `n${String(index).padStart(5, '0')}`)
    for (const [index, id] of ids.entries()) {
      const overlay = this.network.createOverlay(id)
      if (options.nat?.(index, id) === true) this.network.setNat(id, true)
      this.hosts.set(id, this.createHost(id, overlay, random.fork(`node:${id}`), createSimSigner(id, random.fork(`key:${id}`), this.keys), []))
    }
  }

  private createHost (id: PeerId, overlay: SimOverlay, random: Random, signer: Signer, neighbours: PeerId[]): NodeHost {
    const { options } = this
    const index = this.ids.indexOf(id)
    const services = options.services?.(index, id) ?? []
    const location = options.location?.(index, id)
    // A simulated service check answers from the world: up unless the scenario took it down.
    // The node's own clock: the shared virtual time, shifted by a clock skew, held by a CPU stall.
    const clock = this.network.nodeClock(id)
    const oracle: ServiceOracle = (target) => {
      const service = services.find((candidate) => JSON.stringify(candidate.check) === JSON.stringify(target))
      return { up: service !== undefined && !this.downServices.has(`${id}/${service.name}`), latencyMs: 1 }
    }
    return new NodeHost({
      clock,
      random,
      overlay,
      logger: createMemoryLogger({ limit: 100, bindings: { node: id } }),
      metrics: createMemoryMetrics(),
      inspector: this.bus,
      signer,
      verifier: this.keys,
      makeProber: (peers) => createSimProber(peers, clock, oracle),
      ...(options.state === undefined ? {} : { store: new MemoryStore(this.diskOf(id)) })
    }, {
      name: id,
      networkId: 'sim',
      session: { ...defaultPeerSessionConfig, ...options.session },
      ...defaultNodeTiming,
      ...options.timing,
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? defaultNodeTiming.heartbeatIntervalMs,
      neighbours,
      services,
      ...(options.maxSessions === undefined ? {} : { maxSessions: options.maxSessions }),
      ...(options.state === undefined ? {} : { state: options.state }),
      ...(location === undefined ? {} : { location })
    })
  }

  private diskOf (id: PeerId): MemoryDisk {
    let disk = this.disks.get(id)
    if (disk === undefined) this.disks.set(id, disk = new Map())
    return disk
  }

  /** sha256 of the JSONL inspection trace so far. */
  traceHash (): string { return this.hash.digest() }
  get traceLines (): number { return this.hash.lines }

  async start (): Promise<void> {
    for (const host of this.hosts.values()) await host.start()
    this.network.connectRandomGraph([...this.hosts.keys()], this.options.degree ?? 4)
    for (const [id, host] of this.hosts) this.bootstrap.set(id, host.components.overlay.connectedPeers())
    await settle()
  }

  /**
   * Advance virtual time by `ms`, one due instant at a time, letting promise continuations (dials,
   * publishes) run between instants as they would between real timer callbacks.
   */
  async run (ms: number): Promise<void> {
    const end = this.clock.now() + ms
    for (let guard = 0; guard < 50_000_000; guard++) {
      const next = this.clock.nextDueMs()
      if (next === undefined || next > end) break
      this.clock.runUntil(next)
      await settle()
    }
    this.clock.runUntil(end)
    await settle()
  }

  crash (id: PeerId): void { this.network.crash(id) }

  /**
   * The machine dies: the network drops everything to and from it at once (as crash does), and the
   * dead process's actors are stopped on the clock so none of them outlives it. Nothing they do on
   * the way out leaves the crashed overlay. restartNode needs that wind-down to have finished.
   */
  crashNode (id: PeerId): void {
    const host = this.requireHost(id)
    this.network.crash(id)
    const state = { done: false }
    this.windingDown.set(id, state)
    void host.stop().finally(() => { state.done = true })
  }

  isCrashed (id: PeerId): boolean { return this.network.isCrashed(id) }

  /**
   * A node crashed by crashNode boots again: a fresh NodeHost (same id, new state; same key unless
   * the state is wiped) on the restarted overlay, dialling the neighbours it had when the world
   * started, as a real node dials its bootstrap peers.
   */
  async restartNode (id: PeerId, options: RestartOptions = {}): Promise<NodeHost> {
    const old = this.requireHost(id)
    const windingDown = this.windingDown.get(id)
    if (windingDown === undefined) throw new Error(`restartNode: ${id} was not crashed with crashNode`)
    if (!windingDown.done) throw new Error(`restartNode: ${id} is still winding down; restart it later`)
    this.windingDown.delete(id)
    const life = (this.lives.get(id) ?? 0) + 1
    this.lives.set(id, life)
    const overlay = this.network.restart(id)
    const wiped = options.state === 'wiped'
    if (wiped) this.disks.delete(id)
    const signer = wiped ? createSimSigner(id, this.random.fork(`key:${id}:life:${life}`), this.keys) : old.components.signer
    const host = this.createHost(id, overlay, this.random.fork(`node:${id}:life:${life}`), signer, this.bootstrap.get(id) ?? [])
    this.hosts.set(id, host)
    await host.start()
    // Behind NAT nobody can dial it, and its sessions dial only peers with larger ids (RFC 4271
    // §6.8): it dials its bootstrap peers itself, as libp2p's bootstrap module does, or it would
    // stay alone. (A public node is dialled back by its neighbours, so its run stays as it was.)
    if (this.network.isNatted(id)) {
      for (const peer of this.bootstrap.get(id) ?? []) overlay.dial(peer).catch(() => {})
    }
    return host
  }

  private requireHost (id: PeerId): NodeHost {
    const host = this.hosts.get(id)
    if (host === undefined) throw new Error(`unknown node ${id}`)
    return host
  }

  /** Stops every node, running virtual time meanwhile: a stopping node drains on the clock. */
  async stop (): Promise<void> {
    let stopped = false
    const stopping = Promise.all([...this.hosts.values()].map(async (host) => await host.stop())).then(() => { stopped = true })
    for (let guard = 0; !stopped && guard < 10_000; guard++) await this.run(10)
    await stopping
  }
}

/** Lets every queued promise continuation run: a macrotask turn runs only after microtasks drain. */
export async function settle (): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve))
}
