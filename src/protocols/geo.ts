// Geographic scoring for GeoDNS: how well an origin at one place serves a client at another.
// The numbers are Formation's (shared/FORMATION-FACTS.md "Geo scoring"), kept so that an operator
// who knows Formation's GeoDNS gets the same ordering here:
//
//   score = distanceScore × (1 − bias) + bonus, capped at 1
//   bias 0.8; bonus 0.8 for the same subdivision, 0.4 for the same country; unknown location 0.01
//
// With bias 0.8 distance contributes at most 0.2, so administrative closeness (same country, same
// subdivision) dominates and distance orders origins within a tier. Distance is great-circle
// distance by the haversine formula (Sinnott, "Virtues of the Haversine", Sky & Telescope 68:2,
// 1984) on a sphere of radius 6371 km (the IUGG mean Earth radius).

export const EARTH_RADIUS_KM = 6371
/** Distance at which the linear and quadratic scores reach 0: about half the Earth's circumference. */
export const SCORE_DISTANCE_KM = 20_000
export const GEO_BIAS = 0.8
export const SAME_SUBDIVISION_BONUS = 0.8
export const SAME_COUNTRY_BONUS = 0.4
/** The score of a pair where either side has no (valid) location. */
export const UNKNOWN_LOCATION_SCORE = 0.01

export type DistanceStrategy = 'linear' | 'quadratic' | 'logarithmic' | 'stepped'
export const DISTANCE_STRATEGIES: readonly DistanceStrategy[] = ['linear', 'quadratic', 'logarithmic', 'stepped']

export interface GeoPoint {
  /** Degrees, −90..90. */
  lat: number
  /** Degrees, −180..180. */
  lon: number
}

export interface GeoPlace extends GeoPoint {
  /** ISO 3166-1 alpha-2 country code, any case. */
  country?: string
  /** A subdivision code or name (state, province); only compared within the same country. */
  subdivision?: string
}

/** Stepped scores: the first row whose bound the distance is below gives the score. */
const STEPS: ReadonlyArray<readonly [belowKm: number, score: number]> = [
  [100, 1.0],
  [500, 0.8],
  [2000, 0.6],
  [5000, 0.4]
]
const STEPPED_FLOOR = 0.2

const toRadians = (degrees: number): number => degrees * Math.PI / 180

/** A point with finite coordinates inside the valid ranges; anything else counts as unknown. */
export function isValidPoint (point: GeoPoint | undefined): point is GeoPoint {
  return point !== undefined &&
    Number.isFinite(point.lat) && Math.abs(point.lat) <= 90 &&
    Number.isFinite(point.lon) && Math.abs(point.lon) <= 180
}

/** Great-circle distance in km. Throws RangeError for coordinates outside the valid ranges. */
export function haversineKm (a: GeoPoint, b: GeoPoint): number {
  if (!isValidPoint(a) || !isValidPoint(b)) throw new RangeError(`haversine: invalid coordinates (${a.lat}, ${a.lon}) → (${b.lat}, ${b.lon})`)
  const dLat = toRadians(b.lat - a.lat)
  const dLon = toRadians(b.lon - a.lon)
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(toRadians(a.lat)) * Math.cos(toRadians(b.lat)) * Math.sin(dLon / 2) ** 2
  // Rounding can push h a hair above 1 for antipodal points; asin would then be NaN.
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.sqrt(Math.min(1, h)))
}

const clampUnit = (value: number): number => Math.min(1, Math.max(0, value))

/**
 * How good a distance is, 0 (worst) .. 1 (best), per strategy. Formation's formulas, clamped to
 * [0, 1]: linear and quadratic would go negative past 20,000 km (antipodes are 20,015 km apart),
 * and the logarithmic score exceeds 1 below 1 km (ln d < 0; ln 0 = −∞).
 */
export function distanceScore (distanceKm: number, strategy: DistanceStrategy = 'linear'): number {
  if (!(distanceKm >= 0)) throw new RangeError(`distance must be a non-negative number of km, not ${distanceKm}`)
  switch (strategy) {
    case 'linear': return clampUnit(1 - distanceKm / SCORE_DISTANCE_KM)
    case 'quadratic': return clampUnit(1 - distanceKm / SCORE_DISTANCE_KM) ** 2
    case 'logarithmic': return clampUnit(1 - Math.log(distanceKm) / 10)
    case 'stepped': {
      for (const [belowKm, score] of STEPS) if (distanceKm < belowKm) return score
      return STEPPED_FLOOR
    }
  }
}

const normalise = (code: string | undefined): string | undefined => {
  const trimmed = code?.trim()
  return trimmed === undefined || trimmed === '' ? undefined : trimmed.toUpperCase()
}

/** 0.8 for the same country and subdivision, 0.4 for the same country, else 0. */
export function placeBonus (client: GeoPlace, origin: GeoPlace): number {
  const country = normalise(client.country)
  if (country === undefined || country !== normalise(origin.country)) return 0
  const subdivision = normalise(client.subdivision)
  if (subdivision !== undefined && subdivision === normalise(origin.subdivision)) return SAME_SUBDIVISION_BONUS
  return SAME_COUNTRY_BONUS
}

export interface GeoScore {
  score: number
  /** Undefined when either location is unknown. */
  distanceKm: number | undefined
}

/** Formation's geo score of an origin for a client; either place unknown (or invalid) → 0.01. */
export function geoScore (client: GeoPlace | undefined, origin: GeoPlace | undefined, strategy: DistanceStrategy = 'linear'): GeoScore {
  if (!isValidPoint(client) || !isValidPoint(origin)) return { score: UNKNOWN_LOCATION_SCORE, distanceKm: undefined }
  const distanceKm = haversineKm(client, origin)
  const score = Math.min(1, distanceScore(distanceKm, strategy) * (1 - GEO_BIAS) + placeBonus(client, origin))
  return { score, distanceKm }
}
