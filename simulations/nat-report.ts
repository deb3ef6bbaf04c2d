// What NAT did to a run, read from outside the production code at the end of it: for every live
// node and every healthy origin (other than itself), whether the node has a path to the origin at
// all (direct, or through a neighbour's reach report: the one-hop relay path), and whether it is
// direct. Pairs where at least one side sits behind NAT are the ones hole punching decides; the
// share of them that ended direct is the figure the scenario reports.
import type { SimWorld } from './world.ts'
import type { HolePunchStats } from '../src/runtime/sim-nat.ts'

export interface NatReport {
  /** Live nodes behind NAT at the end, and how many of their NATs are symmetric. */
  natNodes: number
  symmetricNodes: number
  /** The simulated network's NAT traversal counters over the whole run. */
  holePunch: HolePunchStats
  /** (live node, healthy origin) pairs, the node not being the origin. */
  pairs: number
  /** Pairs with a route: direct or through a relay. */
  reachable: number
  reachableShare: number | null
  /** Pairs with a direct path. */
  direct: number
  /** Pairs reached only through a relay (no direct path). */
  relayedOnly: number
  /**
   * Pairs with no path at the final instant only because the node has just lost its direct path
   * and holds its relay paths down (the control plane's loop guard, two refresh periods) while
   * neighbours do report reaching the origin: counted as reachable, and listed here.
   */
  heldDown: number
  /** Pairs where the node, the origin or both are behind NAT, and how many of them ended direct. */
  natPairs: number
  natDirect: number
  /** natDirect ÷ natPairs: the share of NAT-affected pairs that hole punching (or reversal) made direct. */
  directPathShare: number | null
  /** Per node, the share of healthy origins it reaches: the worst node's and the mean. */
  originsReachedPerNode: { min: number | null, mean: number | null }
  /** Up to 10 pairs without any path, as `node → origin`. */
  unreachable: string[]
}

const round = (value: number): number => Math.round(value * 100_000) / 100_000

/** `live`: the nodes that count; `origins`: the origins serving now. */
export function natReport (world: SimWorld, live: ReadonlySet<string>, origins: readonly string[]): NatReport {
  const { network } = world
  const report: NatReport = {
    natNodes: 0, symmetricNodes: 0, holePunch: network.holePunchStats(), pairs: 0, reachable: 0, reachableShare: null,
    direct: 0, relayedOnly: 0, heldDown: 0, natPairs: 0, natDirect: 0, directPathShare: null, originsReachedPerNode: { min: null, mean: null }, unreachable: []
  }
  const perNode: number[] = []
  for (const node of [...live].sort()) {
    const natType = network.natType(node)
    if (natType !== undefined) report.natNodes++
    if (natType === 'symmetric') report.symmetricNodes++
    const table = world.hosts.get(node)!.controlPlane.table
    let reached = 0
    let wanted = 0
    for (const origin of origins) {
      if (origin === node || !live.has(origin)) continue
      wanted++
      report.pairs++
      const direct = table.hasDirectReach(origin)
      const path = table.pathTo(origin)
      const natAffected = natType !== undefined || network.natType(origin) !== undefined
      if (natAffected) report.natPairs++
      if (direct) { report.direct++; if (natAffected) report.natDirect++ }
      const heldDown = path === undefined && table.isRelayHeldDown(origin) && table.relayCount(origin) > 0
      if (path === undefined && !heldDown) {
        if (report.unreachable.length < 10) report.unreachable.push(`${node} → ${origin}`)
        continue
      }
      reached++
      report.reachable++
      if (heldDown) report.heldDown++
      else if (!direct) report.relayedOnly++
    }
    if (wanted > 0) perNode.push(reached / wanted)
  }
  if (report.pairs > 0) report.reachableShare = round(report.reachable / report.pairs)
  if (report.natPairs > 0) report.directPathShare = round(report.natDirect / report.natPairs)
  if (perNode.length > 0) {
    report.originsReachedPerNode = { min: round(Math.min(...perNode)), mean: round(perNode.reduce((a, b) => a + b, 0) / perNode.length) }
  }
  return report
}
