// Replication of the node's StateStore (src/protocols/state-crdt.ts): every local write is signed,
// made durable, then gossiped; every op received is decoded, verified and merged; anti-entropy
// repairs what gossip missed.
//
//   write(c, k, v) ── sign ── persistence.apply (durable) ── publish ops frame on <net>/state
//   gossip ops ── validator: decode, bounds ── subscriber: verify + merge (+ persist)
//   anti-entropy, with one established neighbour when its session comes up and every
//   `antiEntropyIntervalMs` with a random one, over /form-anycast/state/1.0.0:
//       A → B  summary(A)                 (per-collection digests and bucket digests)
//       B → A  ops B has in the buckets that differ, then request(those buckets)
//       A → B  ops A has in the requested buckets; both sides close
//   so one round leaves both replicas with the union of their registers (the merge is a CRDT:
//   order and duplicates do not matter).
//
// Every frame from outside is untrusted: a frame that does not decode, an op that fails
// validation or its signature, is dropped and counted (`state_ops_rejected_total{reason}`); the
// stream is closed; nothing throws out of a handler. Frames and streams are bounded.
import type { Clock, Counter, FrameStream, Logger, Metrics, Overlay, OverlayMessage, PeerId, Random, Signer, Store, Unsubscribe, Verifier } from './ports.ts'
import {
  HlcClock, StateOpError, StateStore, deleteOp, putOp, signStateOp,
  type Collection, type JsonObject, type SignedStateOp, type StateChange
} from '../protocols/state-crdt.ts'
import { StateFrameError, decodeStateFrame, encodeStateFrame, packStateOps, type StateFrame } from '../protocols/state-codec.ts'
import { createStatePersistence, type StatePersistence } from './state-persistence.ts'
import { MemoryStore } from './memory-store.ts'

export const STATE_SYNC_PROTOCOL = '/form-anycast/state/1.0.0'
export const DEFAULT_ANTI_ENTROPY_INTERVAL_MS = 5_000
/** A sync exchange that has not finished by then is abandoned. */
const SYNC_TIMEOUT_MS = 10_000
/** Ops one sync answer carries at most (the rest wait for the next round). */
const MAX_SYNC_OPS = 8_192
const MAX_SYNC_FRAMES = 64

export interface StateReplicatorComponents {
  clock: Clock
  random: Random
  overlay: Overlay
  signer: Signer
  verifier: Verifier
  logger: Logger
  metrics: Metrics
}

export interface StateReplicatorConfig {
  /** The gossip topic, e.g. form-anycast/<network>/state. */
  topic: string
  /** Durable storage; default an in-memory Store (the simulator's). */
  store?: Store
  antiEntropyIntervalMs?: number
  /** Neighbours with an established session: anti-entropy partners. */
  peers: () => PeerId[]
}

export class StateReplicator {
  readonly hlc: HlcClock
  readonly state: StateStore
  private readonly persistence: StatePersistence
  private readonly store: Store
  private readonly unsubscribes: Unsubscribe[] = []
  private readonly counters: { rejected: Counter, applied: Counter, published: Counter, syncs: Counter }
  /** Ops the validator decoded, by payload, so delivery does not decode them again. */
  private readonly decoded = new WeakMap<Uint8Array, SignedStateOp[]>()
  private timer: unknown
  private running = false
  private resolveFirstSync!: () => void
  private readonly firstSync = new Promise<void>((resolve) => { this.resolveFirstSync = resolve })
  /** At least one anti-entropy exchange has completed: this replica has seen a neighbour's state. */
  hasSynced = false
  private storeFailed = false

  constructor (private readonly components: StateReplicatorComponents, private readonly config: StateReplicatorConfig) {
    this.hlc = new HlcClock(components.signer.nodeId, () => components.clock.now())
    this.state = new StateStore({ verifier: components.verifier, clock: this.hlc })
    this.store = config.store ?? new MemoryStore()
    this.persistence = createStatePersistence({ store: this.store, state: this.state })
    const { metrics } = components
    this.counters = {
      rejected: metrics.counter('state_ops_rejected_total', 'State ops or frames dropped: malformed, bad signature, too far ahead', ['reason']),
      applied: metrics.counter('state_ops_applied_total', 'State ops merged into the local replica', ['via']),
      published: metrics.counter('state_ops_published_total', 'Local state writes gossiped'),
      syncs: metrics.counter('state_syncs_total', 'Anti-entropy exchanges', ['role', 'outcome'])
    }
  }

