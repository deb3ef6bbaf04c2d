// Simulated network: deterministic discrete-event message passing on a virtual clock. One seeded
// Random drives it; each node draws its link jitter and loss from its own fork (`net:<id>`), so
// adding a node never shifts anyone else's draws.
//
// Model (what a test can rely on):
// - A message sent at t arrives at t + latencyMs(from, to) + jitter, unless lost (gossip data-plane
//   RPCs only, see sim-overlay.ts) or the link is cut at delivery time.
// - Streams are reliable and FIFO: a frame is delivered at max(its own arrival time, the previous
//   frame's) and each timer pops the head of the stream's queue, so ties can never reorder.
// - A cut link (partition, crash) silently drops everything, like TCP without ACKs: connections
//   and streams stay open until a side closes them or the dead-connection timeout reaps them.
//   The reaper models yamux ping / TCP keepalive: a connection cut for connectionTimeoutMs is
//   closed on every live side that still holds it, with an error, and peer.disconnected fires.
// - crash(id): the node stops at once; peers notice only through that timeout. stop(): graceful;
//   peers get their streams closed and peer.disconnected one latency later.
// - NAT (setNat): a node behind NAT dials out but cannot be dialled; a dial to it gets no answer
//   (connectTimeoutMs). Connections it made carry traffic both ways, as a NAT mapping does. Without
//   `holePunch` two NATed nodes never connect directly, and reach each other only through relays;
//   with it, a dial to a NATed node goes through a relay and is upgraded as DCUtR does (sim-nat.ts).
// - Link faults (addLinkFault): extra delay, extra jitter, loss and reordering on the links from one
//   node set to another, for a while. Loss drops lossy gossip RPCs only (streams are reliable, as
//   TCP is); reordering delays some gossip RPCs past later ones (stream frames stay FIFO).
// - Each node processes through its own NodeClock (sim-node-clock.ts): deliveries to it are
//   scheduled there, so a CPU stall puts them off and a clock skew shifts only what it reads as now.
//   Connection events (peer.connected, a reaped connection) are not put off by a stall.
// Stream opening and SimStream (one end of a stream) live in sim-stream.ts.
import { ConnectionLostError } from './overlay-errors.ts'
import type { Clock, FrameStream, OverlayStats, PeerId, Random, TimerHandle } from './ports.ts'
import {
  AbortError, DialError, type GossipOptions, type GossipRpc, SimOverlay, overlayNotRunning, resolveGossipOptions
} from './sim-overlay.ts'
import { openSimStream, type SimStream } from './sim-stream.ts'
import { NodeClock } from './sim-node-clock.ts'
import {
  chooseRelay, emptyHolePunchStats, isPunchable, pairKey, resolveHolePunch,
  type HolePunchOptions, type HolePunchStats, type NatType, type ResolvedHolePunch
} from './sim-nat.ts'

export interface SimNetworkOptions {
  /** Usually a VirtualClock; the network only schedules through the Clock port. */
  clock: Clock
  random: Random
  /** One-way latency; must be a pure function of the pair, finite and >= 0. Default 20 ms. */
  latencyMs?: (from: PeerId, to: PeerId) => number
  /** Extra delay per message, uniform in [0, ms + fraction × latency). Default none. */
  jitter?: { ms?: number, fraction?: number }
  /** Extra jitter of one link, added to `jitter`'s spread; a pure function of the pair. Default none. */
  linkJitterMs?: (from: PeerId, to: PeerId) => number
  /** Default probability that a lossy RPC is dropped on a link. Default 0. */
  lossRate?: number
  /** A dial to an unreachable peer fails after this. Default 2,000 ms. */
  connectTimeoutMs?: number
  /** A connection cut this long is reaped (yamux ping / keepalive). Default 10,000 ms. */
  connectionTimeoutMs?: number
  /** Frames buffered on a stream with no onFrame handler, or in flight from one end, before it is aborted. Default 1,024. */
  maxBufferedFrames?: number
  gossip?: Partial<GossipOptions>
  /** NAT traversal (sim-nat.ts): NAT types drawn per node, dials to NATed nodes punched through a relay. Default off. */
  holePunch?: HolePunchOptions
  /** Called for every delivery, loss and connection change, in simulation order. */
  trace?: (event: SimTraceEvent) => void
}

export interface SimTraceEvent {
  t: number
  type: 'rpc' | 'frame' | 'lost' | 'dropped' | 'connected' | 'disconnected'
  from: PeerId
  to: PeerId
  /** RPC kind (and message id), 'frame', or the reason for a disconnect. */
  detail: string
  bytes: number
}

export const DEFAULT_LATENCY_MS = 20
export const DEFAULT_CONNECT_TIMEOUT_MS = 2000
export const DEFAULT_CONNECTION_TIMEOUT_MS = 10_000
export const DEFAULT_MAX_BUFFERED_FRAMES = 1024

