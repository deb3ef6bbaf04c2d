// The anycast route table of one node: the latest announcement per (prefix, origin), how this node
// reaches each origin (its own RTT measurements and its neighbours' reach reports), and the best
// origin per prefix computed on demand with best-path.ts. A pure data structure: no timers and no
// clock, callers pass `nowMs`. Every mutator reports the prefixes whose selection inputs changed so
// the caller can re-run selection (or publish) for just those.
//
// Freshness follows BGP's implicit withdrawal (RFC 4271 §3.1) with a sequence number per
// (origin, prefix), as link-state protocols do (OSPF LS sequence numbers, RFC 2328 §12.1.6): a
// newer seq replaces, an equal seq is a duplicate, an older one is stale. A withdrawal, an expiry
// and an invalidation all leave a tombstone holding the seq, so an older announcement replayed
// later is still recognised as stale; a tombstone is forgotten one ttl after the announcement
// lapsed (so a live record is remembered for at most 2 × ttl after receipt).
import { validateAnnouncement, validateReachReport } from './announcement-codec.ts'
import { comparePaths, directPath, localPath, relayBeatsDirect, relayPath, selectBestPath } from './best-path.ts'
import type { ReachReport, RouteAnnouncement, RouteCandidate, RouteEntry, RoutePath, SignedAnnouncement } from './routes.ts'

export const DEFAULT_MAX_PREFIXES = 65_536
export const DEFAULT_MAX_ORIGINS_PER_PREFIX = 1_024
export const DEFAULT_MAX_NEIGHBOURS = 1_024

export interface RouteTableOptions {
  /** This node's id: its own announcements get a local path, and paths through it are loops. */
  self: string
  maxPrefixes?: number
  maxOriginsPerPrefix?: number
  maxNeighbours?: number
  /**
   * Gate relay paths per prefix (the control plane's setting): a prefix uses relay paths only
   * once setRelaysOpen(prefix, true) was called, so that its node can first tell its neighbours
   * it is about to relay that prefix. Default false: relay paths count as soon as they are known.
   */
  gateRelays?: boolean
}

export type ApplyRejection = 'stale' | 'duplicate' | 'withdrawn-unknown' | 'table-full'

export interface ApplyResult {
  /**
   * True when the announcement became the latest from its origin for its prefix and is live (new,
   * superseding or a refresh) or withdrew a live candidate. A withdrawal of nothing live is not
   * accepted, though its seq is remembered.
   */
  accepted: boolean
  reason?: ApplyRejection
  /** Set when the prefix's selection inputs changed (not for a refresh that only bumps seq). */
  changedPrefix?: string
}

export interface RouteTableStats {
  prefixes: number
  liveAnnouncements: number
  tombstones: number
  neighbours: number
  /** Announcements dropped because the table was at its prefix or per-prefix origin bound. */
  droppedTableFull: number
  /** Reach reports ignored: reported by another node than the neighbour, or too many neighbours. */
  droppedReachReports: number
}

type RecordState = 'live' | 'withdrawn' | 'suppressed'

interface OriginRecord {
  signed: SignedAnnouncement
  state: RecordState
  receivedAtMs: number
  /** Live: when it lapses (receipt + ttl). Tombstone: when it is forgotten. */
  expiresAtMs: number
}

interface PrefixState {
  records: Map<string, OriginRecord>
  live: number
}

interface NeighbourReach {
  rttMs: number
  seq: number
  entries: Map<string, number>
  /** Prefixes the neighbour relays itself: it is no relay for them. */
  relaying: ReadonlySet<string>
  /** Prefixes it is about to relay: a relay for them only to nodes whose id sorts after its own. */
  relayPending: ReadonlySet<string>
}

const NOTHING_RELAYED: ReadonlySet<string> = new Set()

/**
 * Whether `relay` may carry `prefix` for `self`. Not when it relays the prefix itself. When it is
 * only about to (its relay paths open one refresh period after its report said so, and meanwhile
 * it hands the prefix to origins itself), only for a node whose id sorts after the relay's. That
 * keeps a forwarding cycle impossible even across the moment a node opens: in a cycle every node
 * relays through the next, so each one opened; a node that has heard the next one is about to
 * relay uses it only if the next one's id is lower, and a report crosses a session within the
 * period, so no node can still think the next one relays nothing once it has opened. Around a
 * cycle the ids would have to fall at every step, which no cycle can do. So a neighbour's passing
 * wish to relay (an RTT spike) costs only half of the nodes behind it their path, not all.
 */
