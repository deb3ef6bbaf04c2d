// Simulated Overlay: the `Overlay` port over a SimNetwork (see sim-network.ts), with a gossip model
// shaped like gossipsub v1.1 (libp2p specs, pubsub/gossipsub/gossipsub-v1.0.md and -v1.1.md):
// per-topic meshes of degree D kept between D_lo and D_hi by a heartbeat, GRAFT/PRUNE with a prune
// back-off, fanout for topics published without subscribing, a seen-cache against duplicates, and
// lazy IHAVE/IWANT gossip from a message cache so a message lost on a mesh link is recovered at the
// next heartbeat.
//
// Choices where gossipsub leaves room (documented so the libp2p adapter can be compared):
// - publish sends to the mesh when this node is subscribed and its mesh is non-empty; otherwise to up
//   to D topic peers (the fanout set, kept fanoutTtlMs after the last publish). No flood publish:
//   it would cost D..degree copies more per message for no gain in coverage at these degrees.
// - the publisher does not receive its own message (gossipsub's emitSelf = false).
// - message id = author + sequence number (gossipsub's default msgIdFn).
// - loss (SimNetwork lossRate) drops data-plane RPCs: MESSAGE, IHAVE, IWANT. Control RPCs
//   (SUBSCRIBE, GRAFT, PRUNE) and stream frames ride a reliable stream, as they do over yamux.
import type {
  FrameStream, Overlay, OverlayMessage, OverlayStats, PeerEvent, PeerId, Random, TimerHandle,
  TopicValidator, Unsubscribe
} from './ports.ts'
import { MAX_MESSAGE_BYTES } from './ports.ts'
import { MessageTooLargeError, OverlayNotRunningError } from './overlay-errors.ts'
import type { SimNetwork, SimNode, SimNodeHooks } from './sim-network.ts'

/** Estimated bytes of RPC framing, signature and ids around a payload (gossipsub protobuf + yamux). */
export const RPC_HEADER_BYTES = 40
/** Estimated bytes of one message id inside IHAVE/IWANT (author peer id prefix + seqno). */
export const MESSAGE_ID_BYTES = 20

export interface GossipOptions {
  /** Target mesh degree (gossipsub D). */
  d: number
  /** Below this the heartbeat grafts up to D (D_lo). */
  dLo: number
  /** Above this the heartbeat prunes down to D (D_hi). */
  dHi: number
  /** Non-mesh topic peers sent IHAVE per topic per heartbeat (D_lazy). */
  dLazy: number
  heartbeatMs: number
  /** How long a message id is remembered to drop duplicates. */
  seenTtlMs: number
  /** Bound on the seen-cache; the oldest ids go first. */
  maxSeenEntries: number
  /** Heartbeats a message stays retrievable by IWANT (mcache_len). */
  historyLength: number
  /** Heartbeats of history advertised in IHAVE (mcache_gossip). */
  historyGossip: number
  fanoutTtlMs: number
  /** After a PRUNE, neither side re-grafts the other on that topic for this long. */
  pruneBackoffMs: number
  /** Most ids in one IHAVE and answered from one IHAVE. */
  maxIHaveIds: number
}

export const DEFAULT_GOSSIP_OPTIONS: Readonly<GossipOptions> = Object.freeze({
  d: 6,
  dLo: 4,
  dHi: 12,
  dLazy: 6,
  heartbeatMs: 1000,
  seenTtlMs: 120_000,
  maxSeenEntries: 200_000,
  historyLength: 5,
  historyGossip: 3,
  fanoutTtlMs: 60_000,
  pruneBackoffMs: 60_000,
  maxIHaveIds: 500
})

