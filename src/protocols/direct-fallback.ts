// Formation's relay rule: a node whose direct path to a peer fails 3 times within 300 s switches
// to the relay for it (FORMATION-FACTS.md, "Relay"). Here the peer is an origin, a failure is the
// origin prober's verdict taking the direct path away, and the relay is the control plane's
// one-hop relay path. Once tripped, the origin is held relayed for `holdDownMs`, then the direct
// path is trusted again with a clean slate, so a link that has settled is used again and one that
// still flaps trips the rule again after another `failures` failures. Without the rule a flapping
// link moves the route back and forth on every flap (each move a convergence for everyone
// relaying through this node); with it the route settles on the relay.
//
// Pure: callers pass the time; no timers here.

export interface DirectFallbackPolicy {
  /** Direct-path failures within `windowMs` that send an origin to its relays. Formation: 3. */
  failures: number
  /** Formation: 300 s. */
  windowMs: number
  /** How long the origin stays relayed before the direct path is tried again. */
  holdDownMs: number
}

export const defaultDirectFallbackPolicy: DirectFallbackPolicy = { failures: 3, windowMs: 300_000, holdDownMs: 300_000 }

/** Bound on the origins tracked at once: one per origin in the route table. */
const MAX_TRACKED = 65_536

export function validateDirectFallbackPolicy (policy: DirectFallbackPolicy, field = 'directFallback'): void {
  if (!Number.isSafeInteger(policy.failures) || policy.failures < 1 || policy.failures > 100) throw new RangeError(`${field}.failures must be an integer in [1, 100], got ${policy.failures}`)
  for (const key of ['windowMs', 'holdDownMs'] as const) {
    const value = policy[key]
    if (!(Number.isFinite(value) && value >= 0 && value <= 86_400_000)) throw new RangeError(`${field}.${key} must be a number of ms in [0, 86400000], got ${value}`)
  }
}

interface OriginState {
  /** Times of the recent failures, oldest first, at most policy.failures of them. */
  failuresMs: number[]
  /** Relayed until this time (exclusive); undefined when the direct path counts. */
  relayedUntilMs: number | undefined
}

export class DirectFallback {
  private readonly origins = new Map<string, OriginState>()

  constructor (readonly policy: DirectFallbackPolicy = defaultDirectFallbackPolicy) {
    validateDirectFallbackPolicy(policy)
  }

  /**
   * The direct path to `origin` failed at `nowMs`. Returns the time the origin is relayed until
   * when this failure trips the rule, undefined otherwise (also while already relayed).
   */
  recordFailure (origin: string, nowMs: number): number | undefined {
    let state = this.origins.get(origin)
    if (state === undefined) {
      if (this.origins.size >= MAX_TRACKED) this.origins.clear()
      this.origins.set(origin, state = { failuresMs: [], relayedUntilMs: undefined })
    }
    if (this.isRelayed(origin, nowMs)) return undefined
    state.relayedUntilMs = undefined
    state.failuresMs = state.failuresMs.filter((atMs) => nowMs - atMs < this.policy.windowMs)
    state.failuresMs.push(nowMs)
    if (state.failuresMs.length > this.policy.failures) state.failuresMs.shift()
    if (state.failuresMs.length < this.policy.failures) return undefined
    state.failuresMs = []
    state.relayedUntilMs = nowMs + this.policy.holdDownMs
    return state.relayedUntilMs
  }

  /** Whether `origin` is held on its relays at `nowMs`. */
  isRelayed (origin: string, nowMs: number): boolean {
    const until = this.origins.get(origin)?.relayedUntilMs
    return until !== undefined && nowMs < until
  }

  /** Recent failures counted for `origin` (0 while it is relayed). */
  failureCount (origin: string, nowMs: number): number {
    return this.origins.get(origin)?.failuresMs.filter((atMs) => nowMs - atMs < this.policy.windowMs).length ?? 0
  }

  /** The origin left the table: forget it. */
  forget (origin: string): void {
    this.origins.delete(origin)
  }
}
