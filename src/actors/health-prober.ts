// Health prober: one per probe target (a local service, or a neighbouring peer). Two regions run in
// parallel:
//
//   schedule:  probing ──result / timeout──▶ resting ──probeInterval (or health.check.now)──▶ probing
//   verdict:   unknown ──▶ healthy ◀──▶ degraded.observing ──▶ failed      (rise/fall: health-verdict.ts)
//                                         │        ▲
//                                         ▼        │ an indirect probe got through
//                                      degraded.suspect ──nobody got through──▶ failed
//
// The schedule turns probe outcomes into `health.probe.succeeded` / `health.probe.failed` events; the
// verdict region judges them with the pure rise/fall rules (HAProxy). A host may also feed those
// events from other evidence (a peer session's keepalives, say). Probes start on a fixed cadence:
// the next one is due one jittered interval after the previous one *started*, so a probe that runs
// into its timeout does not stretch the period; only one probe is ever in flight.
//
// For a peer target with `indirect` configured, a failure that would declare the peer failed first
// puts it under suspicion and asks k other nodes to probe it (SWIM's ping-req; Das, Gupta and
// Motivala 2002; kept as in Lifeguard, Dadgar et al. 2018): a lossy direct link then costs a
// de-preference, not a false "dead". If any indirect probe gets through the peer stays degraded.
//
// Every effect goes through ports: the probe through `prober`, time through the actor's clock,
// jitter and the choice of helpers through `random`, verdict changes through `onVerdict`.
import { assign, fromPromise, raise, setup } from 'xstate'
import type { Clock, PeerId, Prober, ProbeResult, ProbeTarget, Random } from '../runtime/ports.ts'
import { jitteredMs } from '../protocols/backoff.ts'
import { checkVerdictPolicy, nextVerdict, type Verdict, type VerdictProbeResult, type VerdictState } from '../protocols/health-verdict.ts'

export interface IndirectProbePolicy {
  /** How many other nodes to ask (SWIM's k). */
  k: number
  /** Candidate helpers, asked afresh each time; the target itself is never asked. */
  via: () => PeerId[]
}

export interface HealthProberPolicy {
  /** Period between probe starts, before jitter. */
  intervalMs: number
  /**
   * Asked of the prober, which reports its own timeout; the actor gives up 10 % later
   * (`probeDeadline`), so a prober that never settles cannot stall the schedule.
   */
  timeoutMs: number
  rise: number
  fall: number
  /** Fraction: each interval is scaled by a factor uniform in [1 − jitter, 1 + jitter]. */
  jitter: number
  degradedLatencyMs?: number
  /** Peer targets only: SWIM indirect probes before declaring a peer failed. */
  indirect?: IndirectProbePolicy
}

/** The defaults: interval 500 ms, fall 3, rise 3; timeout below the interval so probes never queue. */
export const defaultHealthProberPolicy: HealthProberPolicy = { intervalMs: 500, timeoutMs: 400, rise: 3, fall: 3, jitter: 0.1 }

export class HealthProberPolicyError extends Error {
  override name = 'HealthProberPolicyError'
}

/** Throws HealthProberPolicyError naming the bad field. */
export function checkHealthProberPolicy (policy: HealthProberPolicy): void {
  try { checkVerdictPolicy(policy) } catch (error) { throw new HealthProberPolicyError((error as Error).message) }
  if (!(policy.intervalMs > 0) || !Number.isFinite(policy.intervalMs)) throw new HealthProberPolicyError(`intervalMs must be > 0, got ${policy.intervalMs}`)
  if (!(policy.timeoutMs > 0) || !Number.isFinite(policy.timeoutMs)) throw new HealthProberPolicyError(`timeoutMs must be > 0, got ${policy.timeoutMs}`)
  if (!(policy.jitter >= 0 && policy.jitter < 1)) throw new HealthProberPolicyError(`jitter must be in [0, 1), got ${policy.jitter}`)
  const k = policy.indirect?.k
  if (k !== undefined && (!Number.isSafeInteger(k) || k < 0)) throw new HealthProberPolicyError(`indirect.k must be an integer >= 0, got ${k}`)
}

/** What a verdict change says besides the verdict itself. */
export interface HealthVerdictDetail {
  target: ProbeTarget
  previous: Verdict
  atMs: number
  consecutiveOk: number
  consecutiveFail: number
  lastLatencyMs: number | undefined
  /** The RTT a path through this target should count (pathRtt); undefined before the first answer. */
  pathRttMs: number | undefined
  lastError: string | undefined
  /** The last indirect probe round, when one decided or preceded this verdict. */
  indirect: IndirectOutcome | undefined
}