export function resolveGossipOptions (partial: Partial<GossipOptions> = {}): GossipOptions {
  const options = { ...DEFAULT_GOSSIP_OPTIONS, ...partial }
  for (const [key, value] of Object.entries(options)) {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`gossip.${key} must be an integer >= 0, got ${String(value)}`)
  }
  if (!(options.dLo <= options.d && options.d <= options.dHi)) {
    throw new RangeError(`gossip degrees must satisfy dLo <= d <= dHi, got ${options.dLo} <= ${options.d} <= ${options.dHi}`)
  }
  if (options.heartbeatMs < 1) throw new RangeError('gossip.heartbeatMs must be >= 1')
  if (options.historyGossip > options.historyLength) throw new RangeError('gossip.historyGossip must be <= gossip.historyLength')
  return options
}

/** The simulated adapter's wording of OverlayNotRunningError; it names the node that refused. */
export function overlayNotRunning (peerId: PeerId, operation: string): OverlayNotRunningError {
  return new OverlayNotRunningError(`overlay ${peerId} is not running: cannot ${operation}`, { peerId })
}

// The errors below only the simulated adapter raises; the shared ones are in overlay-errors.ts.

/** The remote end aborted the stream (e.g. it tried to send an oversized frame). */
export class StreamResetError extends Error {
  override name = 'StreamResetError'
}

export class DialError extends Error {
  override name = 'DialError'
  constructor (readonly peerId: PeerId, readonly reason: 'unreachable' | 'refused' | 'unknown-peer' | 'self' | 'stopped', detail: string) {
    super(`dial ${peerId} failed (${reason}): ${detail}`)
  }
}

export class StreamOpenError extends Error {
  override name = 'StreamOpenError'
}

export class AbortError extends Error {
  override name = 'AbortError'
  constructor (operation: string) {
    super(`${operation} was aborted`)
  }
}

/** A topic message as it travels; one object shared by every hop (never mutated). */
export interface MessageRpc {
  kind: 'message'
  /** gossipsub message id: author and sequence number. */
  id: string
  /** The same identity as a number unique in the network: cheaper map keys for seen-caches. */
  key: number
  topic: string
  from: PeerId
  data: Uint8Array
}

export type GossipRpc =
  | MessageRpc
  | { kind: 'subscribe', topics: string[] }
  | { kind: 'unsubscribe', topic: string }
  | { kind: 'graft', topic: string }
  | { kind: 'prune', topic: string }
  | { kind: 'ihave', topic: string, ids: number[] }
  | { kind: 'iwant', ids: number[] }

type MessageHandler = (message: OverlayMessage) => void
type PeerListener = (event: PeerEvent) => void

interface TopicState {
  readonly handlers: Set<MessageHandler>
  readonly mesh: Set<PeerId>
}

interface FanoutState {
  readonly peers: Set<PeerId>
  lastPublishMs: number
}

/** Runs every callback, then throws the first error any of them threw: one bad handler can't stop the rest. */
function callAll<T> (callbacks: Iterable<(value: T) => void>, value: T): void {
  let failure: unknown
  let failed = false
  for (const callback of [...callbacks]) {
    try { callback(value) } catch (error) {
      if (!failed) { failure = error; failed = true }
    }
  }
  if (failed) throw failure
}

/** Up to `count` items of `items` chosen uniformly (partial Fisher-Yates); mutates `items`. */
function sample<T> (items: T[], count: number, random: Random): T[] {
  const k = Math.min(count, items.length)
  for (let i = 0; i < k; i++) {
    const j = i + random.int(items.length - i)
    const swap = items[i]!
    items[i] = items[j]!
    items[j] = swap
  }
  items.length = k
  return items
}

function bytesOfTopic (topic: string): number {
  return RPC_HEADER_BYTES + topic.length
}

export function rpcBytes (rpc: GossipRpc): number {
  switch (rpc.kind) {
    case 'message': return RPC_HEADER_BYTES + rpc.topic.length + rpc.data.byteLength
    case 'subscribe': return rpc.topics.reduce((sum, topic) => sum + topic.length + 2, RPC_HEADER_BYTES)
    case 'ihave': return bytesOfTopic(rpc.topic) + rpc.ids.length * MESSAGE_ID_BYTES
    case 'iwant': return RPC_HEADER_BYTES + rpc.ids.length * MESSAGE_ID_BYTES
    default: return bytesOfTopic(rpc.topic)
  }
}

