// Checkers for the replicated state and IP leases (outside production code; the runner calls
// them at every loop-check instant when the scenario turns `protocol.state` on):
//
// - leaseSafety (safety): at no instant do two live nodes hold one exclusive (unicast) address in
//   bound, renewing or rebinding (LeaseManager.unicastAddress());
// - ackedWritesKept (safety): every state write the runner made and saw acknowledged (durable) is
//   present at every live replica at the end of the run; the runner writes one `settings` register
//   per instant from a rotating live node, partitions and crashes included;
// - stateConverged (liveness): after the last fault ends, every live replica's digest becomes equal
//   within `expect.stateConvergenceMs`; the time it took is reported.
import type { SimWorld } from './world.ts'
import { Check, type CheckResult } from './checkers.ts'

export interface StateChecks {
  leaseSafety: CheckResult
  ackedWritesKept: CheckResult
  stateConverged: CheckResult
}

export interface StateReport {
  /** Writes the runner made and saw acknowledged. */
  ackedWrites: number
  /** From the last fault's end to the first instant all live digests were equal; null: never. */
  convergedMsAfterLastFault: number | null
  /** Distinct unicast addresses bound at the end, and live nodes. */
  boundAddresses: number
  liveNodes: number
}

export class StateMeter {
  private readonly leases = new Check()
  private readonly acked: string[] = []
  private convergedAtMs: number | undefined
  private writes = 0

  constructor (private readonly lastFaultEndMs: number, private readonly boundMs: number) {}

  /** One instant: check leases, note convergence, make one write. */
  observe (world: SimWorld, live: ReadonlySet<string>, atMs: number): void {
    const holders = new Map<string, string[]>()
    const digests = new Set<string>()
    for (const id of [...live].sort()) {
      const host = world.hosts.get(id)
      if (host?.running !== true || host.leases === undefined || host.replicator === undefined) continue
      const address = host.leases.unicastAddress()
      if (address !== undefined) {
        const list = holders.get(address)
        if (list === undefined) holders.set(address, [id]); else list.push(id)
      }
      digests.add(host.replicator.state.digest())
    }
    for (const [address, nodes] of holders) {
      if (nodes.length > 1) this.leases.violation(`t=${atMs} ${address} bound at ${nodes.join(' and ')}`)
    }
    if (atMs >= this.lastFaultEndMs && this.convergedAtMs === undefined && digests.size === 1) this.convergedAtMs = atMs
    this.write(world, live, atMs)
  }

  private write (world: SimWorld, live: ReadonlySet<string>, atMs: number): void {
    const writers = [...live].sort().filter((id) => world.hosts.get(id)?.running === true)
    if (writers.length === 0) return
    const writer = writers[this.writes++ % writers.length]!
    const key = `w-${atMs}-${writer}`
    world.hosts.get(writer)!.replicator?.write('settings', key, { by: writer, atMs })
      .then(() => { this.acked.push(key) }, () => { /* not acknowledged: the node stopped; nothing promised */ })
  }

  result (world: SimWorld, live: ReadonlySet<string>): { checks: StateChecks, report: StateReport } {
    const kept = new Check()
    const replicas = [...live].sort().map((id) => world.hosts.get(id)).filter((host) => host?.running === true && host.replicator !== undefined)
    for (const key of this.acked) {
      const missing = replicas.filter((host) => host!.replicator!.get('settings', key) === undefined).map((host) => host!.config.name)
      if (missing.length > 0) kept.violation(`acknowledged write ${key} missing at ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ` and ${missing.length - 5} more` : ''}`)
    }
    const converged = new Check()
    const tookMs = this.convergedAtMs === undefined ? null : this.convergedAtMs - this.lastFaultEndMs
    if (tookMs === null) converged.violation(`replicas' digests never all equal after the last fault ended at t=${this.lastFaultEndMs}`)
    else if (tookMs > this.boundMs) converged.violation(`replicas converged ${tookMs} ms after the last fault, more than ${this.boundMs} ms`)
    const bound = new Set(replicas.map((host) => host!.leases?.unicastAddress()).filter((address) => address !== undefined))
    return {
      checks: { leaseSafety: this.leases.result(), ackedWritesKept: kept.result(), stateConverged: converged.result() },
      report: { ackedWrites: this.acked.length, convergedMsAfterLastFault: tookMs, boundAddresses: bound.size, liveNodes: replicas.length }
    }
  }
}