export interface HealthProberInput {
  target: ProbeTarget
  prober: Prober
  random: Random
  clock: Clock
  policy: HealthProberPolicy
  /** Called on every verdict change (not for the initial unknown); the host's port to routing. */
  onVerdict?: (verdict: Verdict, detail: HealthVerdictDetail) => void
}

export interface IndirectOutcome {
  asked: PeerId[]
  /** Helpers that reached the target. */
  reachedBy: PeerId[]
}

export interface HealthProberContext extends HealthProberInput, VerdictState {
  lastLatencyMs: number | undefined
  /** Smoothed round trip of the answered probes (RFC 6298's SRTT, gain 1/8); sets the timeout. */
  srttMs: number | undefined
  /** What a route through the target counts: see pathRtt. */
  pathRttMs: number | undefined
  /** Probes that could not be sent yet (ProbeResult.inconclusive): not judged. */
  inconclusive: number
  /** Probe results judged (direct probes and fed-in events). */
  probes: number
  failures: number
  lastError: string | undefined
  /** When the verdict last changed, for status and checkers. */
  changedAtMs: number | undefined
  /** The verdict last reported through onVerdict ('unknown' before the first report). */
  reportedVerdict: Verdict
  /** The verdict reported before that. */
  previousVerdict: Verdict
  /** When the next direct probe is due (one jittered interval after the last one started). */
  nextProbeAtMs: number
  /** When the last direct probe started. */
  probeStartedAtMs: number
  indirectRounds: number
  lastIndirect: IndirectOutcome | undefined
}

export type HealthProberEvent =
  | { type: 'health.check.now' }
  /**
   * Probe every `intervalMs` from now on (policy.intervalMs changes; nothing else does). The next
   * probe is due one jittered new interval after the last one started, at once if that is past:
   * a host probes targets it does not depend on more slowly and speeds one up when it might.
   */
  | { type: 'health.cadence.set', intervalMs: number }
  | { type: 'health.probe.succeeded', latencyMs: number }
  | { type: 'health.probe.failed', error: string, latencyMs?: number }

type ProbeEvent = Extract<HealthProberEvent, { type: 'health.probe.succeeded' | 'health.probe.failed' }>

function resultOf (event: HealthProberEvent): VerdictProbeResult {
  if (event.type === 'health.probe.succeeded') return { ok: true, latencyMs: event.latencyMs }
  if (event.type === 'health.probe.failed') return { ok: false, latencyMs: event.latencyMs ?? 0 }
  throw new TypeError(`not a probe result: ${event.type}`)
}

function judged (context: HealthProberContext, event: HealthProberEvent): VerdictState {
  return nextVerdict(context, resultOf(event), context.policy)
}

/** Would this result fail a peer we can still ask others about? */
function isSuspicion (context: HealthProberContext, event: HealthProberEvent): boolean {
  const k = context.policy.indirect?.k ?? 0
  return context.target.kind === 'peer' && k > 0 && judged(context, event).verdict === 'failed'
}

/** Up to k distinct helpers other than the target, chosen uniformly (partial Fisher–Yates). */
export function chooseHelpers (candidates: PeerId[], target: PeerId, k: number, random: Random): PeerId[] {
  const pool = [...new Set(candidates)].filter((peer) => peer !== target)
  const count = Math.min(k, pool.length)
  for (let i = 0; i < count; i++) {
    const j = i + random.int(pool.length - i)
    const picked = pool[j]!
    pool[j] = pool[i]!
    pool[i] = picked
  }
  return pool.slice(0, count)
}

/** Asks every helper at once; settles as soon as one reaches the target, or when all have answered. */
async function probeThroughHelpers (input: { prober: Prober, target: PeerId, via: PeerId[], timeoutMs: number }, signal: AbortSignal): Promise<IndirectOutcome> {
  const reachedBy: PeerId[] = []
  return await new Promise<IndirectOutcome>((resolve) => {
    let pending = input.via.length
    const settle = (): void => resolve({ asked: input.via, reachedBy: [...reachedBy] })
    if (pending === 0) { settle(); return }
    for (const helper of input.via) {
      input.prober.probeVia(helper, input.target, { timeoutMs: input.timeoutMs, signal }).then(
        (result) => { if (result.ok) { reachedBy.push(helper); settle() } },
        () => {}
      ).finally(() => { if (--pending === 0) settle() })
    }
  })
}