function checkTopic (topic: unknown): asserts topic is string {
  if (typeof topic !== 'string' || topic.length === 0) throw new TypeError('topic must be a non-empty string')
}

/**
 * One simulated node's overlay. Made by `SimNetwork.createOverlay(id)`; everything it does on the
 * wire goes through the network, so latency, loss, partitions and crashes apply.
 */
export class SimOverlay implements Overlay {
  readonly peerId: PeerId
  private readonly options: GossipOptions
  private readonly random: Random
  private readonly topics = new Map<string, TopicState>()
  private readonly validators = new Map<string, TopicValidator>()
  private readonly streamHandlers = new Map<string, (stream: FrameStream) => void>()
  private readonly peerListeners = new Set<PeerListener>()
  /** Topics each connected peer subscribes to, and the reverse index. */
  private readonly peerTopics = new Map<PeerId, Set<string>>()
  private readonly topicPeers = new Map<string, Set<PeerId>>()
  private readonly fanout = new Map<string, FanoutState>()
  /** message key → expiry; insertion order is expiry order, so pruning walks from the front. */
  private readonly seen = new Map<number, number>()
  /** message key → when an IWANT for it may be sent again. */
  private readonly requested = new Map<number, number>()
  /** `${topic}\n${peer}` → end of the prune back-off. */
  private readonly backoff = new Map<string, number>()
  /** Message cache: windows of ids, newest first, and the messages themselves (for IWANT). */
  private history: number[][] = [[]]
  private readonly cached = new Map<number, MessageRpc>()
  private nextSeqno = 0
  private heartbeatTimer: TimerHandle | undefined
  private readonly runHeartbeat = (): void => { this.heartbeat() }

  constructor (private readonly network: SimNetwork, private readonly node: SimNode, options: GossipOptions) {
    this.peerId = node.id
    this.options = options
    this.random = network.random.fork(`gossip:${node.id}`)
    const hooks: SimNodeHooks = {
      connectionOpened: (peer) => { this.onConnectionOpened(peer) },
      connectionClosed: (peer) => { this.onConnectionClosed(peer) },
      receiveRpc: (from, rpc) => { this.onRpc(from, rpc) },
      streamHandler: (protocol) => this.streamHandlers.get(protocol),
      halt: () => { this.cancelHeartbeat() },
      reset: () => { this.forgetEverything() },
      started: () => { this.scheduleFirstHeartbeat() }
    }
    node.hooks = hooks
  }

  // ---- lifecycle -------------------------------------------------------------------------------

  async start (): Promise<void> {
    this.network.startNode(this.node)
  }

  async stop (): Promise<void> {
    if (this.node.state !== 'started') return
    this.cancelHeartbeat()
    this.network.stopNode(this.node)
    this.fanout.clear()
    this.requested.clear()
  }

  /** 'started', 'stopped' or 'crashed' (the last only through SimNetwork.crash). */
  get state (): SimNode['state'] {
    return this.node.state
  }

  // ---- topics ----------------------------------------------------------------------------------

  subscribe (topic: string, handler: MessageHandler): Unsubscribe {
    checkTopic(topic)
    if (typeof handler !== 'function') throw new TypeError('subscribe: handler must be a function')
    let state = this.topics.get(topic)
    if (state === undefined) {
      state = { handlers: new Set(), mesh: new Set() }
      this.topics.set(topic, state)
      if (this.node.state === 'started') this.join(topic, state)
    }
    const ownState = state
    ownState.handlers.add(handler)
    return () => {
      if (!ownState.handlers.delete(handler) || ownState.handlers.size > 0) return
      if (this.topics.get(topic) === ownState) this.leave(topic, ownState)
    }
  }

