// Checkers for scenario runs. They observe from outside the production code: the route entries a
// node exposes (ControlPlane.routes()), the route changes it reports, and the world's ground truth
// (which origins are really up, where nodes really are). They never read a node's own RTT
// measurements: optimality is judged by the latency model's true RTT.
import type { RouteEntry } from '../src/protocols/routes.ts'
import type { Coordinates, LatencyModel } from './latency.ts'
import { trueRttMs } from './latency.ts'

/** Examples kept per check, so a broken run's report stays readable. */
export const MAX_EXAMPLES = 10

export interface CheckResult {
  passed: boolean
  violations: number
  /** Up to MAX_EXAMPLES human-readable violations, first ones first. */
  examples: string[]
}

/** Accumulates violations of one check. */
export class Check {
  violations = 0
  readonly examples: string[] = []

  violation (text: string): void {
    this.violations++
    if (this.examples.length < MAX_EXAMPLES) this.examples.push(text)
  }

  result (extraCondition = true): CheckResult {
    return { passed: this.violations === 0 && extraCondition, violations: this.violations, examples: [...this.examples] }
  }
}

/** Route entries of every live node for one prefix, as read at one instant. */
export type PrefixRoutes = ReadonlyMap<string, RouteEntry | undefined>

/**
 * Loops at one instant, for one prefix. A route loops when its chosen path's `hops` revisit a node
 * or pass through the node itself, or when following next hops — each relay forwarding by its own
 * route for the prefix — comes back to a node already on the way. Each looping node is reported.
 */
export function findRouteLoops (prefix: string, routes: PrefixRoutes, atMs: number): string[] {
  const found: string[] = []
  for (const [node, entry] of routes) {
    if (entry?.origin === undefined) continue
    const chosen = entry.candidates.find((candidate) => candidate.origin === entry.origin)?.path
    const hops = chosen?.hops ?? []
    if (new Set(hops).size !== hops.length || (entry.origin !== node && hops.includes(node))) {
      found.push(`t=${atMs} ${node} ${prefix}: path ${[node, ...hops].join(' → ')} revisits a node`)
      continue
    }
    const walk = followNextHops(node, routes)
    if (walk !== undefined) found.push(`t=${atMs} ${node} ${prefix}: forwarding loops ${walk.join(' → ')}`)
  }
  return found
}

/** The forwarding walk from `start` if it comes back to a node it passed, else undefined. */
function followNextHops (start: string, routes: PrefixRoutes): string[] | undefined {
  const visited = [start]
  let current = start
  // Bounded: a walk longer than the number of nodes must have revisited one.
  for (let step = 0; step <= routes.size; step++) {
    const entry = routes.get(current)
    if (entry?.origin === undefined || entry.nextHop === undefined) return undefined // delivered nowhere: not a loop
    if (entry.origin === current || entry.nextHop === entry.origin) return undefined // local, or one hop to the origin
    const next = entry.nextHop
    if (visited.includes(next)) return [...visited, next]
    visited.push(next)
    current = next
  }
  return visited
}

export interface OptimalityInput {
  /** Each live node's chosen origin for the prefix (undefined: no route). */
  chosen: ReadonlyMap<string, string | undefined>
  /** Origins of the prefix that are really serving now (service up, node live). */
  healthyOrigins: readonly string[]
  where: (node: string) => Coordinates
  model: LatencyModel
  /**
   * The best RTT the network allows from a node to an origin, when not every pair can connect
   * directly (NAT): default, the great-circle RTT of the latency model.
   */
  rtt?: (node: string, origin: string) => number
}

export interface OptimalityTally {
  pairs: number
  optimal: number
  /** Non-optimal pairs, described. */
  misses: string[]
}

/** Share within this factor of the best true RTT counts as optimal (the issue's 10 %). */
export const OPTIMALITY_TOLERANCE = 1.1

/**
 * Steady-state optimality for one prefix: a (node, prefix) pair is optimal when the node's chosen
 * origin is healthy and its true RTT is within 10 % of the best healthy origin's. A node that is
 * itself a healthy origin has a true RTT of 0 to itself. Pairs with no healthy origin are skipped.
 */
export function tallyOptimality (prefix: string, input: OptimalityInput, atMs: number): OptimalityTally {
  const tally: OptimalityTally = { pairs: 0, optimal: 0, misses: [] }
  if (input.healthyOrigins.length === 0) return tally
  const rtt = (node: string, origin: string): number => node === origin ? 0 : input.rtt?.(node, origin) ?? trueRttMs(input.where(node), input.where(origin), input.model)
  for (const [node, origin] of input.chosen) {
    tally.pairs++
    const best = Math.min(...input.healthyOrigins.map((candidate) => rtt(node, candidate)))
    if (origin !== undefined && input.healthyOrigins.includes(origin) && rtt(node, origin) <= best * OPTIMALITY_TOLERANCE + 1e-9) {
      tally.optimal++
      continue
    }
    const got = origin === undefined ? 'no route' : `${origin} (${input.healthyOrigins.includes(origin) ? `${rtt(node, origin).toFixed(1)} ms` : 'not healthy'})`
    tally.misses.push(`t=${atMs} ${node} ${prefix}: chose ${got}, best true RTT ${best.toFixed(1)} ms`)
  }
  return tally
}

export interface Percentiles { samples: number, p50Ms: number | null, p99Ms: number | null, maxMs: number | null }

/**
 * Nearest-rank percentiles of convergence times. An event that never converged counts as
 * Infinity, which JSON shows as null: a missing number, never a flattering one.
 */
export function percentiles (values: readonly number[]): Percentiles {
  if (values.length === 0) return { samples: 0, p50Ms: null, p99Ms: null, maxMs: null }
  const sorted = [...values].sort((a, b) => a - b)
  const rank = (p: number): number | null => finite(sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]!)
  return { samples: sorted.length, p50Ms: rank(0.5), p99Ms: rank(0.99), maxMs: finite(sorted[sorted.length - 1]!) }
}

function finite (value: number): number | null {
  return Number.isFinite(value) ? Math.round(value * 1000) / 1000 : null
}