/** What the network calls on a node's overlay; set by the SimOverlay constructor. */
export interface SimNodeHooks {
  connectionOpened(peer: PeerId): void
  connectionClosed(peer: PeerId): void
  receiveRpc(from: PeerId, rpc: GossipRpc): void
  streamHandler(protocol: string): ((stream: FrameStream) => void) | undefined
  /** Crash: cancel timers, do nothing more. */
  halt(): void
  /** Restart after a crash: forget all state. */
  reset(): void
  /** Just started: arm timers. */
  started(): void
}

/** Network-side state of one node. */
export class SimNode {
  state: 'stopped' | 'started' | 'crashed' = 'stopped'
  /** Bumped on crash and restart: anything sent in an earlier life is dropped. */
  crashEpoch = 0
  /** Bumped on every start, stop and crash: dials begun in an earlier run are abandoned. */
  runEpoch = 0
  readonly connections = new Map<PeerId, SimConnection>()
  readonly pendingDials = new Map<PeerId, Promise<void>>()
  readonly stats: OverlayStats = { messagesSent: 0, bytesSent: 0, messagesReceived: 0, bytesReceived: 0 }
  /** Behind NAT: can dial out, cannot be dialled. */
  natted = false
  /** Behind NAT: which kind (sim-nat.ts); drawn from the seed when hole punching is on. */
  natType: NatType = 'endpoint-independent'
  hooks!: SimNodeHooks

  constructor (readonly id: PeerId, readonly random: Random, readonly clock: NodeClock) {}

  countSent (bytes: number): void {
    this.stats.messagesSent++
    this.stats.bytesSent += bytes
  }

  countReceived (bytes: number): void {
    this.stats.messagesReceived++
    this.stats.bytesReceived += bytes
  }
}

/** One connection between two nodes; each side holds it in `connections` until it closes there. */
export class SimConnection {
  cutSinceMs: number | undefined
  reapTimer: TimerHandle | undefined
  private readonly streamsA = new Set<SimStream>()
  private readonly streamsB = new Set<SimStream>()
  /** Last sampled one-way delay per direction, for rttMs(). */
  lastDelayAB: number
  lastDelayBA: number

  constructor (
    readonly id: number, readonly a: SimNode, readonly b: SimNode, readonly baseAB: number, readonly baseBA: number,
    /** This link's own jitter spread per direction (SimNetworkOptions.linkJitterMs). */
    readonly jitterAB = 0, readonly jitterBA = 0
  ) {
    this.lastDelayAB = baseAB
    this.lastDelayBA = baseBA
  }

  other (node: SimNode): SimNode {
    return node === this.a ? this.b : this.a
  }

  streamsOf (node: SimNode): Set<SimStream> {
    return node === this.a ? this.streamsA : this.streamsB
  }

  /** Mirrors `node.connections` (kept in step by SimNetwork) so the per-delivery check is a field read. */
  private heldByA = true
  private heldByB = true

  heldBy (node: SimNode): boolean {
    return node === this.a ? this.heldByA : this.heldByB
  }

  release (node: SimNode): void {
    if (node === this.a) this.heldByA = false
    else this.heldByB = false
  }

  rttMs (): number {
    return this.lastDelayAB + this.lastDelayBA
  }
}

interface Partition {
  readonly a: ReadonlySet<PeerId>
  readonly b: ReadonlySet<PeerId>
  readonly oneWay: boolean
}

/** A degraded stretch of network: what happens to messages from `from` to `to` while it lasts. */
export interface LinkFault {
  /** Senders it applies to; undefined: every node. */
  from?: Iterable<PeerId>
  /** Receivers it applies to; undefined: every node. */
  to?: Iterable<PeerId>
  /** Also from `to` to `from`. Default false. */
  symmetric?: boolean
  /** Added to every message's delay, in ms. */
  extraDelayMs?: number
  /** Added to every message's jitter spread, in ms. */
  jitterMs?: number
  /** Loss probability of lossy RPCs on these links (the highest of the applicable rates wins). */
  lossRate?: number
  /** This share of gossip RPCs is held back a further uniform [0, windowMs), so later ones overtake it. */
  reorder?: { rate: number, windowMs: number }
}

interface ActiveLinkFault {
  readonly from: ReadonlySet<PeerId> | undefined
  readonly to: ReadonlySet<PeerId> | undefined
  readonly symmetric: boolean
  readonly extraDelayMs: number
  readonly jitterMs: number
  readonly lossRate: number | undefined
  readonly reorder: { rate: number, windowMs: number } | undefined
}

function faultApplies (fault: ActiveLinkFault, from: PeerId, to: PeerId): boolean {
  const forward = (fault.from === undefined || fault.from.has(from)) && (fault.to === undefined || fault.to.has(to))
  if (forward || !fault.symmetric) return forward
  return (fault.from === undefined || fault.from.has(to)) && (fault.to === undefined || fault.to.has(from))
}

function checkProbability (rate: number, what: string): void {
  if (!(rate >= 0 && rate <= 1)) throw new RangeError(`${what} must be a probability in [0, 1], got ${rate}`)
}

