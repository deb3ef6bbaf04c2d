// Distance-based latency for the simulated world. Light in fibre travels at about 2/3 c, roughly
// 200 km per ms. Real paths are longer than the great circle (cable routes, peering detours); the
// route inflation factor stands for that, with 1.5 as a middle planning value (measurements such as
// Singla et al., "The Internet at the Speed of Light", HotNets 2014, find real RTTs several times the
// speed-of-light bound, of which fibre's refractive index is one 1.5× factor). A small per-link base
// models serialisation, switching and the last mile, so that two nodes in one city are not 0 ms
// apart. Pure functions.

export const EARTH_RADIUS_KM = 6371
/** Light in fibre (refractive index ≈ 1.5) covers about 200 km per millisecond. */
export const FIBRE_KM_PER_MS = 200
export const DEFAULT_ROUTE_INFLATION = 1.5
export const DEFAULT_LINK_BASE_MS = 1

export interface Coordinates { lat: number, lon: number, region?: string }

export interface LatencyModel {
  /** Path length over the great-circle distance; >= 1. */
  inflation: number
  /** Added to every one-way delay, in ms; >= 0. */
  linkBaseMs: number
  /**
   * Per region pair (either order; both the same region for links inside one): an inflation,
   * link base or extra jitter of their own, as when two regions are joined by poor or few cables.
   * The first matching entry wins; places without a region use the global values.
   */
  regions?: RegionLatency[]
}

export interface RegionLatency {
  between: [string, string]
  inflation?: number
  linkBaseMs?: number
  /** Extra per-message jitter spread on these links, in ms (SimNetworkOptions.linkJitterMs). */
  jitterMs?: number
}

/** The region-pair override that applies between two places, if any. */
export function regionLatency (a: Coordinates, b: Coordinates, model: LatencyModel): RegionLatency | undefined {
  if (model.regions === undefined || a.region === undefined || b.region === undefined) return undefined
  return model.regions.find(({ between: [x, y] }) => (x === a.region && y === b.region) || (x === b.region && y === a.region))
}

export const defaultLatencyModel: LatencyModel = { inflation: DEFAULT_ROUTE_INFLATION, linkBaseMs: DEFAULT_LINK_BASE_MS }

function radians (degrees: number): number { return degrees * Math.PI / 180 }

/** Great-circle distance by the haversine formula (numerically sound for short distances). */
export function greatCircleKm (a: Coordinates, b: Coordinates): number {
  const dLat = radians(b.lat - a.lat)
  const dLon = radians(b.lon - a.lon)
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(radians(a.lat)) * Math.cos(radians(b.lat)) * Math.sin(dLon / 2) ** 2
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(h)))
}

/** One-way delay between two places: inflated fibre distance plus the link base. */
export function oneWayLatencyMs (a: Coordinates, b: Coordinates, model: LatencyModel = defaultLatencyModel): number {
  const override = regionLatency(a, b, model)
  return greatCircleKm(a, b) / FIBRE_KM_PER_MS * (override?.inflation ?? model.inflation) + (override?.linkBaseMs ?? model.linkBaseMs)
}

/** The true round-trip time the checkers compare origins by: twice the one-way delay. */
export function trueRttMs (a: Coordinates, b: Coordinates, model: LatencyModel = defaultLatencyModel): number {
  return 2 * oneWayLatencyMs(a, b, model)
}

/**
 * A point `distanceKm` from `origin` along `bearingDegrees` (great-circle destination formula),
 * used to scatter generated nodes around a site. Longitude is normalised to [-180, 180).
 */
export function destinationPoint (origin: Coordinates, bearingDegrees: number, distanceKm: number): Coordinates {
  const angular = distanceKm / EARTH_RADIUS_KM
  const bearing = radians(bearingDegrees)
  const lat1 = radians(origin.lat)
  const lon1 = radians(origin.lon)
  const lat2 = Math.asin(Math.sin(lat1) * Math.cos(angular) + Math.cos(lat1) * Math.sin(angular) * Math.cos(bearing))
  const lon2 = lon1 + Math.atan2(Math.sin(bearing) * Math.sin(angular) * Math.cos(lat1), Math.cos(angular) - Math.sin(lat1) * Math.sin(lat2))
  const lon = ((lon2 * 180 / Math.PI + 540) % 360) - 180
  return { lat: lat2 * 180 / Math.PI, lon }
}
