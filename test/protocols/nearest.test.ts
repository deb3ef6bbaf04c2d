import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fc from 'fast-check'
import type { GeoPlace } from '../../src/protocols/geo.ts'
import { chooseNearest, type NearestCandidate, type NearestOptions, type NearestReason } from '../../src/protocols/nearest.ts'
import type { HealthState } from '../../src/protocols/routes.ts'

const ORIGINS: Record<string, NearestCandidate> = {
  fra: { id: 'fra', address: '192.0.2.10', location: { lat: 50.1109, lon: 8.6821, country: 'DE', subdivision: 'HE', region: 'eu-central' }, health: 'healthy', load: 0.2 },
  par: { id: 'par', address: '192.0.2.20', location: { lat: 48.8566, lon: 2.3522, country: 'FR', subdivision: 'IDF' }, health: 'healthy', load: 0.2 },
  nyc: { id: 'nyc', address: '198.51.100.10', location: { lat: 40.7128, lon: -74.0060, country: 'US', subdivision: 'NY' }, health: 'healthy', load: 0.2 },
  sin: { id: 'sin', address: '203.0.113.10', location: { lat: 1.3521, lon: 103.8198, country: 'SG' }, health: 'healthy', load: 0.2 },
  syd: { id: 'syd', address: '2001:db8:1::10', location: { lat: -33.8688, lon: 151.2093, country: 'AU', subdivision: 'NSW' }, health: 'healthy', load: 0.2 }
}

const CLIENTS: Record<string, GeoPlace> = {
  berlin: { lat: 52.52, lon: 13.405, country: 'DE', subdivision: 'BE' },
  madrid: { lat: 40.4168, lon: -3.7038, country: 'ES' },
  lyon: { lat: 45.764, lon: 4.8357, country: 'FR', subdivision: 'ARA' },
  boston: { lat: 42.3601, lon: -71.0589, country: 'US', subdivision: 'MA' },
  saoPaulo: { lat: -23.5505, lon: -46.6333, country: 'BR' },
  tokyo: { lat: 35.6762, lon: 139.6503, country: 'JP' },
  melbourne: { lat: -37.8136, lon: 144.9631, country: 'AU', subdivision: 'VIC' },
  sydney: { lat: -33.87, lon: 151.21, country: 'AU', subdivision: 'NSW' }
}

type Change = Partial<Pick<NearestCandidate, 'health' | 'load' | 'location'>>
const origins = (ids: string[], changes: Record<string, Change> = {}): NearestCandidate[] =>
  ids.map((id) => ({ ...ORIGINS[id]!, ...changes[id] }))
const ALL = Object.keys(ORIGINS)

interface Row {
  name: string
  client: GeoPlace | undefined
  candidates: NearestCandidate[]
  options?: NearestOptions
  order: string[]
  reason?: NearestReason
}

