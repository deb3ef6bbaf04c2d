// The vocabulary of the anycast control plane, shared by codecs, selection, actors and runtime.
// An origin is a node that serves a service and announces the service's anycast prefix; every node
// picks, per prefix, the best live origin (see best-path.ts).

export type HealthState = 'healthy' | 'degraded' | 'failed'

export interface GeoLocation {
  lat: number
  lon: number
  region?: string
}

export interface RouteAttributes {
  health: HealthState
  /** Operator preference, higher wins before cost; 0..1000, default 100. */
  preference: number
  /** Origin load, 0 (idle) .. 1 (saturated). */
  load: number
  location?: GeoLocation
  /**
   * Lifetime from receipt: a receiver forgets the announcement this long after it last heard a
   * newer one, so a silent dead origin ages out (origins refresh every ttl/3).
   */
  ttlMs: number
}

/** One origin's statement about one prefix. Newer `seq` from the same origin supersedes older. */
export interface RouteAnnouncement {
  /** CIDR, e.g. "10.42.255.1/32". */
  prefix: string
  /** Service name, e.g. "api". */
  service: string
  /** Node id (peer id) of the origin; the signature must verify against its key. */
  origin: string
  /** Strictly increasing per (origin, prefix) across restarts (e.g. derived from wall time). */
  seq: number
  /** An explicit withdrawal: the origin no longer serves the prefix. */
  withdrawn: boolean
  attributes: RouteAttributes
}

export interface SignedAnnouncement {
  announcement: RouteAnnouncement
  /** Ed25519 signature by the origin over announcementSigningBytes(announcement). */
  signature: Uint8Array
}

/**
 * What a neighbour reports it reaches directly, and at what RTT, so a node that cannot reach an
 * origin itself can use a one-hop relay path through that neighbour.
 */
export interface ReachReport {
  /** Reporting node. */
  from: string
  seq: number
  entries: Array<{ origin: string, rttMs: number }>
  /**
   * Prefixes the reporting node forwards through a relay itself: a neighbour must not relay those
   * prefixes through it, since one-hop relay paths are loop-free only when the relay hands the
   * packet straight to an origin. Absent when there are none.
   */
  relaying?: string[]
  /**
   * Prefixes the reporting node is about to forward through a relay, one refresh period from now;
   * until then it still hands them to origins itself. A neighbour keeps relaying such a prefix
   * through it only if the reporter's id sorts before its own (route-table.ts says why that is
   * loop-free). Absent when there are none; never lists a prefix that `relaying` lists.
   */
  relayPending?: string[]
}

/** How a node reaches an origin: directly, or via one neighbour (formnet's relay). */
export interface RoutePath {
  /** Node ids traversed after this node, ending with the origin: [origin] or [relay, origin]. */
  hops: string[]
  /** Measured RTT in ms; a relay path adds the neighbour's leg to the neighbour's reported RTT. */
  costMs: number
}

/** One candidate origin for a prefix as seen from this node. */
export interface RouteCandidate {
  origin: string
  seq: number
  attributes: RouteAttributes
  /** Best known path to the origin, or undefined when it is unreachable from here. */
  path: RoutePath | undefined
}

export type SelectionReason =
  | 'only-candidate'
  | 'health'
  | 'preference'
  | 'cost'
  | 'tie-break'
  /** The current origin is kept: it is only marginally costlier than the best (no flapping on RTT noise). */
  | 'hysteresis'
  | 'no-usable-origin'

/** The route table entry for one prefix. */
export interface RouteEntry {
  prefix: string
  service: string
  /** Chosen origin, undefined when no candidate is usable. */
  origin: string | undefined
  /** First hop towards the origin (the origin itself when direct). */
  nextHop: string | undefined
  costMs: number | undefined
  reason: SelectionReason
  candidates: RouteCandidate[]
  /**
   * Set by the control plane while this node relays the prefix ('open') or has said it will and
   * waits before it does ('pending'); the prefix is then in its reach reports' `relaying` list.
   */
  relaying?: 'pending' | 'open'
}
