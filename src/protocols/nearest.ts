// The nearest healthy choice for a GeoDNS answer: which origins of a service's prefix to give a
// client, best first. A pure function of the client's place, the candidates and the options.
//
// Rules (Formation's, shared/FORMATION-FACTS.md "Geo scoring" and "DNS"):
// - failed origins are excluded; degraded ones stay but their score is multiplied by a penalty;
// - if every origin has failed, answer with all of them rather than nothing (`fallback: true`):
//   a resolver that gets an empty answer caches the failure, while a possibly-dead address may work;
// - with no candidates at all (cold start) answer with the last known or configured set, so the
//   answer is never empty while anything was ever known;
// - at most `max` (default 3) origins in a normal answer.
// Ties are broken by health, then load, then id, then address (code-unit order), so two nodes with
// the same inputs give the same answer.

import { geoScore, type DistanceStrategy, type GeoPlace } from './geo.ts'
import type { HealthState } from './routes.ts'

export const DEFAULT_MAX_ORIGINS = 3
/** Degraded origins' score multiplier; Formation's endpoint scoring uses 0.5 for degraded too. */
export const DEFAULT_DEGRADED_PENALTY = 0.5

export interface OriginLocation extends GeoPlace {
  /** Operator's region label (e.g. "eu-central"); carried through, not scored: clients have none. */
  region?: string
}

export interface NearestCandidate {
  /** Origin node id. */
  id: string
  /** The address to answer with. */
  address: string
  location?: OriginLocation
  health: HealthState
  /** 0 (idle) .. 1 (saturated). */
  load: number
}

export interface NearestOptions {
  /** Most origins in a normal answer; default 3. */
  max?: number
  /** Default 'linear'. */
  strategy?: DistanceStrategy
  /** Multiplier for a degraded origin's score, 0..1; default 0.5. */
  degradedPenalty?: number
  /** Score × (1 − loadPenalty × load), 0..1; default 0 (load only breaks ties). */
  loadPenalty?: number
  /** The last known or configured set, answered when `candidates` is empty (cold start). */
  lastKnown?: readonly NearestCandidate[]
}

export interface RankedOrigin {
  id: string
  address: string
  health: HealthState
  load: number
  score: number
  /** Undefined when the client's or the origin's location is unknown. */
  distanceKm: number | undefined
}

/**
 * - `nearest`: usable origins ranked by score, at most `max`.
 * - `all-failed`: every candidate has failed; all of them, ranked.
 * - `last-known`: no candidates; the `lastKnown` set ranked as `nearest` would (then `all-failed`).
 * - `empty`: nothing is known at all.
 */
export type NearestReason = 'nearest' | 'all-failed' | 'last-known' | 'empty'

export interface NearestAnswer {
  origins: RankedOrigin[]
  /** True when the answer is not a fresh healthy choice (`all-failed` or `last-known`). */
  fallback: boolean
  reason: NearestReason
}

const HEALTH_RANK: Record<HealthState, number> = { healthy: 0, degraded: 1, failed: 2 }

function checkUnitInterval (name: string, value: number): void {
  if (!(value >= 0 && value <= 1)) throw new RangeError(`${name} must be between 0 and 1, not ${value}`)
}

/** A load outside 0..1 (or NaN) from a peer must not reorder answers wildly: clamp it. */
const clampLoad = (load: number): number => Number.isFinite(load) ? Math.min(1, Math.max(0, load)) : 1

function rank (client: GeoPlace | undefined, candidate: NearestCandidate, options: Required<Omit<NearestOptions, 'lastKnown'>>): RankedOrigin {
  const { score: geo, distanceKm } = geoScore(client, candidate.location, options.strategy)
  const load = clampLoad(candidate.load)
  let score = geo * (1 - options.loadPenalty * load)
  if (candidate.health === 'degraded') score *= options.degradedPenalty
  return { id: candidate.id, address: candidate.address, health: candidate.health, load, score, distanceKm }
}

/** Best first: higher score, then healthier, then less loaded, then id, then address. */
export function compareRanked (a: RankedOrigin, b: RankedOrigin): number {
  if (a.score !== b.score) return b.score - a.score
  if (a.health !== b.health) return HEALTH_RANK[a.health] - HEALTH_RANK[b.health]
  if (a.load !== b.load) return a.load - b.load
  if (a.id !== b.id) return a.id < b.id ? -1 : 1
  if (a.address !== b.address) return a.address < b.address ? -1 : 1
  return 0
}

function rankAll (client: GeoPlace | undefined, candidates: readonly NearestCandidate[], options: Required<Omit<NearestOptions, 'lastKnown'>>): NearestAnswer {
  const usable = candidates.filter((candidate) => candidate.health !== 'failed')
  if (usable.length === 0) {
    return { origins: candidates.map((candidate) => rank(client, candidate, options)).sort(compareRanked), fallback: true, reason: 'all-failed' }
  }
  const origins = usable.map((candidate) => rank(client, candidate, options)).sort(compareRanked).slice(0, options.max)
  return { origins, fallback: false, reason: 'nearest' }
}

/** The origins to answer a client with, best first. `client` undefined: its location is unknown. */
export function chooseNearest (client: GeoPlace | undefined, candidates: readonly NearestCandidate[], options: NearestOptions = {}): NearestAnswer {
  const resolved = {
    max: options.max ?? DEFAULT_MAX_ORIGINS,
    strategy: options.strategy ?? 'linear',
    degradedPenalty: options.degradedPenalty ?? DEFAULT_DEGRADED_PENALTY,
    loadPenalty: options.loadPenalty ?? 0
  }
  if (!Number.isInteger(resolved.max) || resolved.max < 1) throw new RangeError(`max must be a positive integer, not ${resolved.max}`)
  checkUnitInterval('degradedPenalty', resolved.degradedPenalty)
  checkUnitInterval('loadPenalty', resolved.loadPenalty)
  if (candidates.length > 0) return rankAll(client, candidates, resolved)
  const lastKnown = options.lastKnown ?? []
  if (lastKnown.length === 0) return { origins: [], fallback: false, reason: 'empty' }
  const answer = rankAll(client, lastKnown, resolved)
  return answer.reason === 'nearest' ? { ...answer, fallback: true, reason: 'last-known' } : answer
}
