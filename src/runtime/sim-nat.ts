// NAT traversal in the simulated network: the parts of libp2p's DCUtR (direct connection upgrade
// through relay) that decide whether two nodes end up with a direct connection. sim-network.ts
// calls it when a dial meets a node behind NAT.
//
// Model:
// - A NATed node's NAT is endpoint-independent (one public mapping per local port, whoever it talks
//   to: RFC 4787 "EIM", punchable) or symmetric (a new mapping per destination, so the port a peer
//   learns through the relay is not the one a direct packet would use). Drawn per node from the
//   network's seed with `symmetricShare`.
// - A dial to a NATed target first needs a relayed path: a relay is a public, started node that
//   the target holds a connection to (its circuit-relay reservation) and that the dialer could
//   reach. No relay: the dial times out as before.
// - Public dialer, NATed target: connection reversal. The target learns of the dial through the
//   relay and dials back out, which a NAT always lets through.
// - Both NATed: DCUtR's synchronised connect. One round trip over the relay measures the RTT, then
//   both sides dial at once; each attempt costs a relayed round trip plus a direct one. Both sides
//   symmetric never succeeds; otherwise an attempt succeeds with `punchSuccess`. After `attempts`
//   failures (DCUtR retries 3 times) the pair stays relayed: no further punches until one of them
//   restarts, as libp2p keeps the limited relayed connection and does not try again on it.
// libp2p's measurement campaign of DCUtR on the public network reported about 70 % of hole punches
// succeeding, nearly all at the first attempt; the defaults here land near that.
import type { PeerId } from './ports.ts'

export type NatType = 'endpoint-independent' | 'symmetric'

export interface HolePunchOptions {
  /** Share of NATed nodes whose NAT is symmetric (unpunchable with another symmetric one). Default 0.25. */
  symmetricShare?: number
  /** Probability that one synchronised-connect attempt of a punchable pair succeeds. Default 0.9. */
  punchSuccess?: number
  /** Attempts per pair before it is left relayed (DCUtR: 3). Default 3. */
  attempts?: number
}

export interface ResolvedHolePunch {
  symmetricShare: number
  punchSuccess: number
  attempts: number
}

export const DEFAULT_HOLE_PUNCH: ResolvedHolePunch = { symmetricShare: 0.25, punchSuccess: 0.9, attempts: 3 }

export function resolveHolePunch (options: HolePunchOptions): ResolvedHolePunch {
  const resolved = { ...DEFAULT_HOLE_PUNCH, ...options }
  for (const key of ['symmetricShare', 'punchSuccess'] as const) {
    const value = resolved[key]
    if (!(value >= 0 && value <= 1)) throw new RangeError(`holePunch.${key} must be a probability in [0, 1], got ${value}`)
  }
  if (!Number.isSafeInteger(resolved.attempts) || resolved.attempts < 1 || resolved.attempts > 10) {
    throw new RangeError(`holePunch.attempts must be an integer in [1, 10], got ${resolved.attempts}`)
  }
  return resolved
}

/** Whether two NATs can ever be punched through (before the per-attempt chance). */
export function isPunchable (a: NatType, b: NatType): boolean {
  return a !== 'symmetric' || b !== 'symmetric'
}

/** Counters of the network's NAT traversal, for the simulator's report. */
export interface HolePunchStats {
  /** Synchronised-connect attempts between two NATed nodes. */
  attempts: number
  /** Pairs of NATed nodes connected by a successful punch. */
  punched: number
  /** NATed targets that connected back to a public dialer through the relay. */
  reversals: number
  /** Pairs left relayed after every attempt failed. */
  failedPairs: number
  /** Dials to a NATed node with no relay to go through. */
  noRelay: number
}

export function emptyHolePunchStats (): HolePunchStats {
  return { attempts: 0, punched: 0, reversals: 0, failedPairs: 0, noRelay: 0 }
}

/** One key per unordered pair. */
export function pairKey (a: PeerId, b: PeerId): string {
  return a < b ? `${a}\n${b}` : `${b}\n${a}`
}

/**
 * The relay a dial from `dialer` to `target` goes through: among `candidates` (the target's
 * connected peers), the usable one with the shortest relayed path, ties to the lowest id.
 */
export function chooseRelay (
  dialer: PeerId, target: PeerId, candidates: Iterable<PeerId>,
  usable: (relay: PeerId) => boolean, latency: (from: PeerId, to: PeerId) => number
): PeerId | undefined {
  let best: PeerId | undefined
  let bestMs = Infinity
  for (const relay of candidates) {
    if (relay === dialer || relay === target || !usable(relay)) continue
    const ms = latency(dialer, relay) + latency(relay, target)
    if (ms < bestMs || (ms === bestMs && best !== undefined && relay < best)) { best = relay; bestMs = ms }
  }
  return best
}
