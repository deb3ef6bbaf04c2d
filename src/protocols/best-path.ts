// Best-origin selection for one anycast prefix, in the spirit of the BGP decision process
// (RFC 4271 §9.1.2.2): a fixed list of criteria applied in order, the first that separates two
// candidates decides, and a final deterministic tie-break so that every node given the same inputs
// picks the same origin.
//
//   0. usable before unusable: a candidate needs a path from here and health other than 'failed'
//   1. health: healthy before degraded
//   2. preference: higher before lower (the operator's knob, like LOCAL_PREF)
//   3. cost: lower path costMs first; on equal cost, lower origin load first. Load is a
//      tie-break inside the cost step rather than a weighted penalty, so RTT alone orders origins
//      and an operator can predict the choice; both are reported as reason 'cost'.
//   4. tie-break: lowest origin id (code-unit order, not locale order, so it is the same everywhere)
//
// Paths carry the node ids they traverse; a path that would pass through this node is a loop
// and is rejected (as BGP rejects an AS_PATH containing its own AS, RFC 4271 §9.1.2).
import type { HealthState, RouteCandidate, RouteEntry, RoutePath, SelectionReason } from './routes.ts'

const HEALTH_RANK: Record<HealthState, number> = { healthy: 0, degraded: 1, failed: 2 }

/** Usable: reachable from here and not failed. Only usable candidates can be chosen. */
export function isUsable (candidate: RouteCandidate): boolean {
  return candidate.path !== undefined && candidate.attributes.health !== 'failed'
}

