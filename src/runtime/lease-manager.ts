// A node's IP leases over the replicated state: one exclusive unicast address for the node itself
// (its overlay IP), and one shared anycast lease per local service whose prefix lies in the anycast
// pool. Each lease is held by a lease-holder actor (src/actors/lease-holder.ts, RFC 2131's client
// FSM); this file gives those actors their port to the state (request, renew, release, who holds
// an address) and answers the control plane's origin-validation question.
//
// Leases live in the `leases` collection (docs/state-contract.md §3):
//   unicast/<address>          → { holder, expiresAtMs, claimedAt }   one holder
//   anycast/<address>/<holder> → { service, expiresAtMs }             many holders on purpose
// A write resolves once it is durable (StateReplicator.write), so a lease is acknowledged only
// after it would survive a crash. Expiry is wall-clock time (Clock.now(); the virtual clock in the
// simulator), so nodes' clocks must agree to within a small part of a lease.
import { createActor, type Actor } from 'xstate'
import { leaseHolderMachine, leaseHolderStateName, type LeaseHolderInput, type LeaseRequest } from '../actors/lease-holder.ts'
import {
  addressKind, allocateUnicast, isLive, leaseKey, parseAnycastLease, parseLeaseKey, parseUnicastLease,
  IpamExhaustedError, type IpamConfig
} from '../protocols/ipam.ts'
import { parsePrefix } from '../protocols/cidr.ts'
import type { StateReplicator } from './state-replicator.ts'
import type { ChildSpec } from './supervisor.ts'
import { xstateInspector, type InspectionBus } from './inspection.ts'
import type { Clock, Counter, Logger, Metrics, PeerId } from './ports.ts'

export const DEFAULT_LEASE_MS = 60_000
/**
 * A new exclusive claim waits for the node's first anti-entropy exchange, at most this long: a node
 * that has not yet seen its neighbours' leases would otherwise claim blind, and two nodes starting
 * together could both bind one address before either's claim reached the other.
 */
export const CLAIM_SYNC_WAIT_MS = 5_000
/** Prefixes whose anycast address is remembered (a route table holds at most a few thousand). */
const MAX_CACHED_PREFIXES = 4096
/** The holder of a lease register that cannot be read. */
const UNREADABLE_HOLDER = '(unreadable lease)'

export interface LeaseManagerComponents {
  clock: Clock
  replicator: StateReplicator
  inspector: InspectionBus
  logger: Logger
  metrics: Metrics
}

export interface LeaseManagerConfig {
  nodeId: PeerId
  nodeName: string
  ipam: IpamConfig
  leaseMs: number
  /** Local services: an anycast lease for each whose prefix is a single address in the anycast pool. */
  services: ReadonlyArray<{ name: string, prefix: string }>
}

/** One lease as /v1/leases shows it. */
export interface LeaseView {
  key: string
  kind: 'unicast' | 'anycast'
  address: string
  holder: string
  service?: string
  expiresAtMs: number
  live: boolean
  /** This node's own lease-holder state for it, when it is ours. */
  state?: string
}

type HolderActor = Actor<typeof leaseHolderMachine>

export class LeaseManager {
  private readonly holders = new Map<string, HolderActor>()
  private readonly createdAtMs: number
  private readonly anycastByPrefix = new Map<string, string | undefined>()
  private readonly counters: { granted: Counter, conflicts: Counter }

  constructor (private readonly components: LeaseManagerComponents, private readonly config: LeaseManagerConfig) {
    this.createdAtMs = components.clock.now()
    this.counters = {
      granted: components.metrics.counter('leases_bound_total', 'Leases this node bound or renewed', ['kind']),
      conflicts: components.metrics.counter('lease_conflicts_total', 'Exclusive addresses this node lost to another claimant')
    }
  }

  /** The anycast address of a service prefix, when it is a single address inside the anycast pool. */
  anycastAddress (prefix: string): string | undefined {
    // Asked for every announcement received: the answer depends only on the prefix text.
    if (this.anycastByPrefix.has(prefix)) return this.anycastByPrefix.get(prefix)
    let address: string | undefined
    try {
      const parsed = parsePrefix(prefix)
      if (parsed.length === (parsed.family === 4 ? 32 : 128) && addressKind(this.config.ipam, parsed.address) === 'anycast') address = parsed.address
    } catch { address = undefined }
    if (this.anycastByPrefix.size >= MAX_CACHED_PREFIXES) this.anycastByPrefix.clear()
    this.anycastByPrefix.set(prefix, address)
    return address
  }