function checkDuration (value: number, what: string): void {
  if (!(Number.isFinite(value) && value >= 0)) throw new RangeError(`${what} must be a finite number of ms >= 0, got ${value}`)
}

/** Mirrors an AbortSignal onto a promise without cancelling the underlying work. */
function withSignal<T> (promise: Promise<T>, signal: AbortSignal | undefined, operation: string): Promise<T> {
  if (signal === undefined) return promise
  if (signal.aborted) return Promise.reject(new AbortError(operation))
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => { reject(new AbortError(operation)) }
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(
      (value) => { signal.removeEventListener('abort', onAbort); resolve(value) },
      (error: unknown) => { signal.removeEventListener('abort', onAbort); reject(error) }
    )
  })
}

export class SimNetwork {
  readonly clock: Clock
  readonly random: Random
  readonly connectTimeoutMs: number
  readonly connectionTimeoutMs: number
  readonly maxBufferedFrames: number
  private readonly latencyFn: (from: PeerId, to: PeerId) => number
  private readonly jitterMs: number
  private readonly jitterFraction: number
  private readonly linkJitterFn: ((from: PeerId, to: PeerId) => number) | undefined
  private linkFaults: ActiveLinkFault[] = []
  private readonly gossip: GossipOptions
  private readonly trace: ((event: SimTraceEvent) => void) | undefined
  private readonly nodes = new Map<PeerId, SimNode>()
  private readonly overlays = new Map<PeerId, SimOverlay>()
  private readonly connections = new Set<SimConnection>()
  private partitions: Partition[] = []
  private lossRate: number
  private readonly linkLoss = new Map<string, number>()
  private nextConnectionId = 1
  private messageKeys = 0
  private readonly holePunch: ResolvedHolePunch | undefined
  private readonly punchStats = emptyHolePunchStats()
  /** Pairs (pairKey) whose punch failed every attempt: they stay relayed until one side restarts. */
  private readonly unpunchable = new Set<string>()

  constructor (options: SimNetworkOptions) {
    this.clock = options.clock
    this.random = options.random
    this.latencyFn = options.latencyMs ?? (() => DEFAULT_LATENCY_MS)
    this.jitterMs = options.jitter?.ms ?? 0
    this.jitterFraction = options.jitter?.fraction ?? 0
    this.linkJitterFn = options.linkJitterMs
    checkDuration(this.jitterMs, 'jitter.ms')
    checkDuration(this.jitterFraction, 'jitter.fraction')
    this.lossRate = options.lossRate ?? 0
    checkProbability(this.lossRate, 'lossRate')
    this.connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS
    this.connectionTimeoutMs = options.connectionTimeoutMs ?? DEFAULT_CONNECTION_TIMEOUT_MS
    checkDuration(this.connectTimeoutMs, 'connectTimeoutMs')
    checkDuration(this.connectionTimeoutMs, 'connectionTimeoutMs')
    this.maxBufferedFrames = options.maxBufferedFrames ?? DEFAULT_MAX_BUFFERED_FRAMES
    if (!Number.isSafeInteger(this.maxBufferedFrames) || this.maxBufferedFrames < 1) throw new RangeError('maxBufferedFrames must be an integer >= 1')
    this.gossip = resolveGossipOptions(options.gossip)
    this.trace = options.trace
    this.holePunch = options.holePunch === undefined ? undefined : resolveHolePunch(options.holePunch)
  }

  // ---- nodes -----------------------------------------------------------------------------------

  /** A new, stopped overlay for `nodeId` (unique in this network). */
  createOverlay (nodeId: PeerId): SimOverlay {
    if (typeof nodeId !== 'string' || nodeId.length === 0) throw new TypeError('createOverlay: nodeId must be a non-empty string')
    if (this.nodes.has(nodeId)) throw new Error(`createOverlay: node ${nodeId} already exists`)
    const node = new SimNode(nodeId, this.random.fork(`net:${nodeId}`), new NodeClock(this.clock))
    const overlay = new SimOverlay(this, node, this.gossip)
    this.nodes.set(nodeId, node)
    this.overlays.set(nodeId, overlay)
    return overlay
  }

  overlay (nodeId: PeerId): SimOverlay | undefined {
    return this.overlays.get(nodeId)
  }

  /** The clock a node processes by: hand it to that node's host (skew and stalls apply to it). */
  nodeClock (nodeId: PeerId): NodeClock {
    return this.requireNode(nodeId).clock
  }

  nodeIds (): PeerId[] {
    return [...this.nodes.keys()]
  }

  /** Sum of every node's counters. */
  totals (): OverlayStats {
    const total: OverlayStats = { messagesSent: 0, bytesSent: 0, messagesReceived: 0, bytesReceived: 0 }
    for (const node of this.nodes.values()) {
      total.messagesSent += node.stats.messagesSent
      total.bytesSent += node.stats.bytesSent
      total.messagesReceived += node.stats.messagesReceived
      total.bytesReceived += node.stats.bytesReceived
    }
    return total
  }