  setValidator (topic: string, validator: TopicValidator | undefined): void {
    checkTopic(topic)
    if (validator === undefined) this.validators.delete(topic)
    else this.validators.set(topic, validator)
  }

  async publish (topic: string, data: Uint8Array): Promise<void> {
    checkTopic(topic)
    if (!(data instanceof Uint8Array)) throw new TypeError('publish: data must be a Uint8Array')
    if (data.byteLength > MAX_MESSAGE_BYTES) throw new MessageTooLargeError(data.byteLength, MAX_MESSAGE_BYTES, 'message')
    if (this.node.state !== 'started') throw overlayNotRunning(this.peerId, 'publish')
    const rpc: MessageRpc = {
      kind: 'message', id: `${this.peerId}:${++this.nextSeqno}`, key: this.network.nextMessageKey(), topic, from: this.peerId, data: data.slice()
    }
    this.markSeen(rpc.key)
    this.remember(rpc)
    const bytes = rpcBytes(rpc)
    for (const peer of this.publishTargets(topic)) this.network.sendRpc(this.node, peer, rpc, bytes, true)
  }

  private publishTargets (topic: string): Iterable<PeerId> {
    const state = this.topics.get(topic)
    if (state !== undefined && state.mesh.size > 0) return state.mesh
    if (state !== undefined) return this.pickTopicPeers(topic, this.options.d, new Set())
    let fanout = this.fanout.get(topic)
    if (fanout === undefined) {
      fanout = { peers: new Set(), lastPublishMs: 0 }
      this.fanout.set(topic, fanout)
    }
    fanout.lastPublishMs = this.network.clock.now()
    if (fanout.peers.size < this.options.d) {
      for (const peer of this.pickTopicPeers(topic, this.options.d - fanout.peers.size, fanout.peers)) fanout.peers.add(peer)
    }
    return fanout.peers
  }

  /** Random connected subscribers of `topic`, excluding `exclude` and peers in prune back-off. */
  private pickTopicPeers (topic: string, count: number, exclude: Set<PeerId>): PeerId[] {
    const peers = this.topicPeers.get(topic)
    if (peers === undefined || count <= 0) return []
    const now = this.network.clock.now()
    const candidates: PeerId[] = []
    for (const peer of peers) {
      if (exclude.has(peer)) continue
      const backoffUntil = this.backoff.get(`${topic}\n${peer}`)
      if (backoffUntil !== undefined && backoffUntil > now) continue
      candidates.push(peer)
    }
    return sample(candidates, count, this.random)
  }

  /** Announce the subscription and graft up to D known topic peers at once (gossipsub JOIN). */
  private join (topic: string, state: TopicState): void {
    for (const peer of this.node.connections.keys()) this.sendControl(peer, { kind: 'subscribe', topics: [topic] })
    const fanout = this.fanout.get(topic)
    this.fanout.delete(topic)
    if (fanout !== undefined) {
      for (const peer of fanout.peers) if (state.mesh.size < this.options.d) state.mesh.add(peer)
    }
    for (const peer of this.pickTopicPeers(topic, this.options.d - state.mesh.size, state.mesh)) state.mesh.add(peer)
    for (const peer of state.mesh) this.sendControl(peer, { kind: 'graft', topic })
  }

  private leave (topic: string, state: TopicState): void {
    this.topics.delete(topic)
    if (this.node.state !== 'started') return
    for (const peer of state.mesh) this.prune(topic, peer)
    for (const peer of this.node.connections.keys()) this.sendControl(peer, { kind: 'unsubscribe', topic })
  }

  private prune (topic: string, peer: PeerId): void {
    this.backoff.set(`${topic}\n${peer}`, this.network.clock.now() + this.options.pruneBackoffMs)
    this.sendControl(peer, { kind: 'prune', topic })
  }