const table: Row[] = [
  { name: 'Berlin client: Frankfurt (same country) first', client: CLIENTS.berlin, candidates: origins(ALL), order: ['fra', 'par', 'nyc'] },
  { name: 'Madrid client (no origin in ES): nearest by distance, Paris', client: CLIENTS.madrid, candidates: origins(ALL), order: ['par', 'fra', 'nyc'] },
  { name: 'Lyon client: Paris (same country, other subdivision)', client: CLIENTS.lyon, candidates: origins(ALL), order: ['par', 'fra', 'nyc'] },
  { name: 'Boston client: New York', client: CLIENTS.boston, candidates: origins(ALL), order: ['nyc', 'par', 'fra'] },
  { name: 'São Paulo client: New York', client: CLIENTS.saoPaulo, candidates: origins(ALL), order: ['nyc', 'par', 'fra'] },
  { name: 'Tokyo client: Singapore, then Sydney', client: CLIENTS.tokyo, candidates: origins(ALL), order: ['sin', 'syd', 'fra'] },
  { name: 'Melbourne client: Sydney (same country)', client: CLIENTS.melbourne, candidates: origins(ALL), order: ['syd', 'sin', 'fra'] },
  { name: 'max 5 lists every usable origin', client: CLIENTS.berlin, candidates: origins(ALL), options: { max: 5 }, order: ['fra', 'par', 'nyc', 'sin', 'syd'] },
  { name: 'max 1', client: CLIENTS.tokyo, candidates: origins(ALL), options: { max: 1 }, order: ['sin'] },
  { name: 'failed nearest origin is excluded', client: CLIENTS.berlin, candidates: origins(ALL, { fra: { health: 'failed' } }), order: ['par', 'nyc', 'sin'] },
  { name: 'failed origins never fill the answer even below max', client: CLIENTS.berlin, candidates: origins(['fra', 'par', 'nyc'], { fra: { health: 'failed' }, nyc: { health: 'failed' } }), order: ['par'] },
  {
    name: 'degraded ranks below a similarly near healthy origin',
    client: CLIENTS.madrid,
    candidates: origins(['fra', 'par'], { par: { health: 'degraded' } }),
    order: ['fra', 'par']
  },
  {
    name: 'degraded in the client\'s own subdivision still beats healthy abroad (0.5 × 1.0 > 0.2)',
    client: CLIENTS.sydney,
    candidates: origins(['syd', 'sin'], { syd: { health: 'degraded' } }),
    order: ['syd', 'sin']
  },
  {
    name: 'degradedPenalty 1 makes degraded equal; health then breaks the tie',
    client: CLIENTS.berlin,
    candidates: origins(['fra', 'par'], { par: { health: 'degraded', location: ORIGINS.fra!.location } }),
    options: { degradedPenalty: 1 },
    order: ['fra', 'par']
  },
  {
    name: 'every origin failed: all of them, ranked, fallback',
    client: CLIENTS.tokyo,
    candidates: origins(ALL, { fra: { health: 'failed' }, par: { health: 'failed' }, nyc: { health: 'failed' }, sin: { health: 'failed' }, syd: { health: 'failed' } }),
    order: ['sin', 'syd', 'fra', 'par', 'nyc'],
    reason: 'all-failed'
  },
  {
    name: 'every origin degraded is not a fallback: the nearest degraded ones',
    client: CLIENTS.tokyo,
    candidates: origins(['sin', 'fra'], { sin: { health: 'degraded' }, fra: { health: 'degraded' } }),
    order: ['sin', 'fra']
  },
  { name: 'no client location: by health, then load, then id', client: undefined, candidates: origins(ALL, { nyc: { load: 0.1 }, fra: { health: 'degraded', load: 0 }, sin: { health: 'failed' } }), order: ['nyc', 'par', 'syd'] },
  { name: 'origin without location scores as unknown (0.01), below every located origin', client: CLIENTS.berlin, candidates: origins(['fra', 'syd'], { fra: { location: undefined } }), order: ['syd', 'fra'] },
  { name: 'loadPenalty: a loaded near origin drops below an idle one', client: CLIENTS.madrid, candidates: origins(['par', 'fra'], { par: { load: 1 }, fra: { load: 0 } }), options: { loadPenalty: 0.5 }, order: ['fra', 'par'] },
  { name: 'without loadPenalty load does not outweigh distance', client: CLIENTS.madrid, candidates: origins(['par', 'fra'], { par: { load: 1 }, fra: { load: 0 } }), order: ['par', 'fra'] },
  { name: 'stepped strategy: Paris and Frankfurt are both 0.6 from Madrid; load breaks the tie', client: CLIENTS.madrid, candidates: origins(['par', 'fra'], { par: { load: 0.3 }, fra: { load: 0.1 } }), options: { strategy: 'stepped' }, order: ['fra', 'par'] },
  { name: 'no candidates, nothing known: empty', client: CLIENTS.berlin, candidates: [], order: [], reason: 'empty' },
  { name: 'no candidates at cold start: the last known set, ranked', client: CLIENTS.boston, candidates: [], options: { lastKnown: origins(['fra', 'nyc']) }, order: ['nyc', 'fra'], reason: 'last-known' },
  { name: 'last known set all failed: all of them', client: CLIENTS.boston, candidates: [], options: { lastKnown: origins(['fra', 'nyc'], { fra: { health: 'failed' }, nyc: { health: 'failed' } }) }, order: ['nyc', 'fra'], reason: 'all-failed' },
  { name: 'live candidates win over the last known set', client: CLIENTS.boston, candidates: origins(['fra']), options: { lastKnown: origins(['nyc']) }, order: ['fra'] }
]

for (const row of table) {
  test(`nearest: ${row.name} → [${row.order.join(', ')}]`, () => {
    const answer = chooseNearest(row.client, row.candidates, row.options)
    const reason = row.reason ?? 'nearest'
    assert.equal(answer.origins.map((origin) => origin.id), row.order)
    assert.is(answer.reason, reason)
    assert.is(answer.fallback, reason === 'all-failed' || reason === 'last-known')
    for (const origin of answer.origins) {
      const source = [...row.candidates, ...(row.options?.lastKnown ?? [])].find((candidate) => candidate.id === origin.id)!
      assert.is(origin.address, source.address, 'each origin keeps its address')
      assert.ok(origin.score > 0 && origin.score <= 1, `score ${origin.score} in (0, 1]`)
    }
    for (let index = 1; index < answer.origins.length; index++) {
      assert.ok(answer.origins[index - 1]!.score >= answer.origins[index]!.score, 'scores never increase down the answer')
    }
  })
}