  /** Load the stored state, then listen. Rejects (StatePersistenceError) when the store cannot be read. */
  async start (): Promise<void> {
    if (this.running) return
    await this.store.open()
    await this.persistence.start()
    this.running = true
    const { overlay } = this.components
    overlay.setValidator(this.config.topic, (message) => this.validate(message))
    this.unsubscribes.push(overlay.subscribe(this.config.topic, (message) => { void this.receive(message) }))
    overlay.handleStream(STATE_SYNC_PROTOCOL, (stream) => { void this.answerSync(stream) })
    this.schedule()
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    if (this.timer !== undefined) this.components.clock.clearTimeout(this.timer as never)
    for (const unsubscribe of this.unsubscribes.splice(0)) unsubscribe()
    this.components.overlay.unhandleStream(STATE_SYNC_PROTOCOL)
    this.components.overlay.setValidator(this.config.topic, undefined)
    // A failed store has nothing left to flush: stopping still closes it, and says so once.
    try { await this.persistence.stop() } catch (error) {
      this.components.logger.error('state store failed before stop; ops not yet acknowledged are lost', { error: (error as Error).message })
    }
    await this.store.close()
  }

  /**
   * Write a register (undefined: delete it). Resolves once the op is durable — the moment a
   * caller may act on it (acknowledge a lease, announce) — and it has been handed to gossip.
   */
  async write (collection: Collection, key: string, value: JsonObject | undefined): Promise<SignedStateOp> {
    if (!this.running) throw new Error('state replicator is not running')
    const op = value === undefined ? deleteOp(this.hlc, collection, key) : putOp(this.hlc, collection, key, value)
    const signed = signStateOp(op, this.components.signer)
    await this.persistence.apply(signed, { trusted: true })
    this.counters.applied.inc({ via: 'local' })
    this.counters.published.inc()
    await this.components.overlay.publish(this.config.topic, encodeStateFrame({ type: 'ops', ops: [signed] }))
    return signed
  }

  get (collection: Collection, key: string): JsonObject | undefined { return this.state.get(collection, key) }

  /** Resolves after the first completed anti-entropy exchange (never, for a node with no neighbour). */
  async synced (): Promise<void> { await this.firstSync }

  private markSynced (): void {
    if (this.hasSynced) return
    this.hasSynced = true
    this.resolveFirstSync()
  }

  onChange (listener: (change: StateChange) => void): Unsubscribe { return this.state.onChange(listener) }

  /** Run one anti-entropy exchange with `peer` now (e.g. when its session has just come up). */
  async syncWith (peer: PeerId): Promise<void> {
    if (!this.running) return
    const controller = new AbortController()
    const timer = this.components.clock.setTimeout(() => controller.abort(), SYNC_TIMEOUT_MS)
    let stream: FrameStream | undefined
    try {
      stream = await this.components.overlay.openStream(peer, STATE_SYNC_PROTOCOL, { signal: controller.signal })
      const frames = this.frameQueue(stream, controller.signal)
      stream.send(encodeStateFrame({ type: 'summary', summary: this.state.summary() }))
      // Their ops for the buckets that differ, then their request for ours.
      for (let count = 0; count < MAX_SYNC_FRAMES + 1; count++) {
        const frame = await frames.next()
        if (frame === undefined) break
        if (frame.type === 'ops') { await this.merge(frame.ops, 'sync', peer); continue }
        if (frame.type === 'request') {
          for (const ops of packStateOps(this.state.opsInBuckets(frame.requests, MAX_SYNC_OPS))) stream.send(encodeStateFrame(ops))
          break
        }
        this.reject('unexpected-frame', peer)
        break
      }
      this.counters.syncs.inc({ role: 'initiator', outcome: 'done' })
      this.markSynced()
    } catch (error) {
      this.counters.syncs.inc({ role: 'initiator', outcome: 'failed' })
      this.components.logger.debug('state sync failed', { peer, error: (error as Error).message })
    } finally {
      this.components.clock.clearTimeout(timer)
      stream?.close()
    }
  }

  // ---- receiving -------------------------------------------------------------------------------

  private validate (message: OverlayMessage): 'accept' | 'reject' | 'ignore' {
    let frame: StateFrame
    try { frame = decodeStateFrame(message.data) } catch (error) {
      this.reject(error instanceof StateFrameError || error instanceof StateOpError ? 'malformed' : 'error', message.from)
      return 'reject'
    }
    if (frame.type !== 'ops') { this.reject('unexpected-frame', message.from); return 'reject' }
    this.decoded.set(message.data, frame.ops)
    return 'accept'
  }