/**
 * The timeout asked of the prober: the policy's, or twice the smoothed round trip when that is
 * longer, up to 90 % of the interval. A fixed timeout near a far target's round trip (300 ms
 * against 275 ms from Hong Kong to Sao Paulo) fails probes on every jitter spike; SWIM's suspicion
 * then catches them, at the cost of indirect probes and false "failed" verdicts. Before the first
 * answer there is no round trip to go by, so the ceiling applies, as RFC 6298 §2.1 starts with a
 * conservative RTO: with the policy's 300 ms, origins more than ~280 ms away were declared failed
 * at start-up (7 to 8 false verdicts per seed in a 30-node world of Quito and Singapore).
 */
export function probeTimeoutMs (policy: HealthProberPolicy, srttMs: number | undefined): number {
  const ceilingMs = Math.floor(policy.intervalMs * 0.9)
  if (srttMs === undefined) return Math.max(policy.timeoutMs, ceilingMs)
  return Math.max(policy.timeoutMs, Math.min(Math.ceil(2 * srttMs), ceilingMs))
}

/** The prober reports its own timeouts (with its own words); this only catches one that never settles. */
const probeDeadlineMs = (context: HealthProberContext): number => Math.ceil(probeTimeoutMs(context.policy, context.srttMs) * 11 / 10)

const errorText = (error: unknown): string => error instanceof Error ? error.message : String(error)

