// Keeps a Dataplane in step with the desired table: reads what the interface holds, diffs it
// against desiredDataplane(...) and applies the difference, on every route or membership change
// and periodically, so a hand change (`wg set … remove`, `ip addr del`) is repaired within one
// interval. One reconcile runs at a time; changes during one coalesce into a single next run.
import { diffDataplane, type DataplaneOp, type DataplaneRoute, type DataplaneState, type DesiredDataplane } from '../protocols/dataplane-table.ts'
import type { Clock, Counter, Dataplane, Logger, Metrics } from './ports.ts'

export const DEFAULT_RECONCILE_INTERVAL_MS = 5_000

export interface DataplaneReconcilerComponents {
  clock: Clock
  logger: Logger
  metrics: Metrics
  dataplane: Dataplane
}

export interface DataplaneReconcilerConfig {
  intervalMs: number
  desired: () => DesiredDataplane
}

/** GET /v1/dataplane and `form-anycast status`. */
export interface DataplaneView {
  kind: Dataplane['kind']
  /** The last read of the interface matched the desired table (after applying the diff). */
  matches: boolean
  desired: DataplaneState
  actual: DataplaneState | undefined
  routes: DataplaneRoute[]
  reconciles: number
  /** Reconciles that found the interface different from the table and changed it. */
  repairs: number
  opsApplied: number
  lastReconcileAtMs: number | undefined
  lastError: string | undefined
}

export class DataplaneReconciler {
  private running = false
  private inFlight: Promise<void> | undefined
  private again = false
  private timer: unknown
  private actual: DataplaneState | undefined
  private lastDesired: DesiredDataplane | undefined
  private matches = false
  private reconciles = 0
  private repairs = 0
  private opsApplied = 0
  private lastReconcileAtMs: number | undefined
  private lastError: string | undefined
  private readonly counters: { ops: Counter, failures: Counter }

  constructor (private readonly components: DataplaneReconcilerComponents, private readonly config: DataplaneReconcilerConfig) {
    this.counters = {
      ops: components.metrics.counter('dataplane_ops_total', 'Dataplane operations applied', ['op']),
      failures: components.metrics.counter('dataplane_reconcile_failures_total', 'Reconciles that failed to read or apply')
    }
  }

  /** Idempotent: brings the dataplane up and reconciles once before resolving. */
  async start (): Promise<void> {
    if (this.running) return
    await this.components.dataplane.start()
    this.running = true
    await this.reconcile()
    this.schedule()
  }

  /** Idempotent: waits for a running reconcile, then takes the dataplane down. */
  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    if (this.timer !== undefined) this.components.clock.clearTimeout(this.timer)
    this.timer = undefined
    await this.inFlight
    await this.components.dataplane.stop()
  }

  /** Something the table depends on changed: reconcile now (or right after the running one). */
  trigger (): void {
    if (!this.running) return
    if (this.inFlight !== undefined) { this.again = true; return }
    void this.reconcile()
  }

  /** One read–diff–apply–verify pass; the returned promise never rejects. */
  async reconcile (): Promise<void> {
    if (this.inFlight !== undefined) { this.again = true; return await this.inFlight }
    this.inFlight = (async () => {
      // At most one more pass for changes that arrived meanwhile; later ones trigger their own.
      for (let pass = 0; pass < 2; pass++) {
        this.again = false
        await this.pass()
        if (!this.again || !this.running) break
      }
    })()
    try { await this.inFlight } finally { this.inFlight = undefined }
  }

  private async pass (): Promise<void> {
    const { dataplane, clock, logger } = this.components
    try {
      const desired = this.config.desired()
      this.lastDesired = desired
      const before = await dataplane.read()
      const ops = diffDataplane(desired.state, before)
      if (ops.length > 0) {
        await dataplane.apply(ops)
        this.repairs++
        this.opsApplied += ops.length
        for (const op of ops) this.counters.ops.inc({ op: op.op })
        logger.info('dataplane changed', { ops: ops.map(describeOp) })
      }
      this.actual = ops.length === 0 ? before : await dataplane.read()
      this.matches = diffDataplane(desired.state, this.actual).length === 0
      this.lastError = undefined
    } catch (error) {
      this.matches = false
      this.lastError = (error as Error).message
      this.counters.failures.inc()
      logger.warn('dataplane reconcile failed', { error: this.lastError })
    }
    this.reconciles++
    this.lastReconcileAtMs = clock.now()
  }

  private schedule (): void {
    if (!this.running) return
    this.timer = this.components.clock.setTimeout(() => {
      void this.reconcile().then(() => { this.schedule() })
    }, this.config.intervalMs)
  }

  view (): DataplaneView {
    const desired = this.lastDesired ?? this.config.desired()
    return {
      kind: this.components.dataplane.kind,
      matches: this.matches,
      desired: desired.state,
      actual: this.actual,
      routes: desired.routes,
      reconciles: this.reconciles,
      repairs: this.repairs,
      opsApplied: this.opsApplied,
      lastReconcileAtMs: this.lastReconcileAtMs,
      lastError: this.lastError
    }
  }
}

export function describeOp (op: DataplaneOp): string {
  switch (op.op) {
    case 'peer.set': return `peer ${op.peer.publicKey.slice(0, 8)}… allowed ${op.peer.allowedIps.join(',') || '(none)'}${op.peer.endpoint === undefined ? '' : ` endpoint ${op.peer.endpoint}`}`
    case 'peer.remove': return `remove peer ${op.publicKey.slice(0, 8)}…`
    default: return `${op.op === 'address.add' ? 'add' : 'remove'} ${op.address} on ${op.scope === 'local' ? 'loopback' : 'interface'}`
  }
}
