// Membership heartbeats scale with the membership. Every heartbeat is gossiped to every member, so
// at a fixed period each node receives N heartbeats per period and the network carries N² of
// them: about six million heartbeat RPCs per second at 1,000 nodes and a 1 s period. Consul scales
// its anti-entropy interval with cluster size for the same reason, and form-node-metrics beats
// every 30 s. Here the period grows linearly with the membership so that each node receives at
// most `budgetPerSec` heartbeats a second whatever the size; the member list (bootstrap answers,
// status) follows more slowly in large networks, which it can afford: routing never reads it
// (failure detection is the origin probes' and the sessions' job).
import { MAX_HEARTBEAT_INTERVAL_MS } from './heartbeat-codec.ts'

/**
 * The heartbeat period for a membership of `members` nodes (this one included): `baseMs` while
 * `members` heartbeats per `baseMs` fit the budget, then `members / budgetPerSec` seconds, rounded
 * up to 100 ms and capped at MAX_HEARTBEAT_INTERVAL_MS.
 */
export function scaledHeartbeatIntervalMs (baseMs: number, members: number, budgetPerSec: number): number {
  const scaled = Math.ceil(members * 10 / budgetPerSec) * 100
  return Math.min(MAX_HEARTBEAT_INTERVAL_MS, Math.max(baseMs, scaled))
}

/**
 * How long after its last heartbeat a member is listed as stale: `staleMs` at the base period,
 * stretched in proportion when the member advertises a longer period (it beats less often).
 */
export function memberStaleAfterMs (staleMs: number, baseMs: number, advertisedMs: number | undefined): number {
  if (advertisedMs === undefined || advertisedMs <= baseMs) return staleMs
  return Math.round(staleMs * advertisedMs / baseMs)
}
