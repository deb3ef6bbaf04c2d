// The GeoDNS zone of a node agent: the ZoneView the authoritative answerer (dns-answer.ts) asks, over
// the node's live state. `<service>.<zone>` A/AAAA answers the nearest healthy origins of the
// service (chooseNearest), located by the client's ECS subnet or else its source address through
// GeoIP; `bootstrap.<zone>` the nearest live members (formnet's join by domain); TXT on a service
// name says which origins were chosen and why, for operators with dig.
//
// Freshness: what the node knows is read again at most `refreshMs` (250 ms) after the last read, so
// an answer reflects a health change the node has learned within that time (the issue asks for 1 s).
// Between reads every query ranks afresh from the snapshot; nothing is cached per client.
//
// Never empty while anything was ever known (Formation's rule, nearest.ts): an origin that withdraws
// or ages out is remembered as failed, so when every origin is down all of them are answered; a
// service nothing is known about yet is answered from the configured fallback set. While a failover
// is in progress — the service's set of origins or their health changed within the failover window —
// and for any fallback answer, the TTL is the short failover TTL, so resolvers come back soon.
import { RR_TYPE, aRecord, aaaaRecord, txtRecord, type DnsRecord, type SoaFields } from '../protocols/dns-codec.ts'
import { type DnsClient, type ResolveResult, type ZoneView } from '../protocols/dns-answer.ts'
import { chooseNearest, type NearestAnswer, type NearestCandidate, type OriginLocation } from '../protocols/nearest.ts'
import type { DistanceStrategy, GeoPlace } from '../protocols/geo.ts'
import type { HealthState } from '../protocols/routes.ts'
import type { Verdict } from '../protocols/health-verdict.ts'
import type { GeoIp } from './geoip.ts'
import type { Logger } from './ports.ts'
import type { NodeHost } from './node.ts'

export const DEFAULT_ZONE_REFRESH_MS = 250
/** Origins remembered per service after they leave the route table (as failed). */
const MAX_REMEMBERED_ORIGINS = 256
/** A remembered origin is forgotten this long after it was last seen live. */
const FORGET_AFTER_MS = 3_600_000
const MAX_SERVICES = 4096
export const BOOTSTRAP_LABEL = 'bootstrap'

/** One live origin of a service as this node sees it. */
export interface ZoneOrigin {
  /** Origin node id. */
  id: string
  service: string
  health: HealthState
  load: number
  location?: OriginLocation
}

/** A node of the overlay that DNS can name: a live member, or this node itself. */
export interface ZoneMember {
  id: string
  name: string
  /** The address DNS answers give for it; a member without one is never answered. */
  address?: string
  location?: OriginLocation
}

/** What the zone reads from the node: narrow, so tests and other hosts can supply it. */
export interface ZoneSource {
  /** Live origins of every service. */
  origins(): ZoneOrigin[]
  /** Live members heard from, this node included. */
  members(): ZoneMember[]
}

export interface NodeZoneOptions {
  source: ZoneSource
  /** Milliseconds; the node's Clock port. */
  now: () => number
  /** Undefined: geography off, answers ordered by health, load and id. */
  geoip?: GeoIp
  /** Apex, e.g. "anycast.form". */
  zone: string
  ttlS: number
  failoverTtlS: number
  failoverWindowMs: number
  maxAnswers: number
  strategy?: DistanceStrategy
  /** Addresses answered per service while nothing is known about it. */
  fallback?: Readonly<Record<string, readonly string[]>>
  refreshMs?: number
  /** Used in the SOA and NS records; default the zone's `ns1`. */
  nameserver?: string
  logger?: Logger
}

interface ServiceState {
  /** Every origin of the service this node knows, remembered ones as failed. */
  origins: Map<string, { candidate: NearestCandidate, name: string, lastLiveMs: number }>
  byFamily: { 4: NearestCandidate[], 6: NearestCandidate[] }
  all: NearestCandidate[]
  signature: string
  lastChangeMs: number | undefined
}

interface Snapshot {
  services: Map<string, ServiceState>
  members: { 4: NearestCandidate[], 6: NearestCandidate[] }
  names: Map<string, string>
}