export const healthProberMachine = setup({
  types: {
    context: {} as HealthProberContext,
    events: {} as HealthProberEvent,
    input: {} as HealthProberInput
  },
  actors: {
    probeTarget: fromPromise<ProbeResult, { prober: Prober, target: ProbeTarget, timeoutMs: number }>(
      async ({ input, signal }) => await input.prober.probe(input.target, { timeoutMs: input.timeoutMs, signal })
    ),
    probeIndirectly: fromPromise<IndirectOutcome, { prober: Prober, target: PeerId, via: PeerId[], timeoutMs: number }>(
      async ({ input, signal }) => await probeThroughHelpers(input, signal)
    )
  },
  delays: {
    probeInterval: ({ context }) => Math.max(0, context.nextProbeAtMs - context.clock.now()),
    probeDeadline: ({ context }) => probeDeadlineMs(context)
  },
  guards: {
    leadsTo: ({ context, event }, params: { verdict: Verdict }) => judged(context, event).verdict === params.verdict,
    leadsToSuspicion: ({ context, event }) => isSuspicion(context, event),
    isRefuted: (_, outcome: IndirectOutcome) => outcome.reachedBy.length > 0,
    isInconclusive: (_, result: ProbeResult) => result.inconclusive === true
  },
  actions: {
    scheduleNextProbe: assign(({ context }) => {
      const now = context.clock.now()
      return { probeStartedAtMs: now, nextProbeAtMs: now + jitteredMs(context.policy.intervalMs, context.policy.jitter, context.random.next()) }
    }),
    setCadence: assign(({ context, event }) => {
      if (event.type !== 'health.cadence.set') return {}
      const policy = { ...context.policy, intervalMs: event.intervalMs }
      checkHealthProberPolicy(policy)
      return { policy, nextProbeAtMs: context.probeStartedAtMs + jitteredMs(policy.intervalMs, policy.jitter, context.random.next()) }
    }),
    reportResult: raise((_, result: ProbeResult): ProbeEvent => result.ok
      ? { type: 'health.probe.succeeded', latencyMs: result.latencyMs }
      : { type: 'health.probe.failed', latencyMs: result.latencyMs, error: result.error ?? 'probe failed' }),
    reportFailure: raise((_, error: string): ProbeEvent => ({ type: 'health.probe.failed', error })),
    countInconclusive: assign({ inconclusive: ({ context }) => context.inconclusive + 1 }),
    recordProbe: assign(({ context, event }) => {
      const next = judged(context, event)
      return { ...next, ...counted(context, event) }
    }),
    /** Would be failed, but held at degraded while others are asked (SWIM suspicion). */
    recordSuspicion: assign(({ context, event }) => {
      const next = judged(context, event)
      return { verdict: 'degraded' as const, consecutiveOk: 0, consecutiveFail: next.consecutiveFail, ...counted(context, event) }
    }),
    /** A helper reached the peer: one failure short of suspecting it again. */
    recordRefutation: assign(({ context }, outcome: IndirectOutcome) => ({
      consecutiveFail: Math.max(0, context.policy.fall - 1),
      indirectRounds: context.indirectRounds + 1,
      lastIndirect: outcome
    })),
    recordConfirmation: assign(({ context }, outcome: IndirectOutcome | undefined) => ({
      verdict: 'failed' as const,
      indirectRounds: context.indirectRounds + 1,
      lastIndirect: outcome,
      lastError: outcome === undefined
        ? context.lastError
        : outcome.asked.length === 0 ? 'unreachable directly and no helper to ask' : `unreachable directly and through all ${outcome.asked.length} helpers asked`
    })),
    markChanged: assign(({ context }, params: { verdict: Verdict }) => ({
      verdict: params.verdict,
      reportedVerdict: params.verdict,
      previousVerdict: context.reportedVerdict,
      changedAtMs: context.clock.now()
    })),
    notifyVerdict: ({ context }) => {
      context.onVerdict?.(context.verdict, {
        target: context.target,
        previous: context.previousVerdict,
        atMs: context.changedAtMs ?? context.clock.now(),
        consecutiveOk: context.consecutiveOk,
        consecutiveFail: context.consecutiveFail,
        lastLatencyMs: context.lastLatencyMs,
        pathRttMs: context.pathRttMs,
        lastError: context.lastError,
        indirect: context.lastIndirect
      })
    }
  }
}).createMachine({
  id: 'health-prober',
  type: 'parallel',
  context: ({ input }) => {
    checkHealthProberPolicy(input.policy)
    return {
      ...input,
      verdict: 'unknown',
      consecutiveOk: 0,
      consecutiveFail: 0,
      lastLatencyMs: undefined,
      srttMs: undefined,
      pathRttMs: undefined,
      inconclusive: 0,
      probes: 0,
      failures: 0,
      lastError: undefined,
      changedAtMs: undefined,
      reportedVerdict: 'unknown',
      previousVerdict: 'unknown',
      nextProbeAtMs: input.clock.now(),
      probeStartedAtMs: input.clock.now(),
      indirectRounds: 0,
      lastIndirect: undefined
    }
  },
  states: {
    schedule: {
      initial: 'probing',
      states: {
        probing: {
          entry: 'scheduleNextProbe',
          invoke: {
            id: 'probe',
            src: 'probeTarget',
            input: ({ context }) => ({ prober: context.prober, target: context.target, timeoutMs: probeTimeoutMs(context.policy, context.srttMs) }),
            onDone: [
              { guard: { type: 'isInconclusive', params: ({ event }) => event.output }, target: 'resting', actions: 'countInconclusive' },
              { target: 'resting', actions: { type: 'reportResult', params: ({ event }) => event.output } }
            ],
            onError: { target: 'resting', actions: { type: 'reportFailure', params: ({ event }) => `probe error: ${errorText(event.error)}` } }
          },
          after: {
            probeDeadline: { target: 'resting', actions: { type: 'reportFailure', params: ({ context }) => `probe did not settle within ${probeDeadlineMs(context)} ms` } }
          },
          on: { 'health.cadence.set': { actions: 'setCadence' } }
        },
        resting: {
          after: { probeInterval: 'probing' },
          on: {
            'health.check.now': 'probing',
            // Re-entered so the wait is measured against the new due time.
            'health.cadence.set': { target: 'resting', reenter: true, actions: 'setCadence' }
          }
        }
      }
    },
    verdict: {
      initial: 'unknown',
      states: {
        unknown: {
          on: {
            'health.probe.*': [
              { guard: { type: 'leadsTo', params: { verdict: 'healthy' } }, target: 'healthy', actions: 'recordProbe' },
              { guard: { type: 'leadsTo', params: { verdict: 'degraded' } }, target: 'degraded', actions: 'recordProbe' },
              { guard: 'leadsToSuspicion', target: 'degraded.suspect', actions: 'recordSuspicion' },
              { guard: { type: 'leadsTo', params: { verdict: 'failed' } }, target: 'failed', actions: 'recordProbe' },
              { actions: 'recordProbe' }
            ]
          }
        },
        healthy: {
          entry: [{ type: 'markChanged', params: { verdict: 'healthy' } }, 'notifyVerdict'],
          on: {
            'health.probe.*': [
              { guard: 'leadsToSuspicion', target: 'degraded.suspect', actions: 'recordSuspicion' },
              { guard: { type: 'leadsTo', params: { verdict: 'failed' } }, target: 'failed', actions: 'recordProbe' },
              { guard: { type: 'leadsTo', params: { verdict: 'degraded' } }, target: 'degraded', actions: 'recordProbe' },
              { actions: 'recordProbe' }
            ]
          }
        },
        degraded: {
          entry: [{ type: 'markChanged', params: { verdict: 'degraded' } }, 'notifyVerdict'],
          initial: 'observing',
          states: {
            observing: {
              on: {
                'health.probe.*': [
                  { guard: { type: 'leadsTo', params: { verdict: 'healthy' } }, target: '#health-prober.verdict.healthy', actions: 'recordProbe' },
                  { guard: 'leadsToSuspicion', target: 'suspect', actions: 'recordSuspicion' },
                  { guard: { type: 'leadsTo', params: { verdict: 'failed' } }, target: '#health-prober.verdict.failed', actions: 'recordProbe' },
                  { actions: 'recordProbe' }
                ]
              }
            },
            /** Direct probes say failed; k helpers are asked before anyone is told. */
            suspect: {
              invoke: {
                id: 'indirectProbe',
                src: 'probeIndirectly',
                input: ({ context }) => ({
                  prober: context.prober,
                  target: (context.target as { peerId: PeerId }).peerId,
                  via: chooseHelpers(context.policy.indirect?.via() ?? [], (context.target as { peerId: PeerId }).peerId, context.policy.indirect?.k ?? 0, context.random),
                  timeoutMs: probeTimeoutMs(context.policy, context.srttMs)
                }),
                onDone: [
                  { guard: { type: 'isRefuted', params: ({ event }) => event.output }, target: 'observing', actions: { type: 'recordRefutation', params: ({ event }) => event.output } },
                  { target: '#health-prober.verdict.failed', actions: { type: 'recordConfirmation', params: ({ event }) => event.output } }
                ],
                onError: { target: '#health-prober.verdict.failed', actions: { type: 'recordConfirmation', params: undefined } }
              },
              on: {
                'health.probe.*': [
                  { guard: { type: 'leadsTo', params: { verdict: 'healthy' } }, target: '#health-prober.verdict.healthy', actions: 'recordProbe' },
                  // Another direct failure changes nothing while the helpers are out.
                  { guard: { type: 'leadsTo', params: { verdict: 'failed' } }, actions: 'recordSuspicion' },
                  // A direct answer refutes the suspicion by itself.
                  { target: 'observing', actions: 'recordProbe' }
                ]
              }
            }
          }
        },
        failed: {
          entry: [{ type: 'markChanged', params: { verdict: 'failed' } }, 'notifyVerdict'],
          on: {
            'health.probe.*': [
              { guard: { type: 'leadsTo', params: { verdict: 'healthy' } }, target: 'healthy', actions: 'recordProbe' },
              { guard: { type: 'leadsTo', params: { verdict: 'degraded' } }, target: 'degraded', actions: 'recordProbe' },
              { actions: 'recordProbe' }
            ]
          }
        }
      }
    }
  }
})