  private sendControl (peer: PeerId, rpc: GossipRpc): void {
    this.network.sendRpc(this.node, peer, rpc, rpcBytes(rpc), false)
  }

  // ---- receiving -------------------------------------------------------------------------------

  private onRpc (from: PeerId, rpc: GossipRpc): void {
    switch (rpc.kind) {
      case 'message': this.onMessage(from, rpc); break
      case 'subscribe': for (const topic of rpc.topics) this.addPeerTopic(from, topic); break
      case 'unsubscribe': this.removePeerTopic(from, rpc.topic); break
      case 'graft': this.onGraft(from, rpc.topic); break
      case 'prune':
        this.topics.get(rpc.topic)?.mesh.delete(from)
        this.backoff.set(`${rpc.topic}\n${from}`, this.network.clock.now() + this.options.pruneBackoffMs)
        break
      case 'ihave': this.onIHave(from, rpc.topic, rpc.ids); break
      case 'iwant': this.onIWant(from, rpc.ids); break
    }
  }

  private onGraft (from: PeerId, topic: string): void {
    const state = this.topics.get(topic)
    const backoffUntil = this.backoff.get(`${topic}\n${from}`)
    if (state === undefined || (backoffUntil !== undefined && backoffUntil > this.network.clock.now())) {
      this.prune(topic, from)
      return
    }
    // Accepted even above D_hi; the next heartbeat trims the mesh (gossipsub v1.1 §GRAFT).
    this.addPeerTopic(from, topic)
    state.mesh.add(from)
  }

  private onMessage (from: PeerId, rpc: MessageRpc): void {
    if (this.seen.has(rpc.key)) return
    const state = this.topics.get(rpc.topic)
    if (state === undefined) return
    this.markSeen(rpc.key)
    // Every node gets the message's one payload, read-only, as each libp2p node gets one buffer per
    // message for its validator and its subscribers: what a node decodes from it can be kept by
    // payload (node.ts shares decoded heartbeats that way, so 10,000 simulated members do not each
    // hold their own copy of every heartbeat).
    const message = { topic: rpc.topic, from: rpc.from, data: rpc.data }
    const validator = this.validators.get(rpc.topic)
    if (validator !== undefined) {
      let verdict: string
      try { verdict = validator(message) } catch { verdict = 'reject' }
      if (verdict !== 'accept') return
    }
    this.remember(rpc)
    const bytes = rpcBytes(rpc)
    for (const peer of state.mesh) {
      if (peer !== from && peer !== rpc.from) this.network.sendRpc(this.node, peer, rpc, bytes, true)
    }
    callAll(state.handlers, message)
  }

  private onIHave (from: PeerId, topic: string, ids: number[]): void {
    if (!this.topics.has(topic)) return
    const now = this.network.clock.now()
    const wanted: number[] = []
    for (const id of ids) {
      if (wanted.length >= this.options.maxIHaveIds) break
      if (this.seen.has(id)) continue
      const again = this.requested.get(id)
      if (again !== undefined && again > now) continue
      this.requested.set(id, now + this.options.heartbeatMs)
      wanted.push(id)
    }
    if (wanted.length > 0) this.network.sendRpc(this.node, from, { kind: 'iwant', ids: wanted }, RPC_HEADER_BYTES + wanted.length * MESSAGE_ID_BYTES, true)
  }

  private onIWant (from: PeerId, ids: number[]): void {
    const limit = Math.min(ids.length, this.options.maxIHaveIds)
    for (let i = 0; i < limit; i++) {
      const rpc = this.cached.get(ids[i]!)
      if (rpc !== undefined) this.network.sendRpc(this.node, from, rpc, rpcBytes(rpc), true)
    }
  }

  private markSeen (key: number): void {
    this.seen.set(key, this.network.clock.now() + this.options.seenTtlMs)
    if (this.seen.size > this.options.maxSeenEntries) {
      const oldest = this.seen.keys().next()
      if (oldest.done !== true) this.seen.delete(oldest.value)
    }
  }