export interface ZoneInfo {
  service: string
  /** In answer order for a client whose location is unknown. */
  origins: Array<{ id: string, name: string, address: string, health: HealthState }>
  failoverInProgress: boolean
}

export interface NodeZone extends ZoneView {
  /** Read the node's state now (queries do this lazily, at most every refreshMs). */
  refresh(): void
  /** What the zone knows per service, for the status API and tests. */
  describe(): ZoneInfo[]
}

const familyOf = (address: string): 4 | 6 => address.includes(':') ? 6 : 4

function emptyService (): ServiceState {
  return { origins: new Map(), byFamily: { 4: [], 6: [] }, all: [], signature: '', lastChangeMs: undefined }
}

/** Sorted id:health pairs: changes exactly when an origin appears, goes, or changes health. */
function signatureOf (candidates: readonly NearestCandidate[]): string {
  return candidates.map((candidate) => `${candidate.id}:${candidate.health}`).sort().join(',')
}

function splitByFamily (candidates: readonly NearestCandidate[]): { 4: NearestCandidate[], 6: NearestCandidate[] } {
  return { 4: candidates.filter((c) => familyOf(c.address) === 4), 6: candidates.filter((c) => familyOf(c.address) === 6) }
}

export function createNodeZone (options: NodeZoneOptions): NodeZone {
  const apex = options.zone.toLowerCase().replace(/\.$/, '')
  const suffix = `.${apex}`
  const refreshMs = options.refreshMs ?? DEFAULT_ZONE_REFRESH_MS
  const nameserver = options.nameserver ?? `ns1.${apex}`
  const services = new Map<string, ServiceState>()
  const fallback = new Map(Object.entries(options.fallback ?? {}).map(([service, addresses]) => [
    service,
    splitByFamily(addresses.map((address, index) => ({ id: `fallback-${index}`, address, health: 'healthy' as const, load: 0 })))
  ]))
  const records = new Map<string, DnsRecord>()
  let snapshot: Snapshot = { services, members: { 4: [], 6: [] }, names: new Map() }
  let refreshedAtMs = -Infinity
  let refreshFailures = 0

  const recordFor = (address: string): DnsRecord => {
    let record = records.get(address)
    if (record === undefined) {
      record = familyOf(address) === 4 ? aRecord(address) : aaaaRecord(address)
      if (records.size >= 4 * MAX_REMEMBERED_ORIGINS) records.clear()
      records.set(address, record)
    }
    return record
  }

  const readState = (): void => {
    const now = options.now()
    const members = options.source.members()
    const addresses = new Map<string, string>()
    const names = new Map<string, string>()
    for (const member of members) {
      names.set(member.id, member.name)
      if (member.address !== undefined) addresses.set(member.id, member.address)
    }
    const live = new Map<string, ZoneOrigin[]>()
    for (const origin of options.source.origins()) {
      const list = live.get(origin.service)
      if (list === undefined) { if (live.size < MAX_SERVICES) live.set(origin.service, [origin]) } else list.push(origin)
    }
    for (const [service, origins] of live) if (!services.has(service)) services.set(service, emptyService())
    for (const [service, state] of services) updateService(service, state, live.get(service) ?? [], addresses, names, now)
    const memberCandidates = members.flatMap((member): NearestCandidate[] => member.address === undefined
      ? []
      : [{ id: member.id, address: member.address, health: 'healthy', load: 0, ...(member.location === undefined ? {} : { location: member.location }) }])
    snapshot = { services, members: splitByFamily(memberCandidates), names }
    refreshedAtMs = now
  }

  const updateService = (service: string, state: ServiceState, live: ZoneOrigin[], addresses: Map<string, string>, names: Map<string, string>, now: number): void => {
    const seen = new Set<string>()
    for (const origin of live) {
      const address = addresses.get(origin.id) ?? state.origins.get(origin.id)?.candidate.address
      if (address === undefined) continue
      seen.add(origin.id)
      const candidate: NearestCandidate = { id: origin.id, address, health: origin.health, load: origin.load, ...(origin.location === undefined ? {} : { location: origin.location }) }
      state.origins.set(origin.id, { candidate, name: names.get(origin.id) ?? origin.id, lastLiveMs: now })
    }
    for (const [id, entry] of state.origins) {
      if (seen.has(id)) continue
      // Gone from the table (withdrawn, aged out): remembered as failed, so "all down" answers all.
      if (now - entry.lastLiveMs > FORGET_AFTER_MS) { state.origins.delete(id); continue }
      if (entry.candidate.health !== 'failed') entry.candidate = { ...entry.candidate, health: 'failed' }
    }
    if (state.origins.size > MAX_REMEMBERED_ORIGINS) {
      const oldest = [...state.origins.entries()].sort(([, a], [, b]) => a.lastLiveMs - b.lastLiveMs)
      for (const [id] of oldest.slice(0, state.origins.size - MAX_REMEMBERED_ORIGINS)) state.origins.delete(id)
    }
    const all = [...state.origins.values()].map((entry) => entry.candidate)
    const signature = signatureOf(all)
    if (state.signature !== '' && signature !== state.signature) {
      state.lastChangeMs = now
      options.logger?.info('dns.origins.changed', { service, origins: signature })
    }
    state.signature = signature
    state.all = all
    state.byFamily = splitByFamily(all)
  }

  const refresh = (): void => {
    try {
      readState()
    } catch (error) {
      // Keep answering from the last snapshot; say so once per run of failures.
      if (refreshFailures++ === 0) options.logger?.error('dns.zone.refresh.failed', { error: (error as Error).message })
      refreshedAtMs = options.now()
      return
    }
    refreshFailures = 0
  }

  const fresh = (): Snapshot => {
    if (options.now() - refreshedAtMs >= refreshMs) refresh()
    return snapshot
  }

  const locate = (client: DnsClient): GeoPlace | undefined => {
    if (options.geoip === undefined) return undefined
    return options.geoip.lookup(client.ecs?.address ?? client.address)
  }

  const nearest = (client: DnsClient, candidates: readonly NearestCandidate[], lastKnown: readonly NearestCandidate[] | undefined, max = options.maxAnswers): NearestAnswer =>
    chooseNearest(locate(client), candidates, { max, strategy: options.strategy ?? 'linear', ...(lastKnown === undefined ? {} : { lastKnown }) })

  const inFailover = (state: ServiceState | undefined): boolean =>
    state?.lastChangeMs !== undefined && options.now() - state.lastChangeMs < options.failoverWindowMs

  /** Geography on: the answer depends on the client's subnet (default scope); off: on nothing. */
  const scope = (): { scopePrefix?: number } => options.geoip === undefined || !options.geoip.available ? { scopePrefix: 0 } : {}

  const addressAnswer = (answer: NearestAnswer, shortTtl: boolean): ResolveResult => {
    if (answer.origins.length === 0) return 'nodata'
    return {
      records: answer.origins.map((origin) => recordFor(origin.address)),
      ttlS: shortTtl || answer.fallback ? options.failoverTtlS : options.ttlS,
      ...scope()
    }
  }

  const txtAnswer = (service: string, client: DnsClient, state: ServiceState | undefined, view: Snapshot): ResolveResult => {
    const answer = nearest(client, state?.all ?? [], undefined, Math.max(options.maxAnswers, 1))
    if (answer.origins.length === 0) return 'nodata'
    const failover = inFailover(state)
    const lines = answer.origins.map((origin) => txtRecord(
      `origin=${view.names.get(origin.id) ?? origin.id} address=${origin.address} health=${origin.health}` +
      (origin.distanceKm === undefined ? '' : ` km=${Math.round(origin.distanceKm)}`) + ` reason=${answer.reason}` +
      (failover ? ' failover=1' : '')))
    return { records: lines, ttlS: failover || answer.fallback ? options.failoverTtlS : options.ttlS, ...scope() }
  }

  const resolveService = (service: string, qtype: number, client: DnsClient, view: Snapshot): ResolveResult => {
    const state = view.services.get(service)
    const configured = fallback.get(service)
    if (state === undefined && configured === undefined) return 'nxdomain'
    if (qtype === RR_TYPE.TXT) return txtAnswer(service, client, state, view)
    if (qtype !== RR_TYPE.A && qtype !== RR_TYPE.AAAA) return 'nodata'
    const family = qtype === RR_TYPE.A ? 4 : 6
    return addressAnswer(nearest(client, state?.byFamily[family] ?? [], configured?.[family]), inFailover(state))
  }

  const resolveBootstrap = (qtype: number, client: DnsClient, view: Snapshot): ResolveResult => {
    if (qtype !== RR_TYPE.A && qtype !== RR_TYPE.AAAA) return 'nodata'
    return addressAnswer(nearest(client, view.members[qtype === RR_TYPE.A ? 4 : 6], undefined), false)
  }

  const soa: SoaFields = { mname: nameserver, rname: `hostmaster.${apex}`, serial: 1, refreshS: 3600, retryS: 600, expireS: 86_400, minimumS: options.failoverTtlS }

  return {
    apex,
    soa,
    soaTtlS: options.ttlS,
    nameservers: [nameserver],
    nameserverTtlS: 3600,
    resolve (name, qtype, client) {
      if (name === apex) return 'nodata'
      const label = name.slice(0, name.length - suffix.length)
      // Only one label below the apex names anything: `<service>` or `bootstrap`.
      if (!name.endsWith(suffix) || label.includes('.')) return 'nxdomain'
      const view = fresh()
      if (label === BOOTSTRAP_LABEL) return resolveBootstrap(qtype, client, view)
      return resolveService(label, qtype, client, view)
    },
    refresh,
    describe () {
      const view = fresh()
      return [...view.services.entries()].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0).map(([service, state]) => ({
        service,
        origins: chooseNearest(undefined, state.all, { max: MAX_REMEMBERED_ORIGINS }).origins.map((origin) => ({
          id: origin.id, name: view.names.get(origin.id) ?? origin.id, address: origin.address, health: origin.health
        })),
        failoverInProgress: inFailover(state)
      }))
    }
  }
}