/** RFC 6298 §2: SRTT ← 7/8 SRTT + 1/8 R, starting at the first sample. */
function smoothed (srttMs: number | undefined, sampleMs: number): number {
  return srttMs === undefined ? sampleMs : srttMs + (sampleMs - srttMs) / 8
}

/**
 * The RTT a route counts: a sample below the estimate is taken at once, one above it moves the
 * estimate by 1/8 of the difference. Delay noise on a path only ever adds (queues, a busy host, a
 * slow first answer while a connection warms up), so the low samples are the path and the high
 * ones mostly noise: a spike or two barely moves the cost, and a slow first sample does not linger
 * the way it does in SRTT. A real rise is still followed, at SRTT's pace.
 */
export function pathRtt (estimateMs: number | undefined, sampleMs: number): number {
  return estimateMs === undefined || sampleMs < estimateMs ? sampleMs : estimateMs + (sampleMs - estimateMs) / 8
}

function counted (context: HealthProberContext, event: HealthProberEvent): Partial<HealthProberContext> {
  const failed = event.type === 'health.probe.failed'
  return {
    probes: context.probes + 1,
    failures: context.failures + (failed ? 1 : 0),
    lastLatencyMs: failed ? context.lastLatencyMs : (event as { latencyMs: number }).latencyMs,
    srttMs: failed ? context.srttMs : smoothed(context.srttMs, (event as { latencyMs: number }).latencyMs),
    pathRttMs: failed ? context.pathRttMs : pathRtt(context.pathRttMs, (event as { latencyMs: number }).latencyMs),
    lastError: failed ? event.error : context.lastError
  }
}

/** The verdict region's state as one name: unknown, healthy, degraded, suspect or failed. */
export function healthStateName (value: unknown): string {
  const verdict = (value as { verdict?: unknown } | undefined)?.verdict
  if (typeof verdict === 'string') return verdict
  if (verdict !== null && typeof verdict === 'object' && 'degraded' in verdict) {
    return (verdict as { degraded: string }).degraded === 'suspect' ? 'suspect' : 'degraded'
  }
  return 'unknown'
}
