// Route flap damping, RFC 2439, with the thresholds RFC 7196 recommends. Each flap adds a fixed
// penalty; the penalty decays exponentially with a half-life; once it exceeds the suppress
// threshold the route is held back until it decays to the reuse threshold. A ceiling bounds the
// penalty so no route is suppressed longer than the maximum suppress time (RFC 2439 §4.2).
//
// RFC 2439's defaults are tuned for the Internet's BGP: half-life 15 min, max suppress 60 min. An
// overlay origin is a service on one node, and a node that restarts must not be shunned for an hour,
// so we scale every *time* by 1/15 (half-life 60 s, max suppress 4 min) and keep the penalty
// figures (per flap 1000, suppress 6000 per RFC 7196, reuse 750). Because the ceiling depends only
// on the ratio max-suppress / half-life (here 4, as in RFC 2439), it is 750 × 2^4 = 12,000 in both.
//
// What this buys, pinned by test/protocols/damping.test.ts:
// - One clean failover (one failure, then recovery) is never damped: 1000 is far below 6000. Even
//   six flaps in the same instant (6000) are not: suppression needs the penalty to *exceed* 6000.
// - A service that flaps every few seconds crosses 6000 after about seven flaps (seven at 4 s
//   apart, eight at 5 s) and is held back until the penalty decays to 750: three half-lives (3 min) from 6000, four (4 min) from the
//   ceiling.
// Pure: every function takes the time it needs as an argument.

export interface DampingPolicy {
  /** Added per flap (a withdrawal, or a failure). RFC 2439 / RFC 7196: 1000. */
  penaltyPerFlap: number
  /** Suppress once the penalty exceeds this. RFC 7196: 6000. */
  suppressThreshold: number
  /** Reuse once a suppressed penalty has decayed to this. RFC 2439: 750. */
  reuseThreshold: number
  /** Time for the penalty to halve. RFC 2439: 15 min; overlay: 60 s. */
  halfLifeMs: number
  /** Longest a route stays suppressed after its last flap. RFC 2439: 60 min; overlay: 4 min. */
  maxSuppressMs: number
}

export interface DampingState {
  /** Penalty as of `updatedAtMs`; decays from there. */
  penalty: number
  updatedAtMs: number
  /** Suppression has hysteresis: once over the suppress threshold, held until reuse. */
  suppressed: boolean
  flaps: number
}

export const defaultDampingPolicy: DampingPolicy = {
  penaltyPerFlap: 1000,
  suppressThreshold: 6000,
  reuseThreshold: 750,
  halfLifeMs: 60_000,
  maxSuppressMs: 240_000
}

export const initialDampingState: DampingState = { penalty: 0, updatedAtMs: 0, suppressed: false, flaps: 0 }

export class DampingPolicyError extends Error {
  override name = 'DampingPolicyError'
}

/** Throws DampingPolicyError naming the bad field. */
export function checkDampingPolicy (policy: DampingPolicy): void {
  const positive = ['penaltyPerFlap', 'suppressThreshold', 'reuseThreshold', 'halfLifeMs', 'maxSuppressMs'] as const
  for (const field of positive) {
    const value = policy[field]
    if (!(value > 0) || !Number.isFinite(value)) throw new DampingPolicyError(`${field} must be a finite number > 0, got ${value}`)
  }
  if (policy.reuseThreshold >= policy.suppressThreshold) {
    throw new DampingPolicyError(`reuseThreshold (${policy.reuseThreshold}) must be below suppressThreshold (${policy.suppressThreshold})`)
  }
  if (penaltyCeiling(policy) <= policy.suppressThreshold) {
    throw new DampingPolicyError('maxSuppressMs too short for the half-life: the penalty could never exceed suppressThreshold')
  }
}

/** RFC 2439 §4.2: the penalty that decays to reuse in exactly the max suppress time. */
export function penaltyCeiling (policy: DampingPolicy): number {
  return policy.reuseThreshold * 2 ** (policy.maxSuppressMs / policy.halfLifeMs)
}

/** penalty × 2^(−elapsed / half-life); time never runs backwards (negative elapsed is 0). */
export function decayPenalty (penalty: number, elapsedMs: number, halfLifeMs: number): number {
  return penalty * 2 ** (-Math.max(0, elapsedMs) / halfLifeMs)
}

/** The state decayed to `nowMs`, with suppression released if the penalty reached reuse. */
export function decayedState (state: DampingState, nowMs: number, policy: DampingPolicy): DampingState {
  const penalty = decayPenalty(state.penalty, nowMs - state.updatedAtMs, policy.halfLifeMs)
  return {
    penalty,
    updatedAtMs: Math.max(nowMs, state.updatedAtMs),
    suppressed: state.suppressed && penalty > policy.reuseThreshold,
    flaps: state.flaps
  }
}

/** One more flap at `nowMs`: decay, add the per-flap penalty up to the ceiling, maybe suppress. */
export function recordFlap (state: DampingState, nowMs: number, policy: DampingPolicy): DampingState {
  const decayed = decayedState(state, nowMs, policy)
  const penalty = Math.min(penaltyCeiling(policy), decayed.penalty + policy.penaltyPerFlap)
  return {
    penalty,
    updatedAtMs: decayed.updatedAtMs,
    suppressed: decayed.suppressed || penalty > policy.suppressThreshold,
    flaps: state.flaps + 1
  }
}

/** True while the route must not be announced. */
export function isSuppressed (state: DampingState, nowMs: number, policy: DampingPolicy): boolean {
  return decayedState(state, nowMs, policy).suppressed
}

/**
 * When a suppressed state's penalty decays to the reuse threshold (rounded up to a whole ms, so
 * `isSuppressed` is false from then on). For a state that is not suppressed: its `updatedAtMs`.
 */
export function reuseAtMs (state: DampingState, policy: DampingPolicy): number {
  if (!state.suppressed || state.penalty <= policy.reuseThreshold) return state.updatedAtMs
  const waitMs = policy.halfLifeMs * Math.log2(state.penalty / policy.reuseThreshold)
  let at = state.updatedAtMs + Math.ceil(waitMs)
  // Guard against floating-point leaving the decayed penalty a hair above the threshold.
  for (let step = 0; step < 4 && decayPenalty(state.penalty, at - state.updatedAtMs, policy.halfLifeMs) > policy.reuseThreshold; step++) at++
  return at
}
