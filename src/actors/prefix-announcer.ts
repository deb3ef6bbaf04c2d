// Prefix announcer: one per anycast prefix served on this node. It turns the local service's health
// (from its health prober) into announcements, as ExaBGP's healthcheck does for BGP:
//
//   withdrawn ──service.healthy──▶ announcing ──announceDelay──▶ announced.healthy ⇄ announced.degraded
//      ▲   │                           │                              │  (refresh every ttl/3)
//      │   └──healthy but damped──▶ suppressed ──reuseDelay──▶ announcing
//      └──────────── service.failed: withdraw, record a flap ─────────┘
//   announced ──announcer.drain──▶ draining (announce de-preferred) ──drainTime──▶ withdraw ▶ drained
//
// Hysteresis comes from the prober (rise) plus a short `announceDelay`; only a healthy service is
// announced. A degraded one stays announced with health 'degraded', so selection de-prefers it
// without the churn of a withdrawal; a failed one is withdrawn. Each withdrawal for failure is a flap
// for route flap damping (damping.ts, RFC 2439): once suppressed, a recovered service waits in
// `suppressed` until its penalty decays to the reuse threshold. Failures while suppressed count too,
// as withdrawals of a suppressed route do in RFC 2439, so a service that keeps flapping stays out.
//
// Effects go through input callbacks, called from actions: `announce(attributes)` and `withdraw()`
// (the runtime owns signing, sequence numbers and publishing), and `onDrained()` so the host can exit
// once the prefix is gone. Time comes from the clock port, jitter from `random`.
import { assign, setup } from 'xstate'
import type { Clock, Random } from '../runtime/ports.ts'
import type { HealthState, RouteAttributes } from '../protocols/routes.ts'
import {
  checkDampingPolicy, defaultDampingPolicy, isSuppressed, recordFlap, reuseAtMs,
  type DampingPolicy, type DampingState
} from '../protocols/damping.ts'

export interface PrefixAnnouncerPolicy {
  /** Hold-down before the first announcement: uniform in [0, announceDelayMs], spreading restarts. */
  announceDelayMs: number
  /** How long a draining origin stays announced, de-preferred, before it withdraws. */
  drainTimeMs: number
  damping: DampingPolicy
}

export const defaultPrefixAnnouncerPolicy: PrefixAnnouncerPolicy = {
  announceDelayMs: 100,
  drainTimeMs: 1000,
  damping: defaultDampingPolicy
}

export class PrefixAnnouncerPolicyError extends Error {
  override name = 'PrefixAnnouncerPolicyError'
}

/** Throws PrefixAnnouncerPolicyError naming the bad field. */
export function checkPrefixAnnouncerPolicy (policy: PrefixAnnouncerPolicy, attributes: Omit<RouteAttributes, 'health'>): void {
  if (!(policy.announceDelayMs >= 0) || !Number.isFinite(policy.announceDelayMs)) throw new PrefixAnnouncerPolicyError(`announceDelayMs must be >= 0, got ${policy.announceDelayMs}`)
  if (!(policy.drainTimeMs >= 0) || !Number.isFinite(policy.drainTimeMs)) throw new PrefixAnnouncerPolicyError(`drainTimeMs must be >= 0, got ${policy.drainTimeMs}`)
  if (!(attributes.ttlMs >= 3) || !Number.isFinite(attributes.ttlMs)) throw new PrefixAnnouncerPolicyError(`attributes.ttlMs must be >= 3, got ${attributes.ttlMs}`)
  try { checkDampingPolicy(policy.damping) } catch (error) { throw new PrefixAnnouncerPolicyError(`damping: ${(error as Error).message}`) }
}

export interface PrefixAnnouncerInput {
  prefix: string
  service: string
  /** Everything but health, which the announcer sets; `ttlMs` also sets the refresh (ttl / 3). */
  attributes: Omit<RouteAttributes, 'health'>
  /** Publish (or re-publish with a new seq) this node's announcement of the prefix. */
  announce: (attributes: RouteAttributes) => void
  /** Publish an explicit withdrawal of the prefix. */
  withdraw: () => void
  /** `announcer.drained`: the prefix is withdrawn after a drain; the host may exit. */
  onDrained?: () => void
  clock: Clock
  random: Random
  policy: PrefixAnnouncerPolicy
}

export type ServiceHealth = 'unknown' | HealthState

export interface PrefixAnnouncerContext extends PrefixAnnouncerInput {
  serviceHealth: ServiceHealth
  damping: DampingState
  /** While suppressed: when the penalty decays to reuse. */
  suppressedUntilMs: number | undefined
  /** What is currently announced, undefined while withdrawn. */
  announced: RouteAttributes | undefined
  announcedAtMs: number | undefined
  announcements: number
  withdrawals: number
}

export type PrefixAnnouncerEvent =
  | { type: 'service.healthy' }
  | { type: 'service.degraded' }
  | { type: 'service.failed' }
  | { type: 'announcer.drain' }

const healthOf: Record<PrefixAnnouncerEvent['type'], ServiceHealth | undefined> = {
  'service.healthy': 'healthy',
  'service.degraded': 'degraded',
  'service.failed': 'failed',
  'announcer.drain': undefined
}

/** RFC 4271 §10-style jitter: each refresh is ttl/3 scaled by [0.75, 1], never later than ttl/3. */
const REFRESH_JITTER_FLOOR = 0.75