  /** Used by SimOverlay.start(). Starting a crashed node is an error: use restart(). */
  startNode (node: SimNode): void {
    if (node.state === 'started') return
    if (node.state === 'crashed') throw new Error(`node ${node.id} has crashed; SimNetwork.restart('${node.id}') brings it back`)
    node.state = 'started'
    node.runEpoch++
    node.hooks.started()
  }

  /** Graceful stop: local streams and connections close now, the remote sides one latency later. */
  stopNode (node: SimNode): void {
    if (node.state !== 'started') return
    node.state = 'stopped'
    node.runEpoch++
    for (const connection of [...node.connections.values()]) {
      const remote = connection.other(node)
      let noticeAtMs = this.clock.now() + this.baseDelay(connection, node)
      for (const stream of [...connection.streamsOf(node)]) {
        stream.close()
        noticeAtMs = Math.max(noticeAtMs, stream.lastDeliveryMs)
      }
      this.closeOn(node, connection, undefined, 'stopped')
      remote.clock.setTimeout(() => {
        if (connection.heldBy(remote) && remote.state === 'started' && this.isLinkUp(node, remote)) {
          this.closeOn(remote, connection, undefined, 'remote stopped')
        }
      }, noticeAtMs - this.clock.now())
      // If the notice is lost (partition), the remote reaps the half-open connection later.
      this.refresh(connection)
    }
  }

  /** Machine crash: no more delivery to or from it; peers find out by timeout. */
  crash (nodeId: PeerId): void {
    const node = this.requireNode(nodeId)
    if (node.state === 'crashed') return
    node.state = 'crashed'
    node.crashEpoch++
    node.runEpoch++
    node.hooks.halt()
    for (const connection of node.connections.values()) this.refresh(connection)
  }

  /** A crashed node boots again: fresh state (no subscriptions, handlers or connections), started. */
  restart (nodeId: PeerId): SimOverlay {
    const node = this.requireNode(nodeId)
    if (node.state !== 'crashed') throw new Error(`restart: node ${nodeId} has not crashed (state ${node.state})`)
    node.crashEpoch++
    const stale = [...node.connections.values()]
    node.connections.clear()
    for (const connection of stale) connection.release(node)
    node.pendingDials.clear()
    for (const key of [...this.unpunchable]) if (key.split('\n').includes(nodeId)) this.unpunchable.delete(key)
    for (const connection of stale) this.refresh(connection)
    Object.assign(node.stats, { messagesSent: 0, bytesSent: 0, messagesReceived: 0, bytesReceived: 0 })
    node.hooks.reset()
    node.clock.reset()
    node.state = 'stopped'
    this.startNode(node)
    return this.overlays.get(nodeId)!
  }

  isCrashed (nodeId: PeerId): boolean {
    return this.nodes.get(nodeId)?.state === 'crashed'
  }

  private requireNode (nodeId: PeerId): SimNode {
    const node = this.nodes.get(nodeId)
    if (node === undefined) throw new Error(`unknown node ${nodeId}`)
    return node
  }

  /** A number unique in this network for each published message (SimOverlay's seen-cache key). */
  nextMessageKey (): number {
    return ++this.messageKeys
  }

  // ---- faults ----------------------------------------------------------------------------------

  /** Cut links from groupA to groupB (and back unless oneWay). Returns a function healing just this cut. */
  partition (groupA: Iterable<PeerId>, groupB: Iterable<PeerId>, options: { oneWay?: boolean } = {}): () => void {
    const partition: Partition = { a: new Set(groupA), b: new Set(groupB), oneWay: options.oneWay === true }
    this.partitions = [...this.partitions, partition]
    this.refreshAll()
    return () => {
      const before = this.partitions.length
      this.partitions = this.partitions.filter((p) => p !== partition)
      if (this.partitions.length !== before) this.refreshAll()
    }
  }

  /** Remove every partition. */
  heal (): void {
    this.partitions = []
    this.refreshAll()
  }

  /**
   * Put a node behind NAT (or take it out): from now on dials to it get no answer, or, with
   * holePunch, go through a relay. Its NAT type is `type`, else drawn from its own fork of the seed.
   */
  setNat (nodeId: PeerId, natted: boolean, type?: NatType): void {
    const node = this.requireNode(nodeId)
    node.natted = natted
    if (type !== undefined) node.natType = type
    else if (natted && this.holePunch !== undefined) {
      node.natType = this.random.fork(`nat:${nodeId}`).next() < this.holePunch.symmetricShare ? 'symmetric' : 'endpoint-independent'
    }
  }

  natType (nodeId: PeerId): NatType | undefined {
    const node = this.requireNode(nodeId)
    return node.natted ? node.natType : undefined
  }

  /**
   * Whether `from` can have a direct connection to `to` as things stand (NAT only; partitions
   * aside): to a public node always; to a NATed one when already connected, by reversal from a
   * public node, or by a punch between two NATs that are punchable and have not failed every
   * attempt. Without holePunch, a NATed node is reached directly only over a connection it made.
   */
  canConnectDirectly (from: PeerId, to: PeerId): boolean {
    const a = this.requireNode(from)
    const b = this.requireNode(to)
    if (!b.natted || a.connections.has(to)) return true
    if (this.holePunch === undefined) return false
    if (!a.natted) return true
    return isPunchable(a.natType, b.natType) && !this.unpunchable.has(pairKey(from, to))
  }