/**
 * The ZoneSource of a running NodeHost: origins from its route table (an origin this node's probes
 * found failed and that no neighbour reaches counts as failed), members from heartbeats (their
 * address and location), and the node itself with `self.address`. `addresses` names nodes whose
 * heartbeats carry no address (e.g. simulated nodes); a heartbeat's address wins.
 */
/**
 * An origin's health as the zone sees it: what it announces, made worse by this node's own view.
 * With no overlay path to it, our probe's failed verdict makes it failed; a suspicion (failed probes,
 * a degraded verdict not yet confirmed by the helpers' indirect probes) makes it degraded, so
 * answers move to the next origin while the suspicion is checked (about 1.5 s sooner after a crash)
 * without dropping an origin that one lossy link doubts.
 */
export function zoneHealth (announced: HealthState, hasPath: boolean, probed: Verdict | undefined): HealthState {
  if (hasPath || announced === 'failed') return announced
  if (probed === 'failed') return 'failed'
  return probed === 'degraded' ? 'degraded' : announced
}

export function zoneSourceFromNode (host: NodeHost, self: { address?: string, addresses?: ReadonlyMap<string, string> }): ZoneSource {
  return {
    origins () {
      const probed = new Map(host.controlPlane.originHealth().map((view) => [view.origin, view.verdict]))
      return host.controlPlane.routes().flatMap((route) => route.candidates.map((candidate): ZoneOrigin => {
        const { health, load, location } = candidate.attributes
        return {
          id: candidate.origin,
          service: route.service,
          // Any overlay path (pathTo), not only the one the route may use: it includes that one.
          health: zoneHealth(health, host.controlPlane.hasPathTo(candidate.origin), probed.get(candidate.origin)),
          load,
          ...(location === undefined ? {} : { location })
        }
      }))
    },
    members () {
      const members: ZoneMember[] = host.memberList().filter((member) => !member.stale).map((member) => {
        const address = member.address ?? self.addresses?.get(member.peerId)
        return {
          id: member.peerId,
          name: member.name,
          ...(address === undefined ? {} : { address }),
          ...(member.location === undefined ? {} : { location: member.location })
        }
      })
      const location = host.config.location
      members.push({
        id: host.peerId,
        name: host.config.name,
        ...(self.address === undefined ? {} : { address: self.address }),
        ...(location === undefined ? {} : { location: { lat: location.lat, lon: location.lon, ...(location.region === undefined ? {} : { region: location.region }) } })
      })
      return members
    }
  }
}
