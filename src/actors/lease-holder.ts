// IP lease holder: one per lease this node holds or wants (its overlay unicast address, or an
// anycast address of a service it serves). The DHCP client state machine of RFC 2131 §4.4, with
// the address conflict detection of RFC 5227 for exclusive (unicast) addresses:
//
//   init ──address──▶ requesting ──acked (exclusive: still ours after confirmWait)──▶ holding
//    ▲     probing → sending → settling → verifying; waiting (back-off) after a timeout or error
//    │                  holding.lease: bound ──T1 = 0.5──▶ renewing ──T2 = 0.875──▶ rebinding
//    ├──conflictDelay── conflict ◀── another holder seen while requesting or holding (exclusive only)
//    └──retryDelay───── expired ◀─── lease end in rebinding with nothing acked
//   holding ──lease.release──▶ [anycast: draining ──lease.drained | drainTimeout──▶] releasing ──▶ released
//
// Times follow RFC 2131 §4.4.5: the lease runs from when the granting request was *sent* (the
// client's conservative view, §4.4.1), T1 at half of it, T2 at seven eighths, and a renewal that is
// acked starts a new lease. Requests that time out or fail are retried with exponential back-off
// and jitter (backoff.ts); while renewing and rebinding the T2 and lease-end timers run regardless.
//
// An exclusive address is checked before it is claimed (RFC 5227 §2.1.1 probe), once more
// `confirmWaitMs` after the ack (so a rival claim still in flight lands before the address is used,
// RFC 5227's ANNOUNCE_WAIT in spirit), and every `probeIntervalMs` while held. "Checked" means
// `currentHolder(address)`: the live holder per the replicated state and the conflict rule (ipam.ts,
// smaller first-claim hlc then node id). Another holder puts the actor in `conflict`: it stops using
// the address (onLost), never uses it again (`excluded`, bounded), and returns to init for another.
// A host that learns of a change sooner (a state op arrived) may send `lease.holder.observed` itself.
// A loser never deletes its claim (the key is the winner's too); unrenewed, it expires by itself.
// Anycast leases are shared on purpose and never conflict; releasing one first drains, so the
// prefix announcer can de-prefer and withdraw before the lease that authorises it goes away.
//
// Every effect goes through the input: the lease operations (promises taking an AbortSignal),
// `currentHolder`, `chooseAddress`, the notifications; time through the actor's clock, jitter through
// `random`. The actor writes nothing itself; the host writes the lease op durably before it acks.
import { assign, enqueueActions, fromPromise, setup } from 'xstate'
import type { Clock, Random } from '../runtime/ports.ts'
import { backoffDelayMs, type BackoffPolicy } from '../protocols/backoff.ts'
import { leaseTimes, type LeaseKind } from '../protocols/ipam.ts'

export interface LeaseHolderPolicy {
  /** A request, renewal or release not settled within this is abandoned (and retried, but release). */
  requestTimeoutMs: number
  /** How often a held exclusive address is checked against the replicated state: the detection bound. */
  probeIntervalMs: number
  /** After an ack, wait this long before using an exclusive address, then check it once more. */
  confirmWaitMs: number
  /** Longest wait for `lease.drained` when releasing an anycast lease. */
  drainTimeoutMs: number
  /** Retries of failed requests, the restart after expiry, and re-requests after conflicts. */
  backoff: BackoffPolicy
  /** Addresses lost to conflicts that are never tried again; the oldest is forgotten beyond this. */
  maxExcluded: number
}

export const defaultLeaseHolderPolicy: LeaseHolderPolicy = {
  requestTimeoutMs: 2000,
  probeIntervalMs: 1000,
  confirmWaitMs: 1000,
  drainTimeoutMs: 5000,
  backoff: { minMs: 250, maxMs: 30_000, jitter: 0.25 },
  maxExcluded: 64
}

export type LeasePhase = 'request' | 'renew' | 'rebind' | 'release'

/** What the host is asked to grant, renew or release. */
export interface LeaseRequest {
  address: string
  kind: LeaseKind
  /** The service of an anycast lease. */
  service: string | undefined
  holder: string
  /** Send time + leaseMs: the expiry the host writes into the lease (RFC 2131 §4.4.1). */
  expiresAtMs: number
  phase: LeasePhase
}

export type RequestOutcome = 'acked' | 'conflict' | 'exhausted'
export type RenewOutcome = 'acked' | 'conflict'

