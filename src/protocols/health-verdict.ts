// Health verdicts from probe results: HAProxy's rise/fall hysteresis (`rise`, `fall` of the
// `server` check options) with a soft latency signal. Pure: a verdict is a function of the previous
// verdict, one probe result and the policy, so the health prober, the simulator's checkers and the
// tests all judge the same way.
//
//            rise ok                    first failure, or a slow answer
//   unknown ─────────▶ healthy ─────────────────────────────────────────▶ degraded
//      │                  ▲                                                │   │
//      │ fall failures    └────────────── rise fast ok ────────────────────┘   │ fall failures
//      ▼                                                                        ▼ (counting the first)
//   failed ──────────── rise ok: healthy (degraded when the last answer was slow) ──▶
//
// Choices, pinned by test/protocols/health-verdict.test.ts:
// - failed goes straight back to healthy after `rise` ok, as HAProxy does; the rise already is the
//   hysteresis, and a second stage would only delay recovery. If the rising answer was slow the
//   verdict is degraded instead.
// - unknown goes to failed after `fall` consecutive failures, so a service that never comes up is
//   reported rather than left unknown forever.
// - In unknown and failed, `consecutiveOk` counts every answer (fast or slow) towards `rise`: the
//   question there is "is it up?". In healthy and degraded it counts fast answers only: a slow answer
//   is a soft signal that holds the verdict at degraded, breaking both streaks (it is neither good
//   enough to recover on nor a failure that counts towards `fall`).

export type Verdict = 'unknown' | 'healthy' | 'degraded' | 'failed'

export interface VerdictState {
  verdict: Verdict
  consecutiveOk: number
  consecutiveFail: number
}

export interface VerdictPolicy {
  /** Consecutive ok probes that bring a target up (HAProxy `rise`). */
  rise: number
  /** Consecutive failed probes that take a degraded target down, counting the first (HAProxy `fall`). */
  fall: number
  /** An ok probe slower than this degrades a healthy target; unset means latency is not judged. */
  degradedLatencyMs?: number
}

export interface VerdictProbeResult {
  ok: boolean
  latencyMs: number
}

/** HAProxy's defaults are rise 2, fall 3; we use rise 3 so a flapping service must hold for 1.5 s. */
export const defaultVerdictPolicy: VerdictPolicy = { rise: 3, fall: 3 }

export const initialVerdictState: VerdictState = { verdict: 'unknown', consecutiveOk: 0, consecutiveFail: 0 }

export class VerdictPolicyError extends Error {
  override name = 'VerdictPolicyError'
}

/** Throws VerdictPolicyError naming the bad field; rise and fall are whole numbers >= 1. */
export function checkVerdictPolicy (policy: VerdictPolicy): void {
  for (const field of ['rise', 'fall'] as const) {
    const value = policy[field]
    if (!Number.isSafeInteger(value) || value < 1) throw new VerdictPolicyError(`${field} must be an integer >= 1, got ${value}`)
  }
  const slow = policy.degradedLatencyMs
  if (slow !== undefined && !(slow >= 0)) throw new VerdictPolicyError(`degradedLatencyMs must be >= 0, got ${slow}`)
}

function isSlow (result: VerdictProbeResult, policy: VerdictPolicy): boolean {
  return result.ok && policy.degradedLatencyMs !== undefined && result.latencyMs > policy.degradedLatencyMs
}

/** The verdict after one more probe result. */
export function nextVerdict (state: VerdictState, result: VerdictProbeResult, policy: VerdictPolicy): VerdictState {
  const { verdict } = state
  if (!result.ok) {
    const consecutiveFail = state.consecutiveFail + 1
    const down = consecutiveFail >= policy.fall
    switch (verdict) {
      case 'unknown': return { verdict: down ? 'failed' : 'unknown', consecutiveOk: 0, consecutiveFail }
      // The first failure of a healthy target is already a de-preference, not yet a withdrawal.
      case 'healthy': return { verdict: down ? 'failed' : 'degraded', consecutiveOk: 0, consecutiveFail }
      case 'degraded': return { verdict: down ? 'failed' : 'degraded', consecutiveOk: 0, consecutiveFail }
      case 'failed': return { verdict: 'failed', consecutiveOk: 0, consecutiveFail }
    }
  }
  const slow = isSlow(result, policy)
  if (verdict === 'unknown' || verdict === 'failed') {
    const consecutiveOk = state.consecutiveOk + 1
    if (consecutiveOk < policy.rise) return { verdict, consecutiveOk, consecutiveFail: 0 }
    return { verdict: slow ? 'degraded' : 'healthy', consecutiveOk, consecutiveFail: 0 }
  }
  if (slow) return { verdict: 'degraded', consecutiveOk: 0, consecutiveFail: 0 }
  const consecutiveOk = state.consecutiveOk + 1
  if (verdict === 'healthy' || consecutiveOk >= policy.rise) return { verdict: 'healthy', consecutiveOk, consecutiveFail: 0 }
  return { verdict: 'degraded', consecutiveOk, consecutiveFail: 0 }
}