  /** What NAT traversal has done so far (all zero without holePunch). */
  holePunchStats (): HolePunchStats {
    return { ...this.punchStats, failedPairs: this.unpunchable.size }
  }

  isNatted (nodeId: PeerId): boolean {
    return this.requireNode(nodeId).natted
  }

  /** Degrade links (see LinkFault) until the returned function is called. */
  addLinkFault (fault: LinkFault): () => void {
    if (fault.lossRate !== undefined) checkProbability(fault.lossRate, 'LinkFault.lossRate')
    checkDuration(fault.extraDelayMs ?? 0, 'LinkFault.extraDelayMs')
    checkDuration(fault.jitterMs ?? 0, 'LinkFault.jitterMs')
    if (fault.reorder !== undefined) {
      checkProbability(fault.reorder.rate, 'LinkFault.reorder.rate')
      checkDuration(fault.reorder.windowMs, 'LinkFault.reorder.windowMs')
    }
    const active: ActiveLinkFault = {
      from: fault.from === undefined ? undefined : new Set(fault.from),
      to: fault.to === undefined ? undefined : new Set(fault.to),
      symmetric: fault.symmetric === true,
      extraDelayMs: fault.extraDelayMs ?? 0,
      jitterMs: fault.jitterMs ?? 0,
      lossRate: fault.lossRate,
      reorder: fault.reorder
    }
    this.linkFaults = [...this.linkFaults, active]
    return () => { this.linkFaults = this.linkFaults.filter((candidate) => candidate !== active) }
  }

  /** A CPU stall: the node processes nothing (timers, deliveries) for `durationMs`, then catches up in order. */
  stall (nodeId: PeerId, durationMs: number): void {
    checkDuration(durationMs, 'stall durationMs')
    this.requireNode(nodeId).clock.stallUntil(this.clock.now() + durationMs)
  }

  /** Shift what a node's clock reads by `offsetMs` from the shared time (0 undoes it). */
  setClockSkew (nodeId: PeerId, offsetMs: number): void {
    if (!Number.isFinite(offsetMs)) throw new RangeError(`clock skew must be finite, got ${offsetMs}`)
    this.requireNode(nodeId).clock.skewMs = offsetMs
  }

  setLoss (rate: number): void {
    checkProbability(rate, 'lossRate')
    this.lossRate = rate
  }

  /** Override the loss rate from a to b (and b to a unless oneWay); undefined restores the default. */
  setLinkLoss (a: PeerId, b: PeerId, rate: number | undefined, options: { oneWay?: boolean } = {}): void {
    if (rate !== undefined) checkProbability(rate, `loss rate ${a} -> ${b}`)
    const keys = options.oneWay === true ? [`${a}\n${b}`] : [`${a}\n${b}`, `${b}\n${a}`]
    for (const key of keys) {
      if (rate === undefined) this.linkLoss.delete(key)
      else this.linkLoss.set(key, rate)
    }
  }

  /** Whether packets from `from` reach `to` now (partitions and crashes; loss aside). */
  isReachable (from: PeerId, to: PeerId): boolean {
    const a = this.nodes.get(from)
    const b = this.nodes.get(to)
    return a !== undefined && b !== undefined && a.state !== 'crashed' && b.state !== 'crashed' && this.isLinkUp(a, b)
  }

  private isLinkUp (from: SimNode, to: SimNode): boolean {
    for (const p of this.partitions) {
      if (p.a.has(from.id) && p.b.has(to.id)) return false
      if (!p.oneWay && p.b.has(from.id) && p.a.has(to.id)) return false
    }
    return true
  }

  // ---- delivery --------------------------------------------------------------------------------

  private latency (from: SimNode, to: SimNode): number {
    const ms = this.latencyFn(from.id, to.id)
    if (!(Number.isFinite(ms) && ms >= 0)) throw new RangeError(`latencyMs(${from.id}, ${to.id}) must be a finite number >= 0, got ${ms}`)
    return ms
  }

  private baseDelay (connection: SimConnection, from: SimNode): number {
    return from === connection.a ? connection.baseAB : connection.baseBA
  }

  /** Latency plus this sender's jitter draw; remembered for rttMs(). */
  sampleDelay (connection: SimConnection, from: SimNode): number {
    let base = this.baseDelay(connection, from)
    let spread = this.jitterMs + this.jitterFraction * base + (from === connection.a ? connection.jitterAB : connection.jitterBA)
    if (this.linkFaults.length > 0) {
      const to = connection.other(from)
      for (const fault of this.linkFaults) {
        if (!faultApplies(fault, from.id, to.id)) continue
        base += fault.extraDelayMs
        spread += fault.jitterMs
      }
    }
    const delay = spread > 0 ? base + from.random.next() * spread : base
    if (from === connection.a) connection.lastDelayAB = delay
    else connection.lastDelayBA = delay
    return delay
  }