  /** Route-origin validation: does `origin` hold a live anycast lease for this prefix's address? */
  validateOrigin (prefix: string, origin: PeerId): 'valid' | 'invalid' | 'not-anycast' {
    const address = this.anycastAddress(prefix)
    if (address === undefined) return 'not-anycast'
    const value = this.components.replicator.get('leases', leaseKey({ kind: 'anycast', address, holder: origin }))
    if (value === undefined) return 'invalid'
    try { return isLive(parseAnycastLease(value), this.components.clock.now()) ? 'valid' : 'invalid' } catch { return 'invalid' }
  }

  /**
   * The live holder of an exclusive address, per the replicated state. A register this version
   * cannot read counts as held (by UNREADABLE_HOLDER): never take an address on a misreading.
   */
  currentHolder (address: string): string | undefined {
    const value = this.components.replicator.get('leases', leaseKey({ kind: 'unicast', address }))
    if (value === undefined) return undefined
    try {
      const lease = parseUnicastLease(value)
      return isLive(lease, this.components.clock.now()) ? lease.holder : undefined
    } catch { return UNREADABLE_HOLDER }
  }

  /** This node's bound unicast address, if any. */
  unicastAddress (): string | undefined {
    const actor = this.holders.get('unicast')
    if (actor === undefined) return undefined
    const snapshot = actor.getSnapshot()
    const state = leaseHolderStateName(snapshot.value)
    return state === 'bound' || state === 'renewing' || state === 'rebinding' ? snapshot.context.address : undefined
  }

  /** Every lease in the replicated state, ours marked with our holder's state. */
  leases (): LeaseView[] {
    const now = this.components.clock.now()
    const views: LeaseView[] = []
    for (const [key, value] of this.components.replicator.state.entries('leases')) {
      try {
        const parsed = parseLeaseKey(key)
        if (parsed.kind === 'unicast') {
          const lease = parseUnicastLease(value)
          views.push({ key, kind: 'unicast', address: parsed.address, holder: lease.holder, expiresAtMs: lease.expiresAtMs, live: isLive(lease, now), ...this.ownState('unicast', lease.holder) })
        } else {
          const lease = parseAnycastLease(value)
          views.push({ key, kind: 'anycast', address: parsed.address, holder: parsed.holder, service: lease.service, expiresAtMs: lease.expiresAtMs, live: isLive(lease, now), ...this.ownState(`anycast:${lease.service}`, parsed.holder) })
        }
      } catch { /* a register another version wrote: not shown */ }
    }
    return views
  }

  private ownState (id: string, holder: string): { state?: string } {
    const actor = this.holders.get(id)
    return holder === this.config.nodeId && actor !== undefined ? { state: leaseHolderStateName(actor.getSnapshot().value) } : {}
  }

  /**
   * Resolves once the replica has synced with a neighbour, or CLAIM_SYNC_WAIT_MS after this
   * manager started (a lone node claims then); rejects if the request is aborted meanwhile (the
   * holder retries, and the wait goes on toward the same deadline).
   */
  private async viewReady (signal: AbortSignal): Promise<void> {
    const { replicator, clock } = this.components
    const remaining = this.createdAtMs + CLAIM_SYNC_WAIT_MS - clock.now()
    if (replicator.hasSynced || remaining <= 0) return
    let timer: unknown
    let onAbort: (() => void) | undefined
    try {
      await Promise.race([
        replicator.synced(),
        new Promise<void>((resolve) => { timer = clock.setTimeout(resolve, remaining) }),
        new Promise<void>((_resolve, reject) => {
          onAbort = () => reject(new Error('aborted while waiting for the first state sync'))
          if (signal.aborted) onAbort(); else signal.addEventListener('abort', onAbort, { once: true })
        })
      ])
    } finally {
      clock.clearTimeout(timer as never)
      if (onAbort !== undefined) signal.removeEventListener('abort', onAbort)
    }
  }

  /** Supervised lease-holder actors: the node's unicast address and one per local anycast service. */
  specs (): ChildSpec[] {
    const specs: ChildSpec[] = [this.spec('unicast', { kind: 'unicast', chooseAddress: (excluded) => this.chooseUnicast(excluded) })]
    for (const service of this.config.services) {
      const address = this.anycastAddress(service.prefix)
      if (address !== undefined) specs.push(this.spec(`anycast:${service.name}`, { kind: 'anycast', service: service.name, address }))
    }
    return specs
  }

