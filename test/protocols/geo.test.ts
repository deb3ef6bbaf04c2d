import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fc from 'fast-check'
import {
  DISTANCE_STRATEGIES, EARTH_RADIUS_KM, UNKNOWN_LOCATION_SCORE, distanceScore, geoScore, haversineKm, placeBonus,
  type DistanceStrategy, type GeoPlace
} from '../../src/protocols/geo.ts'

const CITIES = {
  frankfurt: { lat: 50.1109, lon: 8.6821 },
  newYork: { lat: 40.7128, lon: -74.0060 },
  london: { lat: 51.5074, lon: -0.1278 },
  paris: { lat: 48.8566, lon: 2.3522 },
  singapore: { lat: 1.3521, lon: 103.8198 },
  sydney: { lat: -33.8688, lon: 151.2093 }
} as const

const near = (actual: number, expected: number, tolerance: number, message: string): void => {
  assert.ok(Math.abs(actual - expected) <= tolerance, `${message}: ${actual} is not within ${tolerance} of ${expected}`)
}

// Reference distances: great-circle figures published for these city pairs (≈), checked to ±1 %.
const distances: Array<{ from: keyof typeof CITIES, to: keyof typeof CITIES, km: number }> = [
  { from: 'frankfurt', to: 'newYork', km: 6200 },
  { from: 'london', to: 'paris', km: 344 },
  { from: 'singapore', to: 'sydney', km: 6300 },
  { from: 'frankfurt', to: 'singapore', km: 10_260 }
]

for (const { from, to, km } of distances) {
  test(`haversine: ${from}–${to} ≈ ${km} km (±1 %), symmetric`, () => {
    near(haversineKm(CITIES[from], CITIES[to]), km, km * 0.01, `${from}→${to}`)
    assert.is(haversineKm(CITIES[from], CITIES[to]), haversineKm(CITIES[to], CITIES[from]))
  })
}

test('haversine: same point is 0 km; antipodes are half the circumference (π × 6371 km)', () => {
  assert.is(haversineKm(CITIES.paris, CITIES.paris), 0)
  near(haversineKm({ lat: 0, lon: 0 }, { lat: 0, lon: 180 }), Math.PI * EARTH_RADIUS_KM, 1e-6, 'equator antipodes')
  near(haversineKm({ lat: 90, lon: 0 }, { lat: -90, lon: 0 }), Math.PI * EARTH_RADIUS_KM, 1e-6, 'pole to pole')
  near(haversineKm({ lat: 10, lon: 179.5 }, { lat: 10, lon: -179.5 }), 109.5, 1, 'across the antimeridian')
})

test('haversine: coordinates outside the valid ranges are a RangeError', () => {
  assert.throws(() => haversineKm({ lat: 91, lon: 0 }, CITIES.paris), (error: unknown) => error instanceof RangeError)
  assert.throws(() => haversineKm(CITIES.paris, { lat: 0, lon: Number.NaN }), (error: unknown) => error instanceof RangeError)
})

test('haversine: property — finite, within [0, π R], symmetric, for any valid points', () => {
  const point = fc.record({ lat: fc.double({ min: -90, max: 90, noNaN: true }), lon: fc.double({ min: -180, max: 180, noNaN: true }) })
  fc.assert(fc.property(point, point, (a, b) => {
    const d = haversineKm(a, b)
    return d >= 0 && d <= Math.PI * EARTH_RADIUS_KM + 1e-6 && Math.abs(d - haversineKm(b, a)) < 1e-6
  }))
})

// distanceScore per strategy (FORMATION-FACTS "Geo scoring"), clamped to [0, 1].
const strategyTable: Array<{ strategy: DistanceStrategy, km: number, score: number }> = [
  { strategy: 'linear', km: 0, score: 1 },
  { strategy: 'linear', km: 5000, score: 0.75 },
  { strategy: 'linear', km: 10_000, score: 0.5 },
  { strategy: 'linear', km: 20_000, score: 0 },
  { strategy: 'linear', km: 20_015, score: 0 },
  { strategy: 'quadratic', km: 0, score: 1 },
  { strategy: 'quadratic', km: 5000, score: 0.5625 },
  { strategy: 'quadratic', km: 10_000, score: 0.25 },
  { strategy: 'quadratic', km: 20_015, score: 0 },
  { strategy: 'logarithmic', km: 0, score: 1 },
  { strategy: 'logarithmic', km: 0.5, score: 1 },
  { strategy: 'logarithmic', km: 1, score: 1 },
  { strategy: 'logarithmic', km: Math.E ** 5, score: 0.5 },
  { strategy: 'logarithmic', km: 1000, score: 1 - Math.log(1000) / 10 },
  { strategy: 'logarithmic', km: 20_000, score: 1 - Math.log(20_000) / 10 },
  { strategy: 'stepped', km: 0, score: 1 },
  { strategy: 'stepped', km: 99.9, score: 1 },
  { strategy: 'stepped', km: 100, score: 0.8 },
  { strategy: 'stepped', km: 499, score: 0.8 },
  { strategy: 'stepped', km: 500, score: 0.6 },
  { strategy: 'stepped', km: 1999, score: 0.6 },
  { strategy: 'stepped', km: 2000, score: 0.4 },
  { strategy: 'stepped', km: 4999, score: 0.4 },
  { strategy: 'stepped', km: 5000, score: 0.2 },
  { strategy: 'stepped', km: 20_000, score: 0.2 }
]