  /** A delivery over `connection` happens only if the receiver still holds it and nothing cuts the link. */
  canDeliver (connection: SimConnection, from: SimNode, to: SimNode): boolean {
    return from.state !== 'crashed' && to.state === 'started' && connection.heldBy(to) && this.isLinkUp(from, to)
  }

  private isLost (from: SimNode, to: SimNode): boolean {
    let rate = this.linkLoss.size > 0 ? (this.linkLoss.get(`${from.id}\n${to.id}`) ?? this.lossRate) : this.lossRate
    for (const fault of this.linkFaults) {
      if (fault.lossRate !== undefined && faultApplies(fault, from.id, to.id)) rate = Math.max(rate, fault.lossRate)
    }
    return rate > 0 && from.random.next() < rate
  }

  /** Extra hold-back of one gossip RPC under a reordering fault (0 when none applies or it is not drawn). */
  private reorderDelay (from: SimNode, to: SimNode): number {
    let extra = 0
    for (const fault of this.linkFaults) {
      if (fault.reorder === undefined || !faultApplies(fault, from.id, to.id)) continue
      if (from.random.next() < fault.reorder.rate) extra = Math.max(extra, from.random.next() * fault.reorder.windowMs)
    }
    return extra
  }

  /** Used by SimOverlay: one gossip RPC to a connected peer. `lossy` RPCs are subject to loss. */
  sendRpc (node: SimNode, peer: PeerId, rpc: GossipRpc, bytes: number, lossy: boolean): void {
    const connection = node.connections.get(peer)
    if (connection === undefined || node.state !== 'started') return
    node.countSent(bytes)
    const to = connection.other(node)
    if (lossy && this.isLost(node, to)) {
      this.emitTrace('lost', node.id, to.id, rpc.kind, bytes)
      return
    }
    const crashEpoch = node.crashEpoch
    const delay = this.sampleDelay(connection, node) + (this.linkFaults.length > 0 ? this.reorderDelay(node, to) : 0)
    to.clock.setTimeout(() => {
      if (node.crashEpoch !== crashEpoch || !this.canDeliver(connection, node, to)) {
        this.emitTrace('dropped', node.id, to.id, rpc.kind, bytes)
        return
      }
      to.countReceived(bytes)
      if (this.trace !== undefined) this.emitTrace('rpc', node.id, to.id, rpc.kind === 'message' ? `message ${rpc.id}` : rpc.kind, bytes)
      to.hooks.receiveRpc(node.id, rpc)
    }, delay)
  }

  emitTrace (type: SimTraceEvent['type'], from: PeerId, to: PeerId, detail: string, bytes: number): void {
    if (this.trace !== undefined) this.trace({ t: this.clock.now(), type, from, to, detail, bytes })
  }

  // ---- connections -----------------------------------------------------------------------------

  /** Used by SimOverlay.dial. Concurrent dials to one peer share one attempt. */
  dial (node: SimNode, peer: PeerId, signal?: AbortSignal): Promise<void> {
    if (node.state !== 'started') return Promise.reject(overlayNotRunning(node.id, 'dial'))
    if (peer === node.id) return Promise.reject(new DialError(peer, 'self', 'a node cannot dial itself'))
    if (node.connections.has(peer)) return signal?.aborted === true ? Promise.reject(new AbortError(`dial ${peer}`)) : Promise.resolve()
    let pending = node.pendingDials.get(peer)
    if (pending === undefined) {
      pending = this.startDial(node, peer)
      node.pendingDials.set(peer, pending)
    }
    return withSignal(pending, signal, `dial ${peer}`)
  }

