// Durable replicated state: loads a StateStore from a Store at start-up and writes every op the
// StateStore applies, whoever applied it (a local write, gossip, anti-entropy), under
// `op/<collection>/<key>` — the winning op of each register, encoded as a SignedStateOp.
//
// Write before acknowledge (docs/state-contract.md §2): `apply` resolves only once the op's batch
// is in the Store, so a caller that acknowledges a lease or makes an announcement after awaiting it
// can never acknowledge something a crash then loses. `flush` gives the same promise for ops
// applied straight to the StateStore. Writes are grouped: ops applied while a batch is being
// written go out together in the next one (one LevelDB log record, one fsync when sync is on), and
// a register written twice before its batch goes out is written once.
//
// The in-memory StateStore moves first and the disk follows; other readers of the StateStore may
// see an op before it is durable. Anything that must not be seen before it is durable (an
// announcement, a lease acknowledgement, a gossip publication of our own op) waits for `apply`.
// A failed write leaves memory ahead of the disk, so the persistence stops: every later apply and
// flush rejects with StatePersistenceError, and the node should restart (it reloads what is durable
// and anti-entropy fetches the rest from its neighbours).
import { decodeSignedOp, encodeSignedOp, StateOpError } from '../protocols/state-codec.ts'
import type { ApplyOptions, ApplyResult, Collection, SignedStateOp, StateStore } from '../protocols/state-crdt.ts'
import type { Store, StoreOp, Unsubscribe } from './ports.ts'

export const OP_KEY_PREFIX = 'op/'
/** Most records read at start-up; a bigger store is refused rather than loaded without bound. */
export const MAX_LOADED_OPS = 1_000_000

export function opStoreKey (collection: Collection, key: string): string {
  return `${OP_KEY_PREFIX}${collection}/${key}`
}

export class StatePersistenceError extends Error {
  override name = 'StatePersistenceError'
  constructor (message: string, options?: { cause?: unknown }) { super(`state persistence: ${message}`, options) }
}

export interface StateLoadReport {
  /** Records applied to the StateStore. */
  loaded: number
  /** Records that could not be used (corrupt, or filed under the wrong key), with the reason. */
  skipped: Array<{ key: string, reason: string }>
}

export interface StatePersistenceComponents {
  /** An open Store. */
  store: Store
  /** The node's StateStore, empty at start. */
  state: StateStore
}

interface Deferred {
  promise: Promise<void>
  resolve: () => void
  reject: (error: Error) => void
}

function deferred (): Deferred {
  let resolve!: () => void
  let reject!: (error: Error) => void
  const promise = new Promise<void>((res, rej) => { resolve = res; reject = rej })
  // Nobody may be waiting for a batch; its failure is reported by every later call instead.
  promise.catch(() => {})
  return { promise, resolve, reject }
}

export class StatePersistence {
  private readonly store: Store
  private readonly state: StateStore
  private report: StateLoadReport | undefined
  private starting: Promise<StateLoadReport> | undefined
  private unsubscribe: Unsubscribe | undefined
  /** Writes not yet handed to the Store, per key (undefined value: delete). */
  private pending = new Map<string, Uint8Array | undefined>()
  /** Settles when the batch carrying `pending` is written. */
  private nextBatch: Deferred | undefined
  /** Settles when the batch being written now is written. */
  private currentBatch: Deferred | undefined
  private failure: StatePersistenceError | undefined
  private batchesWritten = 0

  constructor (components: StatePersistenceComponents) {
    if (components.store === undefined) throw new TypeError('state persistence: missing component "store"')
    if (components.state === undefined) throw new TypeError('state persistence: missing component "state"')
    this.store = components.store
    this.state = components.state
  }

  /**
   * Load every op from the Store into the StateStore (trusted: they were verified before they were
   * written), then start persisting what the StateStore applies. Idempotent.
   */
  async start (): Promise<StateLoadReport> {
    this.starting ??= this.load()
    return await this.starting
  }

  /** Waits for every pending write, then stops persisting. Idempotent; the Store stays open. */
  async stop (): Promise<void> {
    if (this.unsubscribe === undefined) return
    this.unsubscribe()
    this.unsubscribe = undefined
    await this.flush()
  }

