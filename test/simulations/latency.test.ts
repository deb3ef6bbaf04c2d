import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { destinationPoint, greatCircleKm, oneWayLatencyMs, trueRttMs, type Coordinates } from '../../simulations/latency.ts'

const FRANKFURT = { lat: 50.11, lon: 8.68 }
const NEW_YORK = { lat: 40.71, lon: -74.01 }
const SINGAPORE = { lat: 1.35, lon: 103.82 }
const SYDNEY = { lat: -33.87, lon: 151.21 }
const LONDON = { lat: 51.51, lon: -0.13 }

// Reference distances: great-circle figures as published by common calculators (±0.5 %).
const distances: Array<[string, Coordinates, Coordinates, number]> = [
  ['Frankfurt–New York', FRANKFURT, NEW_YORK, 6200],
  ['London–Singapore', LONDON, SINGAPORE, 10_880],
  ['Singapore–Sydney', SINGAPORE, SYDNEY, 6300],
  ['London–Frankfurt', LONDON, FRANKFURT, 640],
  ['same place', FRANKFURT, FRANKFURT, 0],
  ['antipodes', { lat: 0, lon: 0 }, { lat: 0, lon: 180 }, Math.PI * 6371]
]

for (const [label, a, b, km] of distances) {
  test(`latency: great-circle distance ${label} ≈ ${Math.round(km)} km`, () => {
    const got = greatCircleKm(a, b)
    assert.ok(Math.abs(got - km) <= Math.max(1, km * 0.005), `got ${got.toFixed(1)} km`)
    assert.ok(Math.abs(greatCircleKm(b, a) - got) < 1e-9, 'symmetric')
  })
}

// one-way = km / 200 km/ms × inflation + base
const latencies: Array<[string, Coordinates, Coordinates, { inflation: number, linkBaseMs: number }, number]> = [
  ['Frankfurt–New York at 1.5× plus 1 ms', FRANKFURT, NEW_YORK, { inflation: 1.5, linkBaseMs: 1 }, 6200 / 200 * 1.5 + 1],
  ['Frankfurt–New York on a straight fibre, no base', FRANKFURT, NEW_YORK, { inflation: 1, linkBaseMs: 0 }, 6200 / 200],
  ['one city: only the base', LONDON, LONDON, { inflation: 1.5, linkBaseMs: 1 }, 1],
  ['London–Singapore at 2×', LONDON, SINGAPORE, { inflation: 2, linkBaseMs: 0.5 }, 10_880 / 200 * 2 + 0.5]
]

for (const [label, a, b, model, expected] of latencies) {
  test(`latency: one-way ${label} ≈ ${expected.toFixed(1)} ms`, () => {
    const got = oneWayLatencyMs(a, b, model)
    assert.ok(Math.abs(got - expected) <= expected * 0.005 + 0.01, `got ${got.toFixed(2)} ms`)
    assert.is(trueRttMs(a, b, model), 2 * got)
  })
}

test('latency: the default model is 1.5× inflation and a 1 ms base (Frankfurt–New York ≈ 46 ms one way)', () => {
  const got = oneWayLatencyMs(FRANKFURT, NEW_YORK)
  assert.ok(got > 45 && got < 48, `got ${got.toFixed(2)} ms`)
})

test('latency: destinationPoint lands the requested distance away, and wraps longitude', () => {
  for (const [bearing, km] of [[0, 300], [90, 300], [200, 1000], [315, 50]] as const) {
    const point = destinationPoint(FRANKFURT, bearing, km)
    assert.ok(Math.abs(greatCircleKm(FRANKFURT, point) - km) < 0.01, `bearing ${bearing}`)
  }
  const east = destinationPoint({ lat: 0, lon: 179 }, 90, 300)
  assert.ok(east.lon < -177 && east.lon >= -180, `wrapped to ${east.lon}`)
  const same = destinationPoint(SYDNEY, 45, 0)
  assert.ok(Math.abs(same.lat - SYDNEY.lat) < 1e-9 && Math.abs(same.lon - SYDNEY.lon) < 1e-9, 'zero distance stays put')
})

test.run()