  /**
   * The handshake takes one RTT. Reachability is judged then: a live, started, reachable target
   * connects; a reachable stopped one refuses; anything else fails at connectTimeoutMs.
   */
  private startDial (node: SimNode, peer: PeerId): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const runEpoch = node.runEpoch
      const crashEpoch = node.crashEpoch
      const startMs = this.clock.now()
      const finish = (error?: Error): void => {
        if (node.crashEpoch !== crashEpoch) return // the process died: nothing resolves
        node.pendingDials.delete(peer)
        if (error === undefined) resolve()
        else reject(error)
      }
      const timeOut = (): void => {
        node.clock.setTimeout(() => {
          finish(new DialError(peer, 'unreachable', `no answer within ${this.connectTimeoutMs} ms`))
        }, startMs + this.connectTimeoutMs - this.clock.now())
      }
      const target = this.nodes.get(peer)
      if (target === undefined) { timeOut(); return }
      const rttMs = this.latency(node, target) + this.latency(target, node)
      if (rttMs >= this.connectTimeoutMs) { timeOut(); return }
      node.clock.setTimeout(() => {
        if (node.runEpoch !== runEpoch) return finish(new DialError(peer, 'stopped', `${node.id} stopped while dialling`))
        if (node.connections.has(peer)) return finish()
        // Behind NAT, the inbound handshake is dropped like a partition drops it: no answer, unless
        // a relay carries a hole punch.
        if (target.natted && this.holePunch !== undefined && target.state === 'started') return this.punch(node, target, runEpoch, finish, timeOut)
        if (target.state === 'crashed' || target.natted || !this.isLinkUp(node, target) || !this.isLinkUp(target, node)) return timeOut()
        if (target.state !== 'started') return finish(new DialError(peer, 'refused', `${peer} is not running`))
        this.establish(node, target)
        finish()
      }, rttMs)
    })
  }

  /**
   * A dial that met a NATed target (sim-nat.ts): through the target's best relay, connection
   * reversal for a public dialer, else up to `attempts` synchronised connects, each a relayed
   * round trip plus a direct one. The pair must still be up at the end of each step.
   */
  private punch (node: SimNode, target: SimNode, runEpoch: number, finish: (error?: Error) => void, timeOut: () => void): void {
    const options = this.holePunch as ResolvedHolePunch
    const key = pairKey(node.id, target.id)
    const relayId = this.unpunchable.has(key)
      ? undefined
      : chooseRelay(node.id, target.id, target.connections.keys(), (id) => {
        const relay = this.nodes.get(id)
        return relay !== undefined && relay.state === 'started' && !relay.natted && target.connections.get(id)!.heldBy(relay) &&
          this.isLinkUp(node, relay) && this.isLinkUp(relay, node) && this.isLinkUp(relay, target) && this.isLinkUp(target, relay)
      }, (from, to) => this.latency(this.requireNode(from), this.requireNode(to)))
    if (relayId === undefined) {
      if (!this.unpunchable.has(key)) this.punchStats.noRelay++
      timeOut()
      return
    }
    const relay = this.requireNode(relayId)
    const stepMs = this.latency(node, relay) + this.latency(relay, target) + this.latency(target, relay) + this.latency(relay, node) +
      this.latency(node, target) + this.latency(target, node)
    const stillUp = (): boolean => target.state === 'started' && this.isLinkUp(node, target) && this.isLinkUp(target, node)
    const attempt = (made: number): void => {
      node.clock.setTimeout(() => {
        if (node.runEpoch !== runEpoch) return finish(new DialError(target.id, 'stopped', `${node.id} stopped while dialling`))
        if (node.connections.has(target.id)) return finish()
        if (!stillUp()) return timeOut()
        if (!node.natted) {
          this.punchStats.reversals++
          this.establish(target, node)
          return finish()
        }
        this.punchStats.attempts++
        if (isPunchable(node.natType, target.natType) && node.random.next() < options.punchSuccess) {
          this.punchStats.punched++
          this.establish(node, target)
          return finish()
        }
        if (made + 1 < options.attempts) return attempt(made + 1)
        this.unpunchable.add(key)
        finish(new DialError(target.id, 'unreachable', `hole punch through ${relay.id} failed ${options.attempts} times`))
      }, stepMs)
    }
    attempt(0)
  }

  /** Connect two started nodes at once, skipping the handshake (for building topologies); one must accept inbound connections. */
  connectNow (a: PeerId, b: PeerId): void {
    const nodeA = this.requireNode(a)
    const nodeB = this.requireNode(b)
    if (a === b) throw new Error(`connectNow: cannot connect ${a} to itself`)
    if (nodeA.natted && nodeB.natted) throw new Error(`connectNow: ${a} and ${b} are both behind NAT`)
    if (nodeA.state !== 'started' || nodeB.state !== 'started') throw new Error(`connectNow: ${a} and ${b} must both be started`)
    if (!this.isLinkUp(nodeA, nodeB) || !this.isLinkUp(nodeB, nodeA)) throw new Error(`connectNow: ${a} and ${b} are partitioned`)
    this.establish(nodeA, nodeB)
  }

  /**
   * A connected random graph of average degree ≈ `degree`: a ring (for connectivity) plus
   * degree/2 − 1 random chords per node, drawn from the 'topology' fork. Nodes behind NAT stay off
   * the ring and connect out to max(2, degree/2 − 1) random nodes that accept inbound connections
   * (NATed nodes never connect to each other); without NAT the graph is the same as it always was.
   */
  connectRandomGraph (nodeIds: readonly PeerId[], degree: number, random: Random = this.random.fork('topology')): void {
    const n = nodeIds.length
    if (n < 2) return
    const open = nodeIds.filter((id) => !this.requireNode(id).natted)
    if (open.length === 0) throw new Error('connectRandomGraph: every node is behind NAT; nobody could accept a connection')
    for (let i = 0; i < open.length && open.length > 1; i++) {
      const a = open[i]!
      const b = open[(i + 1) % open.length]!
      if (a !== b && !this.requireNode(a).connections.has(b)) this.connectNow(a, b)
    }
    const chords = Math.max(0, Math.ceil(degree / 2) - 1)
    for (let i = 0; i < n; i++) {
      const a = nodeIds[i]!
      const node = this.requireNode(a)
      const wanted = node.natted ? Math.min(open.length, Math.max(2, chords)) : chords
      const pool = node.natted ? open : nodeIds
      let made = 0
      for (let attempt = 0; attempt < wanted * 4 && made < wanted; attempt++) {
        const b = pool[random.int(pool.length)]!
        if (b === a || node.connections.has(b) || (node.natted && this.requireNode(b).natted)) continue
        if (this.requireNode(b).natted) this.connectNow(b, a)
        else this.connectNow(a, b)
        made++
      }
    }
  }

  private establish (a: SimNode, b: SimNode): void {
    const existing = a.connections.get(b.id)
    if (existing !== undefined && existing.heldBy(b)) return
    // A half-open connection left by a crash is replaced, as a new TCP connection would reset it.
    if (existing !== undefined) this.closeOn(a, existing, new ConnectionLostError(`connection to ${b.id} reset by a new connection`), 'replaced')
    const stale = b.connections.get(a.id)
    if (stale !== undefined) this.closeOn(b, stale, new ConnectionLostError(`connection to ${a.id} reset by a new connection`), 'replaced')
    const jitterAB = this.linkJitterFn === undefined ? 0 : this.linkJitterFn(a.id, b.id)
    const jitterBA = this.linkJitterFn === undefined ? 0 : this.linkJitterFn(b.id, a.id)
    checkDuration(jitterAB, `linkJitterMs(${a.id}, ${b.id})`)
    checkDuration(jitterBA, `linkJitterMs(${b.id}, ${a.id})`)
    const connection = new SimConnection(this.nextConnectionId++, a, b, this.latency(a, b), this.latency(b, a), jitterAB, jitterBA)
    a.connections.set(b.id, connection)
    b.connections.set(a.id, connection)
    this.connections.add(connection)
    this.emitTrace('connected', a.id, b.id, `connection ${connection.id}`, 0)
    a.hooks.connectionOpened(b.id)
    b.hooks.connectionOpened(a.id)
  }

  /** Close `connection` on `node`'s side: its streams end (with `error` if abnormal), peer.disconnected fires. */
  private closeOn (node: SimNode, connection: SimConnection, error: Error | undefined, reason: string): void {
    if (!connection.heldBy(node)) return
    const remote = connection.other(node)
    node.connections.delete(remote.id)
    connection.release(node)
    if (!connection.heldBy(remote)) {
      this.connections.delete(connection)
      if (connection.reapTimer !== undefined) this.clock.clearTimeout(connection.reapTimer)
      connection.reapTimer = undefined
    }
    this.emitTrace('disconnected', node.id, remote.id, reason, 0)
    let failure: unknown
    let failed = false
    for (const stream of [...connection.streamsOf(node)]) {
      try { stream.terminate(error) } catch (thrown) {
        if (!failed) { failure = thrown; failed = true }
      }
    }
    node.hooks.connectionClosed(remote.id)
    if (failed) throw failure
  }

  private isCut (connection: SimConnection): boolean {
    const { a, b } = connection
    return a.state !== 'started' || b.state !== 'started' || !connection.heldBy(a) || !connection.heldBy(b) ||
      !this.isLinkUp(a, b) || !this.isLinkUp(b, a)
  }

  private refreshAll (): void {
    for (const connection of [...this.connections]) this.refresh(connection)
  }

  /** Start or stop the dead-connection countdown of one connection. */
  private refresh (connection: SimConnection): void {
    if (!this.isCut(connection)) {
      connection.cutSinceMs = undefined
      return
    }
    if (connection.cutSinceMs !== undefined) return
    connection.cutSinceMs = this.clock.now()
    this.scheduleReap(connection, this.connectionTimeoutMs)
  }

  private scheduleReap (connection: SimConnection, delayMs: number): void {
    if (connection.reapTimer !== undefined) this.clock.clearTimeout(connection.reapTimer)
    connection.reapTimer = this.clock.setTimeout(() => { this.reap(connection) }, delayMs)
  }

  private reap (connection: SimConnection): void {
    connection.reapTimer = undefined
    if (connection.cutSinceMs === undefined) return
    if (!this.isCut(connection)) { connection.cutSinceMs = undefined; return }
    const dueMs = connection.cutSinceMs + this.connectionTimeoutMs
    if (this.clock.now() < dueMs) { this.scheduleReap(connection, dueMs - this.clock.now()); return }
    for (const side of [connection.a, connection.b]) {
      if (side.state !== 'started' || !connection.heldBy(side)) continue
      const peer = connection.other(side).id
      this.closeOn(side, connection, new ConnectionLostError(`connection to ${peer} timed out: no keepalive for ${this.connectionTimeoutMs} ms`), 'timeout')
    }
    this.connections.delete(connection)
  }

  // ---- streams ---------------------------------------------------------------------------------

  /** Used by SimOverlay.openStream: dial if needed, then negotiate `protocol` (one RTT; see sim-stream.ts). */
  openStream (node: SimNode, peer: PeerId, protocol: string, signal?: AbortSignal): Promise<FrameStream> {
    return openSimStream(this, node, peer, protocol, signal)
  }
}