function compareOrigins (a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/**
 * The first criterion on which `a` and `b` differ, or 'tie-break' when only their origin ids do.
 * Usability is not a reason: it filters before the reasons apply.
 */
function separatingCriterion (a: RouteCandidate, b: RouteCandidate): Exclude<SelectionReason, 'only-candidate' | 'no-usable-origin' | 'hysteresis'> {
  if (HEALTH_RANK[a.attributes.health] !== HEALTH_RANK[b.attributes.health]) return 'health'
  if (a.attributes.preference !== b.attributes.preference) return 'preference'
  if ((a.path?.costMs ?? Infinity) !== (b.path?.costMs ?? Infinity) || a.attributes.load !== b.attributes.load) return 'cost'
  return 'tie-break'
}

/** Orders candidates best first: negative when `a` is better. A total order for distinct origins. */
export function compareCandidates (a: RouteCandidate, b: RouteCandidate): number {
  const usable = Number(isUsable(b)) - Number(isUsable(a))
  if (usable !== 0) return usable
  switch (separatingCriterion(a, b)) {
    case 'health': return HEALTH_RANK[a.attributes.health] - HEALTH_RANK[b.attributes.health]
    case 'preference': return b.attributes.preference - a.attributes.preference
    case 'cost': {
      const costA = a.path?.costMs ?? Infinity
      const costB = b.path?.costMs ?? Infinity
      return costA !== costB ? (costA < costB ? -1 : 1) : a.attributes.load - b.attributes.load
    }
    default: return compareOrigins(a.origin, b.origin) || a.seq - b.seq
  }
}

/**
 * Cost hysteresis: the incumbent origin is kept while it is as healthy and preferred as the best and
 * costs at most this fraction more (or this many ms, for sub-millisecond links), so measurement
 * noise does not flap routes. 10 % matches the optimality bound the simulator checks.
 */
export const HYSTERESIS_RATIO = 0.1
export const HYSTERESIS_MIN_MS = 0.5

function keepsIncumbent (best: RouteCandidate, incumbent: RouteCandidate | undefined): incumbent is RouteCandidate {
  if (incumbent === undefined || incumbent === best || !isUsable(incumbent)) return false
  if (separatingCriterion(incumbent, best) !== 'cost') return false
  const bestCost = best.path?.costMs ?? Infinity
  const incumbentCost = incumbent.path?.costMs ?? Infinity
  return incumbentCost <= bestCost + Math.max(bestCost * HYSTERESIS_RATIO, HYSTERESIS_MIN_MS)
}

/**
 * Choose the best origin for a prefix. Pure: the same candidates (and incumbent) in any order give
 * the same entry. `incumbent` is the origin chosen last time, kept within the cost hysteresis.
 */
export function selectBestPath (prefix: string, service: string, candidates: RouteCandidate[], incumbent?: string): RouteEntry {
  const sorted = [...candidates].sort(compareCandidates)
  const usable = sorted.filter(isUsable)
  const ranked = usable[0]
  const kept = ranked === undefined ? undefined : usable.find((candidate) => candidate.origin === incumbent)
  if (ranked !== undefined && keepsIncumbent(ranked, kept)) {
    const path = kept.path as RoutePath
    return { prefix, service, origin: kept.origin, nextHop: path.hops[0], costMs: path.costMs, reason: 'hysteresis', candidates: sorted }
  }
  const best = ranked
  if (best === undefined) {
    return { prefix, service, origin: undefined, nextHop: undefined, costMs: undefined, reason: 'no-usable-origin', candidates: sorted }
  }
  const runnerUp = usable[1]
  const path = best.path as RoutePath
  return {
    prefix,
    service,
    origin: best.origin,
    nextHop: path.hops[0],
    costMs: path.costMs,
    reason: runnerUp === undefined ? 'only-candidate' : separatingCriterion(best, runnerUp),
    candidates: sorted
  }
}

// --- paths --------------------------------------------------------------------------------------

/** This node reaches the origin itself, at the RTT it measured. */
export function directPath (origin: string, rttMs: number): RoutePath {
  return { hops: [origin], costMs: rttMs }
}

/** A node's path to itself: it serves the prefix locally. */
export function localPath (self: string): RoutePath {
  return { hops: [self], costMs: 0 }
}

/**
 * A one-hop relay path through neighbour `relay`, which reported reaching `entry.origin` at
 * `entry.rttMs`; this node reaches the relay at `relayRttMs`. Undefined when the path would
 * traverse `self` (a loop: the relay or the origin is this node) or when the relay reports itself
 * (that is the direct path to the relay, not a relay path).
 */
export function relayPath (self: string, relay: string, relayRttMs: number, entry: { origin: string, rttMs: number }): RoutePath | undefined {
  if (relay === self || entry.origin === self || entry.origin === relay) return undefined
  return { hops: [relay, entry.origin], costMs: relayRttMs + entry.rttMs }
}

/** True when the path passes through `node`. */
export function pathContains (path: RoutePath, node: string): boolean {
  return path.hops.includes(node)
}

/** Orders paths: lower cost, then fewer hops (direct before relayed), then hop ids. */
export function comparePaths (a: RoutePath, b: RoutePath): number {
  if (a.costMs !== b.costMs) return a.costMs < b.costMs ? -1 : 1
  if (a.hops.length !== b.hops.length) return a.hops.length - b.hops.length
  for (let index = 0; index < a.hops.length; index++) {
    const order = compareOrigins(a.hops[index] as string, b.hops[index] as string)
    if (order !== 0) return order
  }
  return 0
}

/**
 * A relay must save at least this much RTT over the direct path, whatever the ratio. Two things the
 * RTT sum leaves out: the relay forwards every packet through its own dataplane (a userspace
 * WireGuard on many hosts), and on a loaded host a couple of late probe answers move a
 * sub-millisecond link's smoothed RTT by a millisecond or more. Taking a relay for less would
 * trade a real hop for noise, and flag the prefix to the node's dependants (control-plane.ts).
 */
export const RELAY_MIN_GAIN_MS = 2

/**
 * Whether a relay path should carry traffic rather than the direct path: only when it is cheaper by
 * the incumbent margin (HYSTERESIS_RATIO of the direct cost), and by at least RELAY_MIN_GAIN_MS.
 * A relay adds a hop and loads a neighbour, and RTT noise alone would otherwise move the path back
 * and forth, and with it the node's `relaying` flag, which its own dependants read.
 */
export function relayBeatsDirect (relayed: RoutePath, direct: RoutePath): boolean {
  return relayed.costMs + Math.max(direct.costMs * HYSTERESIS_RATIO, RELAY_MIN_GAIN_MS) < direct.costMs
}

/** The best of the given paths (min cost, deterministic on ties), or undefined when there is none. */
export function bestPath (paths: Iterable<RoutePath | undefined>): RoutePath | undefined {
  let best: RoutePath | undefined
  for (const path of paths) {
    if (path !== undefined && (best === undefined || comparePaths(path, best) < 0)) best = path
  }
  return best
}