export interface LeaseBinding {
  address: string
  kind: LeaseKind
  service: string | undefined
  expiresAtMs: number
  /** False when newly bound, true when a renewal (or rebinding) extended the lease. */
  renewed: boolean
}

export interface LeaseLoss {
  address: string
  kind: LeaseKind
  reason: 'conflict' | 'expired' | 'released'
  /** The node that holds the address now, for a conflict. */
  holder?: string
}

export interface LeaseHolderInput {
  /** This node's id: the holder written into the lease. */
  nodeId: string
  kind: LeaseKind
  /** Required for anycast leases. */
  service?: string
  /** The address to ask for first (a fixed address, or the one held before a restart). */
  address?: string
  leaseMs: number
  clock: Clock
  random: Random
  policy?: LeaseHolderPolicy
  /** Picks an address not in `excluded` (the host runs ipam.ts over its view); undefined when none is free. */
  chooseAddress?: (excluded: readonly string[]) => string | undefined
  /** Claim the address; resolves once the granting op is durable. 'exhausted': nothing can be granted now. */
  requestLease: (request: LeaseRequest, options: { signal: AbortSignal }) => Promise<RequestOutcome>
  renewLease: (request: LeaseRequest, options: { signal: AbortSignal }) => Promise<RenewOutcome>
  /** Delete this node's own lease on the address (never another holder's). */
  releaseLease: (request: LeaseRequest, options: { signal: AbortSignal }) => Promise<void>
  /** The live holder of an exclusive address per the replicated state; required for unicast. */
  currentHolder?: (address: string) => string | undefined
  /** The address may be used (configured, announced) until `expiresAtMs`. */
  onBound?: (binding: LeaseBinding) => void
  /** The address must no longer be used. */
  onLost?: (loss: LeaseLoss) => void
  /** Releasing an anycast lease: de-prefer and withdraw its announcement, then send `lease.drained`. */
  onDraining?: (address: string) => void
}

export class LeaseHolderInputError extends Error {
  override name = 'LeaseHolderInputError'
  constructor (readonly field: string, reason: string) {
    super(`lease holder: ${field}: ${reason}`)
  }
}

const isPositive = (value: unknown): boolean => typeof value === 'number' && value > 0 && Number.isFinite(value)

/** Throws LeaseHolderInputError naming the first bad field. */
export function checkLeaseHolderInput (input: LeaseHolderInput): void {
  const fail = (field: string, reason: string): never => { throw new LeaseHolderInputError(field, reason) }
  if (typeof input.nodeId !== 'string' || input.nodeId.length === 0) fail('nodeId', 'must be a non-empty string')
  if (input.kind !== 'unicast' && input.kind !== 'anycast') fail('kind', `must be "unicast" or "anycast", got ${String(input.kind)}`)
  if (input.kind === 'anycast' && (typeof input.service !== 'string' || input.service.length === 0)) fail('service', 'is required for an anycast lease')
  if (!isPositive(input.leaseMs)) fail('leaseMs', `must be a finite number > 0, got ${String(input.leaseMs)}`)
  if (input.address === undefined && input.chooseAddress === undefined) fail('address', 'give an address or chooseAddress')
  for (const field of ['requestLease', 'renewLease', 'releaseLease'] as const) {
    if (typeof input[field] !== 'function') fail(field, 'must be a function')
  }
  if (input.kind === 'unicast' && typeof input.currentHolder !== 'function') fail('currentHolder', 'is required for an exclusive (unicast) lease')
  const policy = input.policy ?? defaultLeaseHolderPolicy
  for (const field of ['requestTimeoutMs', 'probeIntervalMs', 'confirmWaitMs', 'drainTimeoutMs'] as const) {
    if (!isPositive(policy[field])) fail(`policy.${field}`, `must be a finite number > 0, got ${String(policy[field])}`)
  }
  const { minMs, maxMs, jitter } = policy.backoff
  if (!isPositive(minMs) || !isPositive(maxMs) || maxMs < minMs) fail('policy.backoff', `needs 0 < minMs <= maxMs, got ${minMs}, ${maxMs}`)
  if (!(jitter >= 0 && jitter < 1)) fail('policy.backoff.jitter', `must be in [0, 1), got ${jitter}`)
  if (!Number.isSafeInteger(policy.maxExcluded) || policy.maxExcluded < 0) fail('policy.maxExcluded', `must be an integer >= 0, got ${policy.maxExcluded}`)
}