export const prefixAnnouncerMachine = setup({
  types: {
    context: {} as PrefixAnnouncerContext,
    events: {} as PrefixAnnouncerEvent,
    input: {} as PrefixAnnouncerInput
  },
  delays: {
    announceDelay: ({ context }) => Math.round(context.random.next() * context.policy.announceDelayMs),
    refreshInterval: ({ context }) =>
      Math.round((context.attributes.ttlMs / 3) * (REFRESH_JITTER_FLOOR + (1 - REFRESH_JITTER_FLOOR) * context.random.next())),
    reuseDelay: ({ context }) => Math.max(1, reuseAtMs(context.damping, context.policy.damping) - context.clock.now()),
    drainTime: ({ context }) => context.policy.drainTimeMs
  },
  guards: {
    isSuppressed: ({ context }) => isSuppressed(context.damping, context.clock.now(), context.policy.damping)
  },
  actions: {
    rememberHealth: assign({ serviceHealth: ({ context, event }) => healthOf[event.type] ?? context.serviceHealth }),
    recordFlap: assign({ damping: ({ context }) => recordFlap(context.damping, context.clock.now(), context.policy.damping) }),
    markSuppressed: assign({ suppressedUntilMs: ({ context }) => reuseAtMs(context.damping, context.policy.damping) }),
    clearSuppressed: assign({ suppressedUntilMs: undefined }),
    recordAnnouncement: assign(({ context }, params: { health: HealthState, preference?: number }) => ({
      announced: { ...context.attributes, health: params.health, preference: params.preference ?? context.attributes.preference },
      announcedAtMs: context.clock.now(),
      announcements: context.announcements + 1
    })),
    publishAnnouncement: ({ context }) => { if (context.announced !== undefined) context.announce(context.announced) },
    recordWithdrawal: assign({ announced: undefined, announcedAtMs: undefined, withdrawals: ({ context }) => context.withdrawals + 1 }),
    publishWithdrawal: ({ context }) => { context.withdraw() },
    notifyDrained: ({ context }) => { context.onDrained?.() }
  }
}).createMachine({
  id: 'prefix-announcer',
  context: ({ input }) => {
    checkPrefixAnnouncerPolicy(input.policy, input.attributes)
    return {
      ...input,
      serviceHealth: 'unknown',
      damping: { penalty: 0, updatedAtMs: input.clock.now(), suppressed: false, flaps: 0 },
      suppressedUntilMs: undefined,
      announced: undefined,
      announcedAtMs: undefined,
      announcements: 0,
      withdrawals: 0
    }
  },
  initial: 'withdrawn',
  on: {
    // Nothing is announced outside `announced` and `draining`, so there is nothing to drain.
    'announcer.drain': '.drained'
  },
  states: {
    withdrawn: {
      on: {
        'service.healthy': [
          { guard: 'isSuppressed', target: 'suppressed', actions: 'rememberHealth' },
          { target: 'announcing', actions: 'rememberHealth' }
        ],
        'service.degraded': { actions: 'rememberHealth' },
        'service.failed': { actions: 'rememberHealth' }
      }
    },
    /** Healthy; holding down briefly before announcing. */
    announcing: {
      after: { announceDelay: 'announced' },
      on: {
        'service.degraded': { target: 'withdrawn', actions: 'rememberHealth' },
        'service.failed': { target: 'withdrawn', actions: 'rememberHealth' }
      }
    },
    announced: {
      initial: 'healthy',
      on: {
        'service.failed': { target: 'withdrawn', actions: ['rememberHealth', 'recordFlap', 'recordWithdrawal', 'publishWithdrawal'] },
        'announcer.drain': 'draining'
      },
      states: {
        healthy: {
          entry: [{ type: 'recordAnnouncement', params: { health: 'healthy' } }, 'publishAnnouncement'],
          after: { refreshInterval: { target: 'healthy', reenter: true } },
          on: { 'service.degraded': { target: 'degraded', actions: 'rememberHealth' } }
        },
        /** Still serving, de-preferred: selection prefers any healthy origin over this one. */
        degraded: {
          entry: [{ type: 'recordAnnouncement', params: { health: 'degraded' } }, 'publishAnnouncement'],
          after: { refreshInterval: { target: 'degraded', reenter: true } },
          on: { 'service.healthy': { target: 'healthy', actions: 'rememberHealth' } }
        }
      }
    },
    /** Healthy but damped (RFC 2439): not announced until the penalty decays to reuse. */
    suppressed: {
      entry: 'markSuppressed',
      exit: 'clearSuppressed',
      after: {
        reuseDelay: [
          { guard: 'isSuppressed', target: 'suppressed', reenter: true },
          { target: 'announcing' }
        ]
      },
      on: {
        'service.degraded': { target: 'withdrawn', actions: 'rememberHealth' },
        'service.failed': { target: 'withdrawn', actions: ['rememberHealth', 'recordFlap'] }
      }
    },
    /** Shutting down: still announced but de-preferred, so traffic moves before the withdrawal. */
    draining: {
      entry: [{ type: 'recordAnnouncement', params: { health: 'degraded', preference: 0 } }, 'publishAnnouncement'],
      after: { drainTime: { target: 'drained', actions: ['recordWithdrawal', 'publishWithdrawal'] } },
      on: {
        'service.failed': { target: 'drained', actions: ['rememberHealth', 'recordWithdrawal', 'publishWithdrawal'] },
        'announcer.drain': {}
      }
    },
    drained: {
      type: 'final',
      entry: 'notifyDrained'
    }
  }
})

/** The top-level state name, as status and checkers report it. */
export function announcerStateName (value: unknown): string {
  if (typeof value === 'string') return value
  if (value !== null && typeof value === 'object') return Object.keys(value)[0] ?? 'unknown'
  return 'unknown'
}
