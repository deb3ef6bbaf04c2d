// Reconnect and restart back-off: exponential from a minimum to a maximum, with symmetric jitter,
// as Akka's BackoffSupervisor and BGP's ConnectRetryTimer with jitter (RFC 4271 §10) do. Pure: the
// caller supplies the uniform draw so the same code is deterministic in the simulator.

export interface BackoffPolicy {
  minMs: number
  maxMs: number
  /** Fraction of the delay, 0..1: the delay is scaled by a factor uniform in [1 - jitter, 1 + jitter]. */
  jitter: number
}

/**
 * Delay before attempt number `attempt` (0 for the first retry). `uniform` is a draw in [0, 1).
 * The result never exceeds maxMs × (1 + jitter) and is never negative.
 */
export function backoffDelayMs (policy: BackoffPolicy, attempt: number, uniform: number): number {
  const exponent = Math.min(Math.max(0, Math.floor(attempt)), 52)
  const base = Math.min(policy.maxMs, policy.minMs * 2 ** exponent)
  const factor = 1 + policy.jitter * (2 * uniform - 1)
  return Math.max(0, Math.round(base * factor))
}

/** A value spread by ±jitter, for periodic timers such as keepalives (RFC 4271 §10 jitter). */
export function jitteredMs (baseMs: number, jitter: number, uniform: number): number {
  return Math.max(0, Math.round(baseMs * (1 + jitter * (2 * uniform - 1))))
}