test('nearest: scores are Formation\'s — Berlin client, Frankfurt origin: (1 − d/20000) × 0.2 + 0.4, degraded × 0.5', () => {
  const [healthy] = chooseNearest(CLIENTS.berlin, origins(['fra'])).origins
  const [degraded] = chooseNearest(CLIENTS.berlin, origins(['fra'], { fra: { health: 'degraded' } })).origins
  assert.ok(Math.abs(healthy!.distanceKm! - 424) < 5, `Berlin–Frankfurt ≈ 424 km, got ${healthy!.distanceKm}`)
  assert.ok(Math.abs(healthy!.score - ((1 - healthy!.distanceKm! / 20_000) * 0.2 + 0.4)) < 1e-12)
  assert.ok(Math.abs(degraded!.score - healthy!.score * 0.5) < 1e-12)
})

test('nearest: exact ties are ordered by id, then address, whatever the input order', () => {
  const twin = (id: string, address: string): NearestCandidate => ({ id, address, location: ORIGINS.fra!.location, health: 'healthy', load: 0.5 })
  const candidates = [twin('b', '192.0.2.2'), twin('a', '192.0.2.9'), twin('B', '192.0.2.1'), twin('a', '192.0.2.3')]
  const expected = ['B 192.0.2.1', 'a 192.0.2.3', 'a 192.0.2.9', 'b 192.0.2.2']
  for (const order of [candidates, [...candidates].reverse()]) {
    const answer = chooseNearest(CLIENTS.berlin, order, { max: 4 })
    assert.equal(answer.origins.map((origin) => `${origin.id} ${origin.address}`), expected)
  }
})

test('nearest: invalid options are a RangeError naming the option', () => {
  for (const options of [{ max: 0 }, { max: 1.5 }, { degradedPenalty: 2 }, { loadPenalty: -0.1 }, { degradedPenalty: Number.NaN }]) {
    assert.throws(() => chooseNearest(CLIENTS.berlin, origins(ALL), options), (error: unknown) =>
      error instanceof RangeError && Object.keys(options).every((key) => error.message.includes(key)))
  }
})

test('nearest: a peer\'s out-of-range load is clamped, never reorders by NaN', () => {
  const answer = chooseNearest(undefined, origins(['fra', 'par'], { fra: { load: Number.NaN }, par: { load: 7 } }), { loadPenalty: 1 })
  assert.equal(answer.origins.map((origin) => [origin.id, origin.load]), [['fra', 1], ['par', 1]])
})

const health = fc.constantFrom<HealthState>('healthy', 'degraded', 'failed')
const candidateArbitrary = fc.record({
  id: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'),
  address: fc.constantFrom('192.0.2.1', '192.0.2.2', '2001:db8::1'),
  location: fc.option(fc.record({ lat: fc.double({ min: -90, max: 90, noNaN: true }), lon: fc.double({ min: -180, max: 180, noNaN: true }), country: fc.constantFrom('DE', 'US', 'SG') }), { nil: undefined }),
  health,
  load: fc.double({ min: 0, max: 1, noNaN: true })
})
const clientArbitrary = fc.option(fc.record({ lat: fc.double({ min: -90, max: 90, noNaN: true }), lon: fc.double({ min: -180, max: 180, noNaN: true }), country: fc.constantFrom('DE', 'US', 'FR') }), { nil: undefined })

test('nearest: property — never empty when anything is known, no failed origin unless all failed, max respected, input order irrelevant', () => {
  fc.assert(fc.property(clientArbitrary, fc.array(candidateArbitrary, { maxLength: 8 }), fc.integer({ min: 1, max: 5 }), (client, candidates, max) => {
    const answer = chooseNearest(client, candidates, { max })
    const reversed = chooseNearest(client, [...candidates].reverse(), { max })
    assert.equal(reversed, answer)
    if (candidates.length === 0) return answer.origins.length === 0 && answer.reason === 'empty'
    const usable = candidates.filter((candidate) => candidate.health !== 'failed')
    if (usable.length === 0) return answer.fallback && answer.origins.length === candidates.length
    return !answer.fallback && answer.origins.length === Math.min(max, usable.length) && answer.origins.every((origin) => origin.health !== 'failed')
  }))
})

test.run()