export interface LeaseHolderContext extends LeaseHolderInput {
  policy: LeaseHolderPolicy
  /** The address being requested or held. */
  address: string | undefined
  /** The input's address, asked for again after the host had nothing to grant. */
  preferredAddress: string | undefined
  /** Addresses lost to conflicts, oldest first. */
  excluded: string[]
  /** Send time of the request in flight, or of the last one sent. */
  sentAtMs: number
  leaseStartMs: number | undefined
  expiresAtMs: number | undefined
  /** The address was handed to onBound and not yet taken back with onLost. */
  inUse: boolean
  /** Consecutive failed requests; drives the back-off. */
  failures: number
  conflicts: number
  /** Renewals (and rebindings) acked since the address was bound. */
  renewals: number
  lastError: string | undefined
  /** Who held the address when the last conflict was seen. */
  conflictHolder: string | undefined
}

export type LeaseHolderEvent =
  /** Give the lease up (drain first if anycast). */
  | { type: 'lease.release' }
  /** The announcement of a draining anycast lease is withdrawn. */
  | { type: 'lease.drained' }
  /** Look at the replicated state now rather than at the next probe. */
  | { type: 'lease.check' }
  /** Who holds `address` now (raised by the actor's own checks; a host may send it too). */
  | { type: 'lease.holder.observed', address: string, holder: string | undefined }

const errorText = (error: unknown): string => error instanceof Error ? error.message : String(error)

function requestOf (context: LeaseHolderContext, phase: LeasePhase): LeaseRequest {
  return {
    address: context.address ?? '',
    kind: context.kind,
    service: context.service,
    holder: context.nodeId,
    expiresAtMs: context.sentAtMs + context.leaseMs,
    phase
  }
}

type LeaseCall<T> = (request: LeaseRequest, options: { signal: AbortSignal }) => Promise<T>

const callHost = <T>() => fromPromise<T, { call: LeaseCall<T>, request: LeaseRequest }>(
  async ({ input, signal }) => await input.call(input.request, { signal })
)

const leaseTimesOf = (context: LeaseHolderContext): ReturnType<typeof leaseTimes> =>
  leaseTimes(context.leaseStartMs ?? context.clock.now(), context.leaseMs)

const untilMs = (context: LeaseHolderContext, atMs: number): number => Math.max(0, atMs - context.clock.now())