for (const { strategy, km, score } of strategyTable) {
  test(`distanceScore: ${strategy} at ${Number(km.toFixed(3))} km = ${Number(score.toFixed(4))}`, () => {
    near(distanceScore(km, strategy), score, 1e-12, strategy)
  })
}

test('distanceScore: linear is the default; negative or NaN distance is a RangeError', () => {
  assert.is(distanceScore(10_000), 0.5)
  assert.throws(() => distanceScore(-1), (error: unknown) => error instanceof RangeError)
  assert.throws(() => distanceScore(Number.NaN, 'stepped'), (error: unknown) => error instanceof RangeError)
})

test('distanceScore: property — every strategy is in [0, 1] and never increases with distance', () => {
  fc.assert(fc.property(
    fc.constantFrom(...DISTANCE_STRATEGIES), fc.double({ min: 0, max: 40_000, noNaN: true }), fc.double({ min: 0, max: 40_000, noNaN: true }),
    (strategy, a, b) => {
      const [nearer, farther] = a <= b ? [a, b] : [b, a]
      const sNear = distanceScore(nearer, strategy)
      const sFar = distanceScore(farther, strategy)
      return sNear >= 0 && sNear <= 1 && sFar >= 0 && sFar <= 1 && sNear >= sFar
    }
  ))
})

const place = (city: keyof typeof CITIES, country?: string, subdivision?: string): GeoPlace => ({ ...CITIES[city], country, subdivision })

// score = distanceScore × (1 − 0.8) + bonus, capped at 1.
const scoreTable: Array<{ name: string, client: GeoPlace | undefined, origin: GeoPlace | undefined, strategy?: DistanceStrategy, score: number }> = [
  { name: 'same place, same subdivision: 1 × 0.2 + 0.8 = 1 (the cap)', client: place('frankfurt', 'DE', 'HE'), origin: place('frankfurt', 'DE', 'HE'), score: 1 },
  { name: 'same place, same country only: 0.2 + 0.4', client: place('frankfurt', 'DE', 'HE'), origin: place('frankfurt', 'DE', 'BY'), score: 0.6 },
  { name: 'country codes compare case-insensitively', client: place('frankfurt', 'de'), origin: place('frankfurt', 'DE '), score: 0.6 },
  { name: 'same subdivision name in another country earns nothing', client: place('london', 'GB', 'X'), origin: place('paris', 'FR', 'X'), score: (1 - 343.556 / 20_000) * 0.2 },
  { name: 'same place, no country known: distance only', client: place('paris'), origin: place('paris', 'FR'), score: 0.2 },
  { name: 'Frankfurt → New York, linear', client: place('frankfurt', 'DE'), origin: place('newYork', 'US'), score: (1 - 6202.68 / 20_000) * 0.2 },
  { name: 'Frankfurt → New York, stepped', client: place('frankfurt', 'DE'), origin: place('newYork', 'US'), strategy: 'stepped', score: 0.2 * 0.2 },
  { name: 'London → Paris, stepped (< 500 km)', client: place('london', 'GB'), origin: place('paris', 'FR'), strategy: 'stepped', score: 0.8 * 0.2 },
  { name: 'Frankfurt → New York, same country (say, a US client in Frankfurt): 0.4 bonus', client: place('frankfurt', 'US'), origin: place('newYork', 'US'), score: (1 - 6202.68 / 20_000) * 0.2 + 0.4 },
  { name: 'unknown client', client: undefined, origin: place('paris', 'FR'), score: UNKNOWN_LOCATION_SCORE },
  { name: 'unknown origin', client: place('paris', 'FR'), origin: undefined, score: UNKNOWN_LOCATION_SCORE },
  { name: 'invalid origin coordinates count as unknown', client: place('paris', 'FR'), origin: { lat: 200, lon: 0, country: 'FR' }, score: UNKNOWN_LOCATION_SCORE }
]

for (const row of scoreTable) {
  test(`geoScore: ${row.name} → ${row.score.toFixed(4)}`, () => {
    const result = geoScore(row.client, row.origin, row.strategy)
    near(result.score, row.score, 1e-5, row.name)
    assert.is(result.distanceKm === undefined, row.score === UNKNOWN_LOCATION_SCORE)
  })
}

test('placeBonus: 0.8 same subdivision, 0.4 same country, 0 otherwise; only one bonus applies', () => {
  assert.is(placeBonus(place('paris', 'FR', 'IDF'), place('paris', 'FR', 'IDF')), 0.8)
  assert.is(placeBonus(place('paris', 'FR', 'IDF'), place('paris', 'FR')), 0.4)
  assert.is(placeBonus(place('paris', 'FR'), place('paris', 'FR', 'IDF')), 0.4)
  assert.is(placeBonus(place('paris'), place('paris')), 0)
  assert.is(placeBonus(place('paris', 'FR'), place('london', 'GB')), 0)
})

test('geoScore: property — always in (0, 1], and closer never scores lower at equal bonus', () => {
  const point = fc.record({ lat: fc.double({ min: -90, max: 90, noNaN: true }), lon: fc.double({ min: -180, max: 180, noNaN: true }) })
  fc.assert(fc.property(fc.constantFrom(...DISTANCE_STRATEGIES), point, point, point, (strategy, client, a, b) => {
    const sa = geoScore(client, a, strategy)
    const sb = geoScore(client, b, strategy)
    if (!(sa.score >= 0 && sa.score <= 1 && sb.score >= 0 && sb.score <= 1)) return false
    return sa.distanceKm! <= sb.distanceKm! ? sa.score >= sb.score : sa.score <= sb.score
  }))
})

test.run()