function relaysFor (reach: NeighbourReach, relay: string, self: string, prefix: string): boolean {
  if (reach.relaying.has(prefix)) return false
  return !reach.relayPending.has(prefix) || relay < self
}

function compareText (a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

function samePath (a: RoutePath | undefined, b: RoutePath | undefined): boolean {
  if (a === undefined || b === undefined) return a === b
  return a.costMs === b.costMs && a.hops.length === b.hops.length && a.hops.every((hop, index) => hop === b.hops[index])
}

function sameContent (a: RouteAnnouncement, b: RouteAnnouncement): boolean {
  const x = a.attributes
  const y = b.attributes
  return a.service === b.service && x.health === y.health && x.preference === y.preference && x.load === y.load &&
    x.ttlMs === y.ttlMs && x.location?.lat === y.location?.lat && x.location?.lon === y.location?.lon &&
    x.location?.region === y.location?.region && (x.location === undefined) === (y.location === undefined)
}

function checkRtt (rttMs: number, what: string): void {
  if (!Number.isFinite(rttMs) || rttMs < 0) throw new RangeError(`${what} must be a finite number ≥ 0, not ${rttMs}`)
}

/** FNV-1a, 64-bit, on two 32-bit halves (no BigInt on the hot path): prime 2^40 + 0x1b3. */
export function fnv1a64 (bytes: Uint8Array): string {
  let hi = 0xcbf29ce4
  let lo = 0x84222325
  for (const byte of bytes) {
    lo ^= byte
    const low = (lo >>> 0) * 0x1b3
    hi = (Math.imul(hi, 0x1b3) + Math.floor(low / 0x1_0000_0000) + (lo << 8)) >>> 0
    lo = low >>> 0
  }
  return hi.toString(16).padStart(8, '0') + lo.toString(16).padStart(8, '0')
}

export class RouteTable {
  readonly self: string
  private readonly maxPrefixes: number
  private readonly maxOriginsPerPrefix: number
  private readonly maxNeighbours: number
  private readonly prefixes = new Map<string, PrefixState>()
  /** Live records only: origin → prefixes it currently announces. */
  private readonly prefixesByOrigin = new Map<string, Set<string>>()
  private readonly direct = new Map<string, number>()
  /** Origins whose relay paths are held down (setRelaysHeldDown). */
  private readonly relayBlocked = new Set<string>()
  /** Origins whose direct path is used only when no relay path exists (setDirectDemoted). */
  private readonly directDemoted = new Set<string>()
  /** pathTo's answers by origin (undefined: no path), until a mutation touches the origin. */
  private readonly paths = new Map<string, RoutePath | undefined>()
  /** pathFor's answers with the gate open, by origin then prefix, dropped with pathTo's. */
  private readonly prefixPaths = new Map<string, Map<string, RoutePath | undefined>>()
  private readonly gateRelays: boolean
  /** With gateRelays: the prefixes whose relay paths are open (setRelaysOpen). */
  private readonly relaysOpen = new Set<string>()
  private readonly neighbours = new Map<string, NeighbourReach>()
  private readonly relaysByOrigin = new Map<string, Set<string>>()
  /** The origin chosen at the last selection per prefix: the incumbent for cost hysteresis. */
  private readonly chosen = new Map<string, string>()
  /** A lower bound on every record's expiresAtMs, so expire() is O(1) when nothing is due. */
  private earliestExpiryMs = Infinity
  private droppedTableFull = 0
  private droppedReachReports = 0

  constructor (options: RouteTableOptions) {
    this.self = options.self
    this.maxPrefixes = options.maxPrefixes ?? DEFAULT_MAX_PREFIXES
    this.maxOriginsPerPrefix = options.maxOriginsPerPrefix ?? DEFAULT_MAX_ORIGINS_PER_PREFIX
    this.maxNeighbours = options.maxNeighbours ?? DEFAULT_MAX_NEIGHBOURS
    this.gateRelays = options.gateRelays ?? false
  }

  // --- announcements ----------------------------------------------------------------------------

  /**
   * Record a verified announcement received at `nowMs`. Newer seq supersedes; equal seq is a
   * duplicate; older is stale. A withdrawal of a live candidate removes it (and is accepted); a
   * withdrawal of anything else is 'withdrawn-unknown' but its seq is still remembered. Throws
   * AnnouncementError for an invalid announcement (callers decode and verify first).
   */
  applyAnnouncement (signed: SignedAnnouncement, nowMs: number): ApplyResult {
    const a = signed.announcement
    validateAnnouncement(a)
    const state = this.prefixes.get(a.prefix)
    const existing = state?.records.get(a.origin)
    if (existing !== undefined) {
      const knownSeq = existing.signed.announcement.seq
      if (a.seq < knownSeq) return { accepted: false, reason: 'stale' }
      if (a.seq === knownSeq) return { accepted: false, reason: 'duplicate' }
    } else if (state === undefined ? this.prefixes.size >= this.maxPrefixes : state.records.size >= this.maxOriginsPerPrefix) {
      this.droppedTableFull++
      return { accepted: false, reason: 'table-full' }
    }
    const wasLive = existing?.state === 'live'
    const record: OriginRecord = { signed, state: a.withdrawn ? 'withdrawn' : 'live', receivedAtMs: nowMs, expiresAtMs: nowMs + a.attributes.ttlMs }
    this.store(a.prefix, a.origin, record, state)
    if (a.withdrawn) return wasLive ? { accepted: true, changedPrefix: a.prefix } : { accepted: false, reason: 'withdrawn-unknown' }
    const changed = !wasLive || !sameContent(existing.signed.announcement, a)
    return changed ? { accepted: true, changedPrefix: a.prefix } : { accepted: true }
  }

  private store (prefix: string, origin: string, record: OriginRecord, known: PrefixState | undefined): void {
    const state = known ?? { records: new Map(), live: 0 }
    if (known === undefined) this.prefixes.set(prefix, state)
    const previous = state.records.get(origin)
    if (previous?.state === 'live') this.unlink(prefix, origin, state)
    state.records.set(origin, record)
    if (record.state === 'live') {
      state.live++
      let set = this.prefixesByOrigin.get(origin)
      if (set === undefined) this.prefixesByOrigin.set(origin, set = new Set())
      set.add(prefix)
    }
    this.earliestExpiryMs = Math.min(this.earliestExpiryMs, record.expiresAtMs)
  }

  /** Drop a live record from the live count and the origin index (the record itself stays). */
  private unlink (prefix: string, origin: string, state: PrefixState): void {
    state.live--
    const set = this.prefixesByOrigin.get(origin)
    set?.delete(prefix)
    if (set?.size === 0) this.prefixesByOrigin.delete(origin)
  }

  /** Turn a live record into a tombstone that remembers its seq until one ttl after it lapsed. */
  private suppress (prefix: string, origin: string, state: PrefixState, record: OriginRecord): void {
    this.unlink(prefix, origin, state)
    record.state = 'suppressed'
    record.expiresAtMs = record.receivedAtMs + 2 * record.signed.announcement.attributes.ttlMs
  }

  /**
   * Age out announcements not refreshed within their ttl since receipt (a record received at t
   * with ttl T lapses at nowMs ≥ t + T) and forget old tombstones. Returns the prefixes that lost
   * a candidate, sorted.
   */
  expire (nowMs: number): string[] {
    if (nowMs < this.earliestExpiryMs) return []
    const changed: string[] = []
    let earliest = Infinity
    for (const [prefix, state] of this.prefixes) {
      for (const [origin, record] of state.records) {
        if (record.expiresAtMs <= nowMs) {
          if (record.state === 'live') {
            this.suppress(prefix, origin, state, record)
            if (changed[changed.length - 1] !== prefix) changed.push(prefix)
          }
          if (record.expiresAtMs <= nowMs) state.records.delete(origin)
        }
        if (state.records.has(origin)) earliest = Math.min(earliest, record.expiresAtMs)
      }
      if (state.records.size === 0) this.prefixes.delete(prefix)
    }
    this.earliestExpiryMs = earliest
    return changed.sort(compareText)
  }

  /**
   * Forget every live announcement of `origin` (e.g. the origin was declared dead), keeping
   * tombstones so that replays of them are duplicates or stale. The origin's next announcement
   * (a newer seq) is accepted again. Returns the prefixes that lost a candidate, sorted.
   */
  invalidateOrigin (origin: string): string[] {
    const prefixes = [...(this.prefixesByOrigin.get(origin) ?? [])].sort(compareText)
    for (const prefix of prefixes) {
      const state = this.prefixes.get(prefix) as PrefixState
      this.suppress(prefix, origin, state, state.records.get(origin) as OriginRecord)
    }
    return prefixes
  }

  // --- reachability -----------------------------------------------------------------------------

  /**
   * This node's best path to `origin`, whatever prefix it is for: local, direct, or via one
   * neighbour; undefined if none. What status and the probe tiers read; a route uses pathFor.
   */
  pathTo (origin: string): RoutePath | undefined {
    if (origin === this.self) return localPath(this.self)
    // Paths are read on every candidate list and change only through pathChanges, which drops
    // the cached path of every origin a mutation touches.
    if (this.paths.has(origin)) return this.paths.get(origin)
    const best = this.computePath(origin, undefined)
    if (this.paths.size >= this.maxPrefixes * this.maxOriginsPerPrefix) this.paths.clear()
    this.paths.set(origin, best)
    return best
  }

  /**
   * The path a route for `prefix` may take to `origin`: as pathTo, except that a neighbour which
   * relays `prefix` itself is no relay for it, and with gateRelays the prefix's relay paths count
   * only once opened. `gated` false ignores the gate (what the route would be once opened).
   */
  pathFor (origin: string, prefix: string, gated = true): RoutePath | undefined {
    if (origin === this.self) return localPath(this.self)
    if (gated && !this.relaysOpenFor(prefix)) {
      // Gated shut: the direct path alone (Formation's demotion only ranks it below relays).
      const direct = this.direct.get(origin)
      return direct === undefined ? undefined : directPath(origin, direct)
    }
    let byPrefix = this.prefixPaths.get(origin)
    if (byPrefix?.has(prefix) === true) return byPrefix.get(prefix)
    const best = this.computePath(origin, prefix)
    if (byPrefix === undefined) {
      if (this.prefixPaths.size >= this.maxPrefixes * this.maxOriginsPerPrefix) this.prefixPaths.clear()
      this.prefixPaths.set(origin, byPrefix = new Map())
    }
    byPrefix.set(prefix, best)
    return best
  }

  /** The best path to `origin`; for `prefix`, through no neighbour that relays it itself. */
  private computePath (origin: string, prefix: string | undefined): RoutePath | undefined {
    const direct = this.direct.get(origin)
    let best = direct === undefined ? undefined : directPath(origin, direct)
    let relayed: RoutePath | undefined
    for (const relay of this.relayBlocked.has(origin) ? [] : this.relaysByOrigin.get(origin) ?? []) {
      const reach = this.neighbours.get(relay) as NeighbourReach
      if (prefix !== undefined && !relaysFor(reach, relay, this.self, prefix)) continue
      const path = relayPath(this.self, relay, reach.rttMs, { origin, rttMs: reach.entries.get(origin) as number })
      if (path !== undefined && (relayed === undefined || comparePaths(path, relayed) < 0)) relayed = path
    }
    // A demoted direct path (setDirectDemoted) yields to any relay path, however slower; else a
    // relay must beat the direct path by the incumbent margin.
    if (relayed !== undefined && (best === undefined || this.directDemoted.has(origin) || relayBeatsDirect(relayed, best))) best = relayed
    return best
  }

  /**
   * Run `mutate`, then report the prefixes whose path to one of those `origins` changed, sorted.
   * Only `prefix`'s paths are compared when it is given. While a prefix's relay paths are gated
   * shut, the path it would take once opened counts too: that is what wantsRelay reads, so the
   * caller learns when to open them.
   */
  private pathChanges (origins: Iterable<string>, mutate: () => void, prefix?: string): string[] {
    const before = new Map<string, [RoutePath | undefined, RoutePath | undefined]>()
    const touched = [...origins]
    const key = (origin: string, of: string): string => `${origin}\u0000${of}`
    const prefixesOf = (origin: string): Iterable<string> => {
      const announced = this.prefixesByOrigin.get(origin)
      if (prefix === undefined) return announced ?? []
      return announced?.has(prefix) === true ? [prefix] : []
    }
    const paths = (origin: string, of: string): [RoutePath | undefined, RoutePath | undefined] => {
      const gated = this.pathFor(origin, of)
      return [gated, this.relaysOpenFor(of) ? gated : this.pathFor(origin, of, false)]
    }
    for (const origin of touched) for (const of of prefixesOf(origin)) before.set(key(origin, of), paths(origin, of))
    mutate()
    for (const origin of touched) {
      this.paths.delete(origin)
      if (prefix === undefined) this.prefixPaths.delete(origin)
      else this.prefixPaths.get(origin)?.delete(prefix)
    }
    const changed = new Set<string>()
    for (const origin of touched) {
      for (const of of prefixesOf(origin)) {
        const [gated, open] = before.get(key(origin, of)) ?? [undefined, undefined]
        const [gatedNow, openNow] = paths(origin, of)
        if (!samePath(gated, gatedNow) || !samePath(open, openNow)) changed.add(of)
      }
    }
    return [...changed].sort(compareText)
  }

  /**
   * With gateRelays: open (or close) `prefix`'s relay paths. The caller opens them once its
   * neighbours have heard that it relays the prefix (its reach report's `relaying`), so none of
   * them still relays the prefix through it; it closes them when its route no longer wants a relay.
   * Returns [prefix] when the prefix's paths changed.
   */
  setRelaysOpen (prefix: string, open: boolean): string[] {
    if (open === this.relaysOpen.has(prefix)) return []
    const origins = [...this.prefixes.get(prefix)?.records.keys() ?? []]
    return this.pathChanges(origins, () => {
      if (open) this.relaysOpen.add(prefix)
      else this.relaysOpen.delete(prefix)
    }, prefix)
  }

  /** Whether `prefix`'s relay paths are open (always true without gateRelays). */
  relaysOpenFor (prefix: string): boolean { return !this.gateRelays || this.relaysOpen.has(prefix) }

  /**
   * Whether the route for `prefix` would go through a relay were its relay paths open: what the
   * caller asks before opening them. No side effect on the incumbent.
   */
  wantsRelay (prefix: string): boolean {
    const state = this.prefixes.get(prefix)
    if (state === undefined || state.live === 0) return false
    const selected = selectBestPath(prefix, '', this.candidates(state, prefix, false), this.chosen.get(prefix))
    return selected.origin !== undefined && selected.origin !== this.self && selected.nextHop !== selected.origin
  }

  /** The live candidates of a prefix, each with its path for the prefix (`gated` as in pathFor). */
  private candidates (state: PrefixState | undefined, prefix: string, gated: boolean): RouteCandidate[] {
    const candidates: RouteCandidate[] = []
    for (const [origin, record] of state?.records ?? []) {
      if (record.state !== 'live') continue
      const { seq, attributes } = record.signed.announcement
      candidates.push({ origin, seq, attributes, path: this.pathFor(origin, prefix, gated) })
    }
    return candidates
  }

  /**
   * Hold down (or release) the relay paths to `origin`: while held, only a direct path counts.
   * A node that has just lost its direct path to an origin must not jump onto a neighbour's
   * report of reaching it: the neighbour may be losing it at the same moment (the origin crashed),
   * and two such nodes relaying to each other form a loop until their withdrawals cross.
   */
  setRelaysHeldDown (origin: string, held: boolean): string[] {
    if (held === this.relayBlocked.has(origin)) return []
    return this.pathChanges([origin], () => {
      if (held) this.relayBlocked.add(origin)
      else this.relayBlocked.delete(origin)
    })
  }

  /**
   * Demote (or restore) the direct path to `origin`: while demoted, any relay path is preferred to
   * it, whatever the costs; the direct path is still used when no relay path exists. Formation's
   * rule (direct-fallback.ts) demotes an origin whose direct path keeps failing.
   */
  setDirectDemoted (origin: string, demoted: boolean): string[] {
    if (demoted === this.directDemoted.has(origin)) return []
    return this.pathChanges([origin], () => {
      if (demoted) this.directDemoted.add(origin)
      else this.directDemoted.delete(origin)
    })
  }

  isDirectDemoted (origin: string): boolean { return this.directDemoted.has(origin) }

  /** Whether `origin`'s relay paths are held down now (setRelaysHeldDown). */
  isRelayHeldDown (origin: string): boolean { return this.relayBlocked.has(origin) }

  /** Neighbours whose reach reports list `origin` (held down or not). */
  relayCount (origin: string): number { return this.relaysByOrigin.get(origin)?.size ?? 0 }

  hasDirectReach (origin: string): boolean { return this.direct.has(origin) }

  /** The direct RTT to `origin` held now; undefined when there is no direct path. */
  directRttMs (origin: string): number | undefined { return this.direct.get(origin) }

  /** The RTT held for `neighbour`'s relay leg; undefined when it has sent no reach report. */
  neighbourRttMs (neighbour: string): number | undefined { return this.neighbours.get(neighbour)?.rttMs }

  /** This node's own measurement of `origin`: RTT in ms, or undefined when it cannot reach it directly. */
  setDirectReach (origin: string, rttMs: number | undefined): string[] {
    if (rttMs !== undefined) checkRtt(rttMs, 'direct RTT')
    return this.pathChanges([origin], () => {
      if (rttMs === undefined) this.direct.delete(origin)
      else this.direct.set(origin, rttMs)
    })
  }

  /**
   * A neighbour's reach report; `neighbourRttMs` is this node's RTT to that neighbour, undefined
   * when the session is gone (same as dropNeighbour). Reports are ordered per session by seq: an
   * older or equal seq only updates the neighbour's RTT. A report whose `from` is not `neighbour`
   * is ignored and counted. Throws AnnouncementError for an invalid report.
   */
  applyReachReport (neighbour: string, neighbourRttMs: number | undefined, report: ReachReport): string[] {
    if (neighbourRttMs === undefined) return this.dropNeighbour(neighbour)
    checkRtt(neighbourRttMs, 'neighbour RTT')
    validateReachReport(report)
    const known = this.neighbours.get(neighbour)
    if (report.from !== neighbour || neighbour === this.self || (known === undefined && this.neighbours.size >= this.maxNeighbours)) {
      this.droppedReachReports++
      return []
    }
    const replace = known === undefined || report.seq > known.seq
    const origins = new Set([...(known?.entries.keys() ?? []), ...(replace ? report.entries.map((entry) => entry.origin) : [])])
    return this.pathChanges(origins, () => {
      if (!replace) { known.rttMs = neighbourRttMs; return }
      this.removeRelays(neighbour, known)
      const entries = new Map(report.entries.map((entry) => [entry.origin, entry.rttMs]))
      const relaying = report.relaying === undefined ? NOTHING_RELAYED : new Set(report.relaying)
      const relayPending = report.relayPending === undefined ? NOTHING_RELAYED : new Set(report.relayPending)
      this.neighbours.set(neighbour, { rttMs: neighbourRttMs, seq: report.seq, entries, relaying, relayPending })
      for (const origin of entries.keys()) {
        let relays = this.relaysByOrigin.get(origin)
        if (relays === undefined) this.relaysByOrigin.set(origin, relays = new Set())
        relays.add(neighbour)
      }
    })
  }

  /** Our RTT to a neighbour changed (e.g. a keepalive measurement) without a new report. */
  setNeighbourRtt (neighbour: string, rttMs: number): string[] {
    checkRtt(rttMs, 'neighbour RTT')
    const known = this.neighbours.get(neighbour)
    if (known === undefined) return []
    return this.pathChanges(known.entries.keys(), () => { known.rttMs = rttMs })
  }

  /** The session to `neighbour` is gone: every relay path through it goes at once. */
  dropNeighbour (neighbour: string): string[] {
    const known = this.neighbours.get(neighbour)
    if (known === undefined) return []
    return this.pathChanges(known.entries.keys(), () => {
      this.removeRelays(neighbour, known)
      this.neighbours.delete(neighbour)
    })
  }

  private removeRelays (neighbour: string, known: NeighbourReach | undefined): void {
    for (const origin of known?.entries.keys() ?? []) {
      const relays = this.relaysByOrigin.get(origin)
      relays?.delete(neighbour)
      if (relays?.size === 0) this.relaysByOrigin.delete(origin)
    }
  }

  // --- reading --------------------------------------------------------------------------------

  /** The selected route for `prefix` (no-usable-origin with no candidates when unknown). */
  entry (prefix: string): RouteEntry {
    const state = this.prefixes.get(prefix)
    const selected = selectBestPath(prefix, '', this.candidates(state, prefix, true), this.chosen.get(prefix))
    if (selected.origin === undefined) this.chosen.delete(prefix)
    else this.chosen.set(prefix, selected.origin)
    return { ...selected, service: this.serviceOf(state, selected.candidates[0]?.origin) }
  }

  /**
   * The service of the chosen (or best-ranked) live candidate, '' when there is none: derived from
   * live state only, so it is independent of arrival order and changes only with the candidates.
   */
  private serviceOf (state: PrefixState | undefined, first: string | undefined): string {
    if (state === undefined || first === undefined) return ''
    return (state.records.get(first) as OriginRecord).signed.announcement.service
  }

  /** Entries of every prefix with at least one live candidate, sorted by prefix. */
  entries (): RouteEntry[] {
    return [...this.prefixes].filter(([, state]) => state.live > 0).map(([prefix]) => prefix).sort(compareText)
      .map((prefix) => this.entry(prefix))
  }

  /** Origins with an announcement held, live or a withdrawal (what snapshotAnnouncements would list). */
  heldOrigins (): Set<string> {
    const origins = new Set<string>()
    for (const state of this.prefixes.values()) {
      for (const [origin, record] of state.records) if (record.state !== 'suppressed') origins.add(origin)
    }
    return origins
  }

  /** Per prefix, the origins of its live announcements that do not say the service failed. */
  * usableOrigins (): Generator<string[]> {
    for (const state of this.prefixes.values()) {
      if (state.live === 0) continue
      const origins: string[] = []
      for (const [origin, record] of state.records) {
        if (record.state === 'live' && record.signed.announcement.attributes.health !== 'failed') origins.push(origin)
      }
      yield origins
    }
  }

  /** The latest announcement held for (prefix, origin), live or a signed withdrawal. */
  announcement (prefix: string, origin: string): SignedAnnouncement | undefined {
    const record = this.prefixes.get(prefix)?.records.get(origin)
    return record === undefined || record.state === 'suppressed' ? undefined : record.signed
  }

  /**
   * Everything a newly established neighbour should hear: live announcements and signed
   * withdrawals, sorted by (prefix, origin). Expired or invalidated ones are not re-sent, so a
   * lapsed route is never revived at a neighbour.
   */
  snapshotAnnouncements (): SignedAnnouncement[] {
    const out: SignedAnnouncement[] = []
    for (const prefix of [...this.prefixes.keys()].sort(compareText)) {
      const records = (this.prefixes.get(prefix) as PrefixState).records
      for (const origin of [...records.keys()].sort(compareText)) {
        const record = records.get(origin) as OriginRecord
        if (record.state !== 'suppressed') out.push(record.signed)
      }
    }
    return out
  }

  /**
   * A stable fingerprint of the live (prefix, origin, seq) triples, "<count>:<fnv-1a 64 hex>":
   * two nodes with the same digest hold the same live announcements.
   */
  digest (): string {
    const lines: string[] = []
    for (const [prefix, state] of this.prefixes) {
      for (const [origin, record] of state.records) {
        if (record.state === 'live') lines.push(`${prefix} ${origin} ${record.signed.announcement.seq}\n`)
      }
    }
    lines.sort(compareText)
    return `${lines.length}:${fnv1a64(new TextEncoder().encode(lines.join('')))}`
  }

  stats (): RouteTableStats {
    let live = 0
    let records = 0
    for (const state of this.prefixes.values()) { live += state.live; records += state.records.size }
    return {
      prefixes: this.prefixes.size,
      liveAnnouncements: live,
      tombstones: records - live,
      neighbours: this.neighbours.size,
      droppedTableFull: this.droppedTableFull,
      droppedReachReports: this.droppedReachReports
    }
  }
}