  private async receive (message: OverlayMessage): Promise<void> {
    let ops = this.decoded.get(message.data)
    if (ops === undefined) {
      try {
        const frame = decodeStateFrame(message.data)
        if (frame.type !== 'ops') return
        ops = frame.ops
      } catch { return }
    }
    await this.merge(ops, 'gossip', message.from)
  }

  private async merge (ops: readonly SignedStateOp[], via: 'gossip' | 'sync', from: PeerId): Promise<void> {
    if (!this.running) return
    for (const signed of ops) {
      try {
        const result = await this.persistence.apply(signed)
        if (result === 'applied') this.counters.applied.inc({ via })
      } catch (error) {
        if (error instanceof StateOpError) this.reject(error.message.includes('signature') ? 'bad-signature' : 'invalid', from)
        else if ((error as Error).name === 'HlcDriftError') this.reject('clock-drift', from)
        else {
          // The store failed (StatePersistenceError): nothing more can be made durable. Stop
          // merging, say so loudly once; the node's own writes reject from here on.
          this.counters.rejected.inc({ reason: 'store-failed' })
          if (!this.storeFailed) this.components.logger.error('state store failed; received ops are no longer merged', { error: (error as Error).message })
          this.storeFailed = true
          return
        }
      }
    }
  }

  private reject (reason: string, from: PeerId): void {
    this.counters.rejected.inc({ reason })
    this.components.logger.debug('dropped a state op or frame', { from, reason })
  }

  // ---- anti-entropy --------------------------------------------------------------------------

  private schedule (): void {
    if (!this.running) return
    const interval = this.config.antiEntropyIntervalMs ?? DEFAULT_ANTI_ENTROPY_INTERVAL_MS
    const delay = interval * (0.75 + 0.5 * this.components.random.next())
    this.timer = this.components.clock.setTimeout(() => {
      const peers = this.config.peers()
      if (peers.length > 0) void this.syncWith(peers[Math.floor(this.components.random.next() * peers.length)]!)
      this.schedule()
    }, delay)
  }

  /** The answering side: their summary in, our differing ops and our request out, their ops in. */
  private async answerSync (stream: FrameStream): Promise<void> {
    const controller = new AbortController()
    const timer = this.components.clock.setTimeout(() => controller.abort(), SYNC_TIMEOUT_MS)
    try {
      const frames = this.frameQueue(stream, controller.signal)
      const first = await frames.next()
      if (first?.type !== 'summary') { if (first !== undefined) this.reject('unexpected-frame', stream.remotePeer); return }
      const requests = this.state.diffSummary(first.summary)
      for (const ops of packStateOps(this.state.opsInBuckets(requests, MAX_SYNC_OPS))) stream.send(encodeStateFrame(ops))
      stream.send(encodeStateFrame({ type: 'request', requests }))
      for (let count = 0; count < MAX_SYNC_FRAMES; count++) {
        const frame = await frames.next()
        if (frame === undefined) break
        if (frame.type !== 'ops') { this.reject('unexpected-frame', stream.remotePeer); break }
        await this.merge(frame.ops, 'sync', stream.remotePeer)
      }
      this.counters.syncs.inc({ role: 'responder', outcome: 'done' })
      this.markSynced()
    } catch (error) {
      this.counters.syncs.inc({ role: 'responder', outcome: 'failed' })
      this.components.logger.debug('state sync answer failed', { peer: stream.remotePeer, error: (error as Error).message })
    } finally {
      this.components.clock.clearTimeout(timer)
      stream.close()
    }
  }

  /** Frames of a stream, decoded, one at a time; undefined once it closes or is aborted. */
  private frameQueue (stream: FrameStream, signal: AbortSignal): { next: () => Promise<StateFrame | undefined> } {
    const queue: Array<StateFrame | undefined> = []
    let waiting: ((frame: StateFrame | undefined) => void) | undefined
    const push = (frame: StateFrame | undefined): void => {
      if (waiting !== undefined) { const resolve = waiting; waiting = undefined; resolve(frame) } else if (queue.length <= MAX_SYNC_FRAMES) queue.push(frame)
    }
    stream.onFrame((bytes) => {
      try { push(decodeStateFrame(bytes)) } catch {
        this.reject('malformed', stream.remotePeer)
        stream.close()
        push(undefined)
      }
    })
    stream.onClose(() => push(undefined))
    signal.addEventListener('abort', () => push(undefined), { once: true })
    return {
      next: async () => {
        if (queue.length > 0) return queue.shift()
        if (stream.closed || signal.aborted) return undefined
        return await new Promise((resolve) => { waiting = resolve })
      }
    }
  }
}
