// Which origins a node probes at the full rate. Probing every origin of every prefix twice a second
// was more than half of a simulated node's work at 200 nodes (15 origins each), and most of those
// probes judged origins the node would only use after two others had failed. A node needs fast
// verdicts on the origins it routes to or would fail over to next; the rest (standby) are probed
// at a slower cadence that still keeps their RTT and verdict roughly current.
//
// Per prefix, origins are taken in order of measured RTT until `activePerPrefix` of them are not
// failed: the nearest origins, failed ones included (so a nearby origin's recovery is seen at the
// full rate), down to the second usable one (the route and its failover). An origin never measured
// is always active, so a new origin is ranked within a few probes. The host adds origins it must
// keep current for other reasons (the chosen route, neighbours relaying through this node).
import type { PeerId } from '../runtime/ports.ts'

export interface TierCandidate {
  origin: PeerId
  /** Smoothed RTT of the answered probes; undefined before the first answer. */
  rttMs: number | undefined
  /** The prober's verdict is failed. */
  failed: boolean
}

export interface OriginStandbyPolicy {
  /** Usable origins per prefix probed at the full rate (the route and its failover: 2). */
  activePerPrefix: number
  /** Probe period of the other origins. */
  intervalMs: number
}

export const defaultOriginStandbyPolicy: OriginStandbyPolicy = { activePerPrefix: 2, intervalMs: 5000 }

/** The active origins over every prefix's candidates (an origin of several prefixes is active if any keeps it). */
export function activeOrigins (prefixes: Iterable<readonly TierCandidate[]>, activePerPrefix: number): Set<PeerId> {
  const active = new Set<PeerId>()
  for (const candidates of prefixes) {
    const ranked = [...candidates].sort(byRtt)
    let usable = 0
    for (const candidate of ranked) {
      if (usable >= activePerPrefix && candidate.rttMs !== undefined) break
      active.add(candidate.origin)
      if (!candidate.failed) usable++
    }
  }
  return active
}

/** Unmeasured first, then by RTT; ties by origin id, so every node ranks alike. */
function byRtt (a: TierCandidate, b: TierCandidate): number {
  if (a.rttMs === undefined || b.rttMs === undefined) {
    if (a.rttMs !== b.rttMs) return a.rttMs === undefined ? -1 : 1
  } else if (a.rttMs !== b.rttMs) return a.rttMs - b.rttMs
  return a.origin < b.origin ? -1 : a.origin > b.origin ? 1 : 0
}