  private remember (rpc: MessageRpc): void {
    this.history[0]!.push(rpc.key)
    this.cached.set(rpc.key, rpc)
  }

  private addPeerTopic (peer: PeerId, topic: string): void {
    if (!this.node.connections.has(peer)) return
    let topics = this.peerTopics.get(peer)
    if (topics === undefined) { topics = new Set(); this.peerTopics.set(peer, topics) }
    topics.add(topic)
    let peers = this.topicPeers.get(topic)
    if (peers === undefined) { peers = new Set(); this.topicPeers.set(topic, peers) }
    peers.add(peer)
  }

  private removePeerTopic (peer: PeerId, topic: string): void {
    this.peerTopics.get(peer)?.delete(topic)
    const peers = this.topicPeers.get(topic)
    if (peers !== undefined) {
      peers.delete(peer)
      if (peers.size === 0) this.topicPeers.delete(topic)
    }
    this.topics.get(topic)?.mesh.delete(peer)
    this.fanout.get(topic)?.peers.delete(peer)
  }

  // ---- connections -----------------------------------------------------------------------------

  private onConnectionOpened (peer: PeerId): void {
    if (this.topics.size > 0) this.sendControl(peer, { kind: 'subscribe', topics: [...this.topics.keys()] })
    callAll(this.peerListeners, { type: 'peer.connected', peerId: peer })
  }

  private onConnectionClosed (peer: PeerId): void {
    const topics = this.peerTopics.get(peer)
    if (topics !== undefined) {
      for (const topic of [...topics]) this.removePeerTopic(peer, topic)
      this.peerTopics.delete(peer)
    }
    for (const state of this.topics.values()) state.mesh.delete(peer)
    callAll(this.peerListeners, { type: 'peer.disconnected', peerId: peer })
  }

  // ---- heartbeat -------------------------------------------------------------------------------

  /** Heartbeats are phase-randomised per node so 10,000 nodes don't beat in the same millisecond. */
  private scheduleFirstHeartbeat (): void {
    this.cancelHeartbeat()
    const phaseMs = Math.floor(this.random.next() * this.options.heartbeatMs)
    this.heartbeatTimer = this.node.clock.setTimeout(this.runHeartbeat, phaseMs)
  }

  private cancelHeartbeat (): void {
    if (this.heartbeatTimer !== undefined) this.node.clock.clearTimeout(this.heartbeatTimer)
    this.heartbeatTimer = undefined
  }

  private heartbeat (): void {
    this.heartbeatTimer = this.node.clock.setTimeout(this.runHeartbeat, this.options.heartbeatMs)
    const now = this.network.clock.now()
    for (const [topic, state] of this.topics) this.maintainMesh(topic, state)
    this.emitGossip()
    this.shiftHistory()
    this.expire(now)
  }

  private maintainMesh (topic: string, state: TopicState): void {
    const { d, dLo, dHi } = this.options
    if (state.mesh.size < dLo) {
      for (const peer of this.pickTopicPeers(topic, d - state.mesh.size, state.mesh)) {
        state.mesh.add(peer)
        this.sendControl(peer, { kind: 'graft', topic })
      }
    } else if (state.mesh.size > dHi) {
      const keep = new Set(sample([...state.mesh], d, this.random))
      for (const peer of [...state.mesh]) {
        if (keep.has(peer)) continue
        state.mesh.delete(peer)
        this.prune(topic, peer)
      }
    }
  }