  /**
   * One pass over the unicast lease registers: the addresses others hold (live, or unreadable:
   * never taken on a misreading) and this node's own earlier address, live or not.
   */
  private chooseUnicast (excluded: readonly string[]): string | undefined {
    const taken = new Set(excluded)
    const now = this.components.clock.now()
    let mine: string | undefined
    for (const [key, value] of this.components.replicator.state.entries('leases')) {
      let parsed
      try { parsed = parseLeaseKey(key) } catch { continue }
      if (parsed.kind !== 'unicast') continue
      let lease
      try { lease = parseUnicastLease(value) } catch { taken.add(parsed.address); continue }
      if (lease.holder === this.config.nodeId) mine ??= parsed.address
      else if (isLive(lease, now)) taken.add(parsed.address)
    }
    // Our own previous address first: a restarted node keeps its IP.
    if (mine !== undefined && !taken.has(mine)) return mine
    try { return allocateUnicast(this.config.ipam, this.config.nodeId, taken).address } catch (error) {
      if (error instanceof IpamExhaustedError) { this.components.logger.error('no unicast address free', { error: error.message }); return undefined }
      throw error
    }
  }

  private spec (id: string, lease: Pick<LeaseHolderInput, 'kind' | 'service' | 'address' | 'chooseAddress'>): ChildSpec {
    const { clock, replicator } = this.components
    const write = async (request: LeaseRequest): Promise<void> => {
      if (request.kind === 'unicast') {
        const previous = replicator.get('leases', leaseKey({ kind: 'unicast', address: request.address }))
        let held
        try { held = previous === undefined ? undefined : parseUnicastLease(previous) } catch { held = undefined }
        // A renewal keeps the HLC of our first claim on the address; a new claim takes the clock now.
        const first = held?.holder === this.config.nodeId && held.claimedAt !== undefined ? held.claimedAt : replicator.hlc.current()
        await replicator.write('leases', leaseKey({ kind: 'unicast', address: request.address }), {
          holder: this.config.nodeId, expiresAtMs: Math.floor(request.expiresAtMs), claimedAt: { wallMs: first.wallMs, counter: first.counter, node: first.node }
        })
      } else {
        await replicator.write('leases', leaseKey({ kind: 'anycast', address: request.address, holder: this.config.nodeId }), {
          service: request.service ?? '', expiresAtMs: Math.floor(request.expiresAtMs)
        })
      }
      this.counters.granted.inc({ kind: request.kind })
    }
    const claim = async (request: LeaseRequest, signal: AbortSignal): Promise<'acked' | 'conflict'> => {
      if (request.kind === 'unicast' && request.phase === 'request') await this.viewReady(signal)
      if (request.kind === 'unicast') {
        const holder = this.currentHolder(request.address)
        if (holder !== undefined && holder !== this.config.nodeId) { this.counters.conflicts.inc(); return 'conflict' }
      }
      await write(request)
      return 'acked'
    }
    return {
      id: `lease-holder:${id}`,
      kind: 'lease-holder',
      restart: 'permanent',
      start: (ctx) => {
        const input: LeaseHolderInput = {
          nodeId: this.config.nodeId,
          leaseMs: this.config.leaseMs,
          clock,
          random: ctx.random,
          ...lease,
          requestLease: async (request, { signal }) => await claim(request, signal),
          renewLease: async (request, { signal }) => await claim(request, signal),
          releaseLease: async (request) => {
            const key = request.kind === 'unicast'
              ? leaseKey({ kind: 'unicast', address: request.address })
              : leaseKey({ kind: 'anycast', address: request.address, holder: this.config.nodeId })
            if (request.kind === 'unicast' && this.currentHolder(request.address) !== this.config.nodeId) return
            await replicator.write('leases', key, undefined)
          },
          currentHolder: (address) => this.currentHolder(address),
          onLost: (loss) => { this.components.logger.warn('lease lost', { ...loss }) }
        }
        const actor = createActor(leaseHolderMachine, {
          ...ctx.actorOptions,
          inspect: xstateInspector(this.components.inspector, ctx.clock, { node: this.config.nodeName, systemId: `lease-holder:${id}`, actor: 'lease-holder', parent: 'leases' }),
          input
        })
        this.holders.set(id, actor)
        return { kind: 'actor', actor }
      }
    }
  }
}
