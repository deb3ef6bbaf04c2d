// Applies a scenario's fault events (simulations/scenario-faults.ts) to a SimWorld through the
// network's primitives: partitions (symmetric or one-way) and link faults (loss, delay and jitter
// spikes, reordering) until their faultEnd, clock skew and CPU stalls per node. serviceDown/Up,
// serviceFlap (expanded to those) and crashes stay with the runner, which measures convergence.
import type { SimWorld } from './world.ts'
import type { FaultEvent, FaultScope } from './scenario-faults.ts'
import type { LinkFault } from '../src/runtime/sim-network.ts'

export class FaultInjector {
  /** What undoes each fault in force, by fault id. */
  private readonly inForce = new Map<number, () => void>()

  constructor (private readonly world: SimWorld) {}

  /** Faults in force now (those with an end still to come). */
  get activeCount (): number {
    return this.inForce.size
  }

  /** Apply every fault of `faults` due at `atMs`, in order. */
  applyAt (faults: readonly FaultEvent[], atMs: number): void {
    for (const fault of faults) if (fault.at === atMs) this.apply(fault)
  }

  apply (fault: FaultEvent): void {
    const { network } = this.world
    switch (fault.event) {
      case 'partition': {
        const from = new Set(fault.scope.from)
        const to = fault.scope.to ?? network.nodeIds().filter((id) => !from.has(id))
        this.inForce.set(fault.id, network.partition(from, to, { oneWay: fault.scope.oneWay }))
        break
      }
      case 'loss':
        this.inForce.set(fault.id, network.addLinkFault({ ...linkScope(fault.scope), lossRate: fault.rate }))
        break
      case 'delay':
        this.inForce.set(fault.id, network.addLinkFault({ ...linkScope(fault.scope), extraDelayMs: fault.extraMs, jitterMs: fault.jitterMs }))
        break
      case 'reorder':
        this.inForce.set(fault.id, network.addLinkFault({ ...linkScope(fault.scope), reorder: { rate: fault.rate, windowMs: fault.windowMs } }))
        break
      case 'clockSkew':
        for (const node of fault.nodes) network.setClockSkew(node, fault.offsetMs)
        break
      case 'cpuStall':
        for (const node of fault.nodes) network.stall(node, fault.durationMs)
        break
      case 'faultEnd':
        this.inForce.get(fault.ends)?.()
        this.inForce.delete(fault.ends)
        break
    }
  }
}

/** One line for the run's log: `partition eu (12 nodes) ↛ the rest for 10000 ms (timeline[0])`. */
export function describeFault (fault: FaultEvent): string {
  const nodes = (ids: readonly string[]): string => ids.length <= 3 ? ids.join(', ') : `${ids.length} nodes`
  const scope = (s: FaultScope | undefined): string => s === undefined ? 'every link' : `${nodes(s.from)} ${s.oneWay ? '→' : '↔'} ${s.to === undefined ? 'the rest' : nodes(s.to)}`
  const lasting = 'durationMs' in fault && fault.durationMs !== undefined ? ` for ${fault.durationMs} ms` : ''
  const what = ((): string => {
    switch (fault.event) {
      case 'partition': return `partition ${scope(fault.scope)}`
      case 'loss': return `loss ${fault.rate} on ${scope(fault.scope)}`
      case 'delay': return `delay +${fault.extraMs} ms ±${fault.jitterMs} ms on ${scope(fault.scope)}`
      case 'reorder': return `reorder ${fault.rate} within ${fault.windowMs} ms on ${scope(fault.scope)}`
      case 'clockSkew': return `clockSkew ${fault.offsetMs} ms on ${nodes(fault.nodes)}`
      case 'cpuStall': return `cpuStall ${nodes(fault.nodes)}`
      case 'faultEnd': return `end of fault #${fault.ends}`
    }
  })()
  return `${what}${lasting} (#${fault.id}, ${fault.origin})`
}

/** A scope as a LinkFault's node sets: none is every link; one-way only from → to. */
function linkScope (scope: FaultScope | undefined): Pick<LinkFault, 'from' | 'to' | 'symmetric'> {
  if (scope === undefined) return {}
  return { from: scope.from, ...(scope.to === undefined ? {} : { to: scope.to }), symmetric: !scope.oneWay }
}