  /** IHAVE the ids of the last historyGossip windows to up to D_lazy non-mesh topic peers. */
  private emitGossip (): void {
    if (this.options.dLazy === 0) return
    let byTopic: Map<string, number[]> | undefined
    for (let w = 0; w < this.options.historyGossip && w < this.history.length; w++) {
      for (const id of this.history[w]!) {
        const rpc = this.cached.get(id)
        if (rpc === undefined || !this.topics.has(rpc.topic)) continue
        byTopic ??= new Map()
        const ids = byTopic.get(rpc.topic)
        if (ids === undefined) byTopic.set(rpc.topic, [id])
        else if (ids.length < this.options.maxIHaveIds) ids.push(id)
      }
    }
    if (byTopic === undefined) return
    for (const [topic, ids] of byTopic) {
      const mesh = this.topics.get(topic)!.mesh
      for (const peer of this.pickTopicPeers(topic, this.options.dLazy, mesh)) {
        const rpc: GossipRpc = { kind: 'ihave', topic, ids }
        this.network.sendRpc(this.node, peer, rpc, rpcBytes(rpc), true)
      }
    }
  }

  private shiftHistory (): void {
    this.history.unshift([])
    while (this.history.length > this.options.historyLength) {
      for (const id of this.history.pop()!) this.cached.delete(id)
    }
  }

  /** Drops expired seen ids, IWANT marks, back-offs and fanouts. Each map is bounded by its own size. */
  private expire (now: number): void {
    for (const [id, expiry] of this.seen) {
      if (expiry > now) break
      this.seen.delete(id)
    }
    for (const [id, again] of this.requested) if (again <= now) this.requested.delete(id)
    for (const [key, until] of this.backoff) if (until <= now) this.backoff.delete(key)
    for (const [topic, state] of this.fanout) {
      if (state.lastPublishMs + this.options.fanoutTtlMs <= now) this.fanout.delete(topic)
    }
  }

  /** Restart after a crash: the process is new, so nothing survives but the id. */
  private forgetEverything (): void {
    this.cancelHeartbeat()
    for (const map of [this.topics, this.validators, this.streamHandlers, this.peerTopics, this.topicPeers,
      this.fanout, this.seen, this.requested, this.backoff, this.cached] as Array<Map<unknown, unknown>>) map.clear()
    this.peerListeners.clear()
    this.history = [[]]
  }

  // ---- streams and peers -----------------------------------------------------------------------

  handleStream (protocol: string, handler: (stream: FrameStream) => void): void {
    if (typeof protocol !== 'string' || protocol.length === 0) throw new TypeError('handleStream: protocol must be a non-empty string')
    if (typeof handler !== 'function') throw new TypeError('handleStream: handler must be a function')
    this.streamHandlers.set(protocol, handler)
  }

  unhandleStream (protocol: string): void {
    this.streamHandlers.delete(protocol)
  }

  async openStream (peer: PeerId, protocol: string, options: { signal?: AbortSignal } = {}): Promise<FrameStream> {
    if (typeof protocol !== 'string' || protocol.length === 0) throw new TypeError('openStream: protocol must be a non-empty string')
    if (this.node.state !== 'started') throw overlayNotRunning(this.peerId, 'openStream')
    return await this.network.openStream(this.node, peer, protocol, options.signal)
  }

  async dial (peer: PeerId, options: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.node.state !== 'started') throw overlayNotRunning(this.peerId, 'dial')
    await this.network.dial(this.node, peer, options.signal)
  }

  connectedPeers (): PeerId[] {
    return this.node.state === 'started' ? [...this.node.connections.keys()] : []
  }

  onPeerEvent (listener: PeerListener): Unsubscribe {
    if (typeof listener !== 'function') throw new TypeError('onPeerEvent: listener must be a function')
    this.peerListeners.add(listener)
    return () => { this.peerListeners.delete(listener) }
  }

  rttMs (peer: PeerId): number | undefined {
    return this.node.state === 'started' ? this.node.connections.get(peer)?.rttMs() : undefined
  }

  stats (): OverlayStats {
    return { ...this.node.stats }
  }

  /** Current mesh peers for a topic (for tests and checkers). */
  meshPeers (topic: string): PeerId[] {
    return [...(this.topics.get(topic)?.mesh ?? [])]
  }
}