export const leaseHolderMachine = setup({
  types: {
    context: {} as LeaseHolderContext,
    events: {} as LeaseHolderEvent,
    input: {} as LeaseHolderInput
  },
  actors: {
    requestLease: callHost<RequestOutcome>(),
    renewLease: callHost<RenewOutcome>(),
    releaseLease: callHost<void>()
  },
  delays: {
    retryDelay: ({ context }) => backoffDelayMs(context.policy.backoff, context.failures - 1, context.random.next()),
    conflictDelay: ({ context }) => backoffDelayMs(context.policy.backoff, context.conflicts - 1, context.random.next()),
    requestTimeout: ({ context }) => context.policy.requestTimeoutMs,
    confirmWait: ({ context }) => context.policy.confirmWaitMs,
    probeInterval: ({ context }) => context.policy.probeIntervalMs,
    drainTimeout: ({ context }) => context.policy.drainTimeoutMs,
    renewalTime: ({ context }) => untilMs(context, leaseTimesOf(context).renewAtMs),
    rebindingTime: ({ context }) => untilMs(context, leaseTimesOf(context).rebindAtMs),
    leaseEnd: ({ context }) => untilMs(context, leaseTimesOf(context).expiresAtMs)
  },
  guards: {
    hasAddress: ({ context }) => context.address !== undefined,
    isExclusive: ({ context }) => context.kind === 'unicast',
    isShared: ({ context }) => context.kind === 'anycast',
    isAboutAddress: ({ context, event }) => event.type === 'lease.holder.observed' && event.address === context.address,
    /** Another node holds our exclusive address (RFC 5227: someone else answers for it). */
    isTakenByAnother: ({ context, event }) => context.kind === 'unicast' && event.type === 'lease.holder.observed' &&
      event.address === context.address && event.holder !== undefined && event.holder !== context.nodeId,
    isOutcome: (_, params: { outcome: unknown, is: RequestOutcome }) => params.outcome === params.is,
    isExclusiveConflict: ({ context }, params: { outcome: unknown }) => context.kind === 'unicast' && params.outcome === 'conflict'
  },
  actions: {
    chooseAddress: assign(({ context }) => {
      const { address, excluded } = context
      if (address !== undefined && !excluded.includes(address)) return {}
      if (context.chooseAddress === undefined) return { address: undefined, lastError: `no address to request: ${address ?? 'none'} was lost to a conflict` }
      try {
        const chosen = context.chooseAddress(excluded)
        if (chosen !== undefined && excluded.includes(chosen)) return { address: undefined, lastError: `chooseAddress returned the excluded ${chosen}` }
        return chosen === undefined ? { address: undefined, lastError: 'no free address' } : { address: chosen }
      } catch (error) {
        return { address: undefined, lastError: errorText(error) }
      }
    }),
    /** Raises `lease.holder.observed` with what the replicated state says now (exclusive leases only). */
    observeHolder: enqueueActions(({ context, enqueue }) => {
      if (context.kind !== 'unicast' || context.address === undefined || context.currentHolder === undefined) return
      enqueue.raise({ type: 'lease.holder.observed', address: context.address, holder: context.currentHolder(context.address) })
    }),
    markSent: assign({ sentAtMs: ({ context }) => context.clock.now() }),
    recordFailure: assign(({ context }, reason: string) => ({ failures: context.failures + 1, lastError: reason })),
    adoptLease: assign(({ context }) => ({
      leaseStartMs: context.sentAtMs,
      expiresAtMs: context.sentAtMs + context.leaseMs,
      failures: 0,
      lastError: undefined
    })),
    countRenewal: assign({ renewals: ({ context }) => context.renewals + 1 }),
    notifyBound: enqueueActions(({ context, enqueue }, params: { renewed: boolean }) => {
      const { address, expiresAtMs } = context
      if (address === undefined || expiresAtMs === undefined) return
      enqueue.assign({ inUse: true })
      enqueue(() => context.onBound?.({ address, kind: context.kind, service: context.service, expiresAtMs, renewed: params.renewed }))
    }),
    notifyLost: enqueueActions(({ context, enqueue }, params: { reason: LeaseLoss['reason'] }) => {
      const address = context.address
      if (!context.inUse || address === undefined) return
      enqueue.assign({ inUse: false })
      const holder = params.reason === 'conflict' ? context.conflictHolder : undefined
      enqueue(() => context.onLost?.({ address, kind: context.kind, reason: params.reason, ...(holder === undefined ? {} : { holder }) }))
    }),
    recordConflictHolder: assign({
      conflictHolder: ({ event }) => event.type === 'lease.holder.observed' ? event.holder : undefined
    }),
    /** RFC 5227 §2.1.1: the address is given up for good; the next request picks another. */
    excludeAddress: assign(({ context }) => {
      const excluded = context.address === undefined ? context.excluded : [...context.excluded, context.address]
      return {
        excluded: excluded.slice(Math.max(0, excluded.length - context.policy.maxExcluded)),
        address: undefined,
        conflicts: context.conflicts + 1,
        lastError: `conflict on ${context.address ?? '?'}: held by ${context.conflictHolder ?? 'another node'}`
      }
    }),
    forgetLease: assign({ leaseStartMs: undefined, expiresAtMs: undefined }),
    announceDraining: ({ context }) => { if (context.address !== undefined) context.onDraining?.(context.address) }
  }
}).createMachine({
  id: 'lease-holder',
  context: ({ input }) => {
    checkLeaseHolderInput(input)
    return {
      ...input,
      policy: input.policy ?? defaultLeaseHolderPolicy,
      address: input.address,
      preferredAddress: input.address,
      excluded: [],
      sentAtMs: input.clock.now(),
      leaseStartMs: undefined,
      expiresAtMs: undefined,
      inUse: false,
      failures: 0,
      conflicts: 0,
      renewals: 0,
      lastError: undefined,
      conflictHolder: undefined
    }
  },
  initial: 'init',
  on: {
    // Nothing is held outside `requesting` and `holding`: giving up is immediate.
    'lease.release': '.released'
  },
  states: {
    init: {
      initial: 'choosing',
      states: {
        choosing: {
          entry: 'chooseAddress',
          always: [
            { guard: 'hasAddress', target: '#lease-holder.requesting' },
            { target: 'waiting', actions: assign({ failures: ({ context }) => context.failures + 1 }) }
          ]
        },
        /** No address to ask for (pool full, or the fixed one lost): ask again later. */
        waiting: {
          after: { retryDelay: 'choosing' }
        }
      }
    },
    requesting: {
      initial: 'probing',
      // The request may have been granted already; releaseLease removes only our own lease.
      on: { 'lease.release': 'releasing' },
      states: {
        /** RFC 5227 §2.1.1 probe: is the address already held by someone else? */
        probing: {
          entry: 'observeHolder',
          always: { guard: 'isShared', target: 'sending' },
          on: {
            'lease.holder.observed': [
              { guard: 'isTakenByAnother', target: '#lease-holder.conflict', actions: 'recordConflictHolder' },
              { guard: 'isAboutAddress', target: 'sending' }
            ]
          }
        },
        sending: {
          entry: 'markSent',
          invoke: {
            id: 'requestLease',
            src: 'requestLease',
            input: ({ context }) => ({ call: context.requestLease, request: requestOf(context, 'request') }),
            onDone: [
              { guard: { type: 'isOutcome', params: ({ event }) => ({ outcome: event.output, is: 'acked' }) }, target: 'settling' },
              { guard: { type: 'isExclusiveConflict', params: ({ event }) => ({ outcome: event.output }) }, target: '#lease-holder.conflict' },
              {
                guard: { type: 'isOutcome', params: ({ event }) => ({ outcome: event.output, is: 'exhausted' }) },
                target: '#lease-holder.init.waiting',
                actions: [{ type: 'recordFailure', params: 'the host has no address to grant' }, assign({ address: ({ context }) => context.preferredAddress })]
              },
              { target: 'waiting', actions: { type: 'recordFailure', params: ({ event }) => `unexpected answer ${String(event.output)}` } }
            ],
            onError: { target: 'waiting', actions: { type: 'recordFailure', params: ({ event }) => `request failed: ${errorText(event.error)}` } }
          },
          after: {
            requestTimeout: { target: 'waiting', actions: { type: 'recordFailure', params: ({ context }) => `request not answered within ${context.policy.requestTimeoutMs} ms` } }
          }
        },
        /** Acked; an exclusive address waits for rival claims still in flight to land. */
        settling: {
          always: { guard: 'isShared', target: '#lease-holder.holding' },
          after: { confirmWait: 'verifying' },
          on: {
            'lease.holder.observed': { guard: 'isTakenByAnother', target: '#lease-holder.conflict', actions: 'recordConflictHolder' }
          }
        },
        verifying: {
          entry: 'observeHolder',
          on: {
            'lease.holder.observed': [
              { guard: 'isTakenByAnother', target: '#lease-holder.conflict', actions: 'recordConflictHolder' },
              { guard: 'isAboutAddress', target: '#lease-holder.holding' }
            ]
          }
        },
        waiting: {
          after: { retryDelay: 'probing' }
        }
      }
    },
    holding: {
      type: 'parallel',
      entry: ['adoptLease', assign({ renewals: 0 })],
      on: {
        'lease.holder.observed': { guard: 'isTakenByAnother', target: 'conflict', actions: 'recordConflictHolder' },
        'lease.check': { actions: 'observeHolder' },
        'lease.release': [
          { guard: 'isShared', target: 'draining' },
          { target: 'releasing' }
        ]
      },
      states: {
        lease: {
          initial: 'bound',
          states: {
            bound: {
              entry: { type: 'notifyBound', params: ({ context }) => ({ renewed: context.renewals > 0 }) },
              after: { renewalTime: 'renewing' }
            },
            /** Past T1: extend the lease (RFC 2131 §4.4.5 RENEWING). */
            renewing: {
              initial: 'sending',
              after: { rebindingTime: 'rebinding' },
              states: {
                sending: {
                  entry: 'markSent',
                  invoke: {
                    id: 'renewLease',
                    src: 'renewLease',
                    input: ({ context }) => ({ call: context.renewLease, request: requestOf(context, 'renew') }),
                    onDone: [
                      { guard: { type: 'isOutcome', params: ({ event }) => ({ outcome: event.output, is: 'acked' }) }, target: '#lease-holder.holding.lease.bound', actions: ['adoptLease', 'countRenewal'] },
                      { guard: { type: 'isExclusiveConflict', params: ({ event }) => ({ outcome: event.output }) }, target: '#lease-holder.conflict' },
                      { target: 'waiting', actions: { type: 'recordFailure', params: ({ event }) => `renewal refused: ${String(event.output)}` } }
                    ],
                    onError: { target: 'waiting', actions: { type: 'recordFailure', params: ({ event }) => `renewal failed: ${errorText(event.error)}` } }
                  },
                  after: {
                    requestTimeout: { target: 'waiting', actions: { type: 'recordFailure', params: ({ context }) => `renewal not answered within ${context.policy.requestTimeoutMs} ms` } }
                  }
                },
                waiting: { after: { retryDelay: 'sending' } }
              }
            },
            /** Past T2: still trying, through any path the host has (RFC 2131 §4.4.5 REBINDING). */
            rebinding: {
              initial: 'sending',
              after: { leaseEnd: '#lease-holder.expired' },
              states: {
                sending: {
                  entry: 'markSent',
                  invoke: {
                    id: 'rebindLease',
                    src: 'renewLease',
                    input: ({ context }) => ({ call: context.renewLease, request: requestOf(context, 'rebind') }),
                    onDone: [
                      { guard: { type: 'isOutcome', params: ({ event }) => ({ outcome: event.output, is: 'acked' }) }, target: '#lease-holder.holding.lease.bound', actions: ['adoptLease', 'countRenewal'] },
                      { guard: { type: 'isExclusiveConflict', params: ({ event }) => ({ outcome: event.output }) }, target: '#lease-holder.conflict' },
                      { target: 'waiting', actions: { type: 'recordFailure', params: ({ event }) => `rebinding refused: ${String(event.output)}` } }
                    ],
                    onError: { target: 'waiting', actions: { type: 'recordFailure', params: ({ event }) => `rebinding failed: ${errorText(event.error)}` } }
                  },
                  after: {
                    requestTimeout: { target: 'waiting', actions: { type: 'recordFailure', params: ({ context }) => `rebinding not answered within ${context.policy.requestTimeoutMs} ms` } }
                  }
                },
                waiting: { after: { retryDelay: 'sending' } }
              }
            }
          }
        },
        /** The RFC 5227 §2.4 defence, as a periodic look at the replicated state. */
        watch: {
          initial: 'deciding',
          states: {
            deciding: {
              always: [
                { guard: 'isExclusive', target: 'watching' },
                { target: 'idle' }
              ]
            },
            watching: {
              after: { probeInterval: { target: 'watching', reenter: true, actions: 'observeHolder' } }
            },
            /** Anycast: shared on purpose, nothing to defend. */
            idle: {}
          }
        }
      }
    },
    conflict: {
      entry: [{ type: 'notifyLost', params: { reason: 'conflict' } }, 'excludeAddress', 'forgetLease'],
      after: { conflictDelay: 'init' }
    },
    expired: {
      entry: [{ type: 'notifyLost', params: { reason: 'expired' } }, 'forgetLease', assign({ failures: ({ context }) => context.failures + 1 })],
      after: { retryDelay: 'init' }
    },
    /** Anycast release: the announcement goes first (announcer draining), then the lease. */
    draining: {
      entry: 'announceDraining',
      on: { 'lease.drained': 'releasing', 'lease.release': {} },
      after: { drainTimeout: { target: 'releasing', actions: assign({ lastError: ({ context }) => `not drained within ${context.policy.drainTimeoutMs} ms` }) } }
    },
    /** One attempt: a lease whose release is lost expires by itself within leaseMs. */
    releasing: {
      entry: [{ type: 'notifyLost', params: { reason: 'released' } }, 'markSent'],
      on: { 'lease.release': {} },
      invoke: {
        id: 'releaseLease',
        src: 'releaseLease',
        input: ({ context }) => ({ call: context.releaseLease, request: requestOf(context, 'release') }),
        onDone: 'released',
        onError: { target: 'released', actions: assign({ lastError: ({ event }) => `release failed: ${errorText(event.error)}` }) }
      },
      after: { requestTimeout: { target: 'released', actions: assign({ lastError: ({ context }) => `release not answered within ${context.policy.requestTimeoutMs} ms` }) } }
    },
    released: {
      type: 'final',
      entry: 'forgetLease'
    }
  }
})

/**
 * The RFC 2131 state as one name: init, requesting, bound, renewing, rebinding, expired, conflict,
 * draining, releasing or released.
 */
export function leaseHolderStateName (value: unknown): string {
  if (typeof value === 'string') return value
  if (value === null || typeof value !== 'object') return 'unknown'
  const [top, inner] = Object.entries(value)[0] ?? ['unknown', undefined]
  if (top !== 'holding') return top
  const lease = (inner as { lease?: unknown } | undefined)?.lease
  if (typeof lease === 'string') return lease
  return lease !== null && typeof lease === 'object' ? Object.keys(lease)[0] ?? 'unknown' : 'unknown'
}