  /** Apply an op and resolve once it (and everything applied before it) is durable. */
  async apply (signed: SignedStateOp, options?: ApplyOptions): Promise<ApplyResult> {
    this.checkRunning()
    const result = this.state.apply(signed, options)
    // Also for 'duplicate': gossip may have applied the same op a moment ago, still unwritten.
    await this.flush()
    return result
  }

  /** Resolves once every op applied so far is durable; rejects once a write has failed. */
  async flush (): Promise<void> {
    if (this.failure !== undefined) throw this.failure
    const waitFor = this.nextBatch ?? this.currentBatch
    if (waitFor !== undefined) await waitFor.promise
  }

  /** Drop tombstones older than the horizon from memory and disk (see StateStore.pruneTombstones). */
  async pruneTombstones (horizonMs: number): Promise<number> {
    this.checkRunning()
    const pruned = this.state.pruneTombstones(horizonMs)
    for (const { collection, key } of pruned) this.enqueue(opStoreKey(collection, key), undefined)
    await this.flush()
    return pruned.length
  }

  /** Load report of start(); undefined before it finished. */
  get loadReport (): StateLoadReport | undefined { return this.report }

  /** Batches written so far (group commit: fewer than the ops applied under load). */
  get batches (): number { return this.batchesWritten }

  private async load (): Promise<StateLoadReport> {
    const report: StateLoadReport = { loaded: 0, skipped: [] }
    let seen = 0
    for await (const [key, value] of this.store.entries(OP_KEY_PREFIX)) {
      if (++seen > MAX_LOADED_OPS) throw new StatePersistenceError(`more than ${MAX_LOADED_OPS} records under ${OP_KEY_PREFIX}`)
      const reason = this.loadRecord(key, value)
      if (reason === undefined) report.loaded++
      else report.skipped.push({ key, reason })
    }
    this.unsubscribe = this.state.onChange(({ signed }) => {
      this.enqueue(opStoreKey(signed.op.collection, signed.op.key), encodeSignedOp(signed))
    })
    this.report = report
    return report
  }

  private loadRecord (key: string, value: Uint8Array): string | undefined {
    try {
      const signed = decodeSignedOp(value)
      if (opStoreKey(signed.op.collection, signed.op.key) !== key) return `holds the op of ${opStoreKey(signed.op.collection, signed.op.key)}`
      this.state.apply(signed, { trusted: true })
      return undefined
    } catch (error) {
      if (error instanceof StateOpError) return error.message
      throw error
    }
  }

  private checkRunning (): void {
    if (this.failure !== undefined) throw this.failure
    if (this.unsubscribe === undefined) throw new StatePersistenceError('not started (call start() first) or already stopped')
  }

  private enqueue (key: string, value: Uint8Array | undefined): void {
    if (this.failure !== undefined) return
    this.pending.set(key, value)
    if (this.nextBatch !== undefined) return
    this.nextBatch = deferred()
    // Start after the current microtask, so ops applied in one synchronous burst share a batch.
    if (this.currentBatch === undefined) queueMicrotask(() => { void this.writeBatches() })
  }

  /** Writes batches one after another until nothing is pending; bounded by what callers apply. */
  private async writeBatches (): Promise<void> {
    while (this.nextBatch !== undefined && this.failure === undefined) {
      const batch = this.nextBatch
      const ops: StoreOp[] = [...this.pending].map(([key, value]) => value === undefined ? { type: 'del', key } : { type: 'put', key, value })
      this.pending = new Map()
      this.nextBatch = undefined
      this.currentBatch = batch
      try {
        await this.store.batch(ops)
        this.batchesWritten++
        batch.resolve()
      } catch (error) {
        this.failure = new StatePersistenceError(`writing ${ops.length} ops failed: ${(error as Error).message}`, { cause: error })
        batch.reject(this.failure)
        // Ops applied while this batch was being written wait on the next one: it will never come.
        const waiting = this.nextBatch as Deferred | undefined
        waiting?.reject(this.failure)
      }
      this.currentBatch = undefined
    }
  }
}

export function createStatePersistence (components: StatePersistenceComponents): StatePersistence {
  return new StatePersistence(components)
}
