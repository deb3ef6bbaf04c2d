import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { RouteEntry } from '../../src/protocols/routes.ts'
import { findRouteLoops, percentiles, tallyOptimality } from '../../simulations/checkers.ts'
import { defaultLatencyModel } from '../../simulations/latency.ts'

const PREFIX = '10.42.255.1/32'

/** A route at `node` to `origin` along `hops` (after the node). */
function route (origin: string | undefined, hops: string[] = origin === undefined ? [] : [origin]): RouteEntry {
  return {
    prefix: PREFIX,
    service: 'api',
    origin,
    nextHop: hops[0],
    costMs: origin === undefined ? undefined : 10,
    reason: origin === undefined ? 'no-usable-origin' : 'cost',
    candidates: origin === undefined ? [] : [{ origin, seq: 1, attributes: { health: 'healthy', preference: 100, load: 0, ttlMs: 15_000 }, path: { hops, costMs: 10 } }]
  }
}

const loopCases: Array<[string, Record<string, RouteEntry | undefined>, string[]]> = [
  ['direct routes', { a: route('o'), b: route('o'), o: route('o', ['o']) }, []],
  ['a relay that routes directly', { a: route('o', ['b', 'o']), b: route('o'), o: route('o', ['o']) }, []],
  ['no route anywhere', { a: route(undefined), b: undefined }, []],
  ['relay to a node with no route', { a: route('o', ['b', 'o']), b: route(undefined) }, []],
  ['two relays pointing at each other', { a: route('o', ['b', 'o']), b: route('o', ['a', 'o']) }, ['a', 'b']],
  ['a three-node forwarding cycle', { a: route('o', ['b', 'o']), b: route('p', ['c', 'p']), c: route('q', ['a', 'q']) }, ['a', 'b', 'c']],
  ['a path that revisits a node', { a: route('o', ['b', 'b', 'o']), b: route('o') }, ['a']],
  ['a path through the node itself', { a: route('o', ['a', 'o']) }, ['a']]
]

for (const [label, table, looping] of loopCases) {
  test(`checkers: loops — ${label}: ${looping.length === 0 ? 'none' : looping.join(', ')}`, () => {
    const found = findRouteLoops(PREFIX, new Map(Object.entries(table)), 1234)
    assert.equal(found.map((line) => line.split(' ')[1]), looping)
    for (const line of found) assert.match(line, /^t=1234 /)
  })
}

const places: Record<string, { lat: number, lon: number }> = {
  fra: { lat: 50.11, lon: 8.68 },
  par: { lat: 48.86, lon: 2.35 },
  nyc: { lat: 40.71, lon: -74.01 },
  ams: { lat: 52.37, lon: 4.9 },
  /** Between Frankfurt (235 km) and Paris (244 km): Paris is 2.5 % worse. */
  mid: { lat: 49.4, lon: 5.6 }
}

const optimalityCases: Array<[string, Record<string, string | undefined>, string[], number, number]> = [
  ['everyone on the nearest origin', { ams: 'fra', nyc: 'nyc' }, ['fra', 'nyc'], 2, 2],
  ['an origin routes to itself at 0 ms', { fra: 'fra', nyc: 'nyc' }, ['fra', 'nyc'], 2, 2],
  ['an origin routing elsewhere is not optimal', { fra: 'par' }, ['fra', 'par'], 1, 0],
  ['within 10 % of the best counts (Paris 2.5 % worse than Frankfurt)', { mid: 'par' }, ['fra', 'par'], 1, 1],
  ['beyond 10 % does not (Amsterdam: Paris 14 % worse than Frankfurt)', { ams: 'par' }, ['fra', 'par'], 1, 0],
  ['across the Atlantic is not optimal', { ams: 'nyc' }, ['fra', 'nyc'], 1, 0],
  ['no route while an origin is healthy', { ams: undefined }, ['fra'], 1, 0],
  ['a route to an origin that is not healthy', { ams: 'fra' }, ['nyc'], 1, 0],
  ['no healthy origin: nothing to judge', { ams: undefined }, [], 0, 0]
]

for (const [label, chosen, healthy, pairs, optimal] of optimalityCases) {
  test(`checkers: optimality — ${label}: ${optimal}/${pairs}`, () => {
    const tally = tallyOptimality(PREFIX, { chosen: new Map(Object.entries(chosen)), healthyOrigins: healthy, where: (node) => places[node]!, model: defaultLatencyModel }, 0)
    assert.is(tally.pairs, pairs)
    assert.is(tally.optimal, optimal)
    assert.is(tally.misses.length, pairs - optimal)
  })
}

const percentileCases: Array<[number[], { samples: number, p50Ms: number | null, p99Ms: number | null, maxMs: number | null }]> = [
  [[], { samples: 0, p50Ms: null, p99Ms: null, maxMs: null }],
  [[5], { samples: 1, p50Ms: 5, p99Ms: 5, maxMs: 5 }],
  [[4, 1, 3, 2], { samples: 4, p50Ms: 2, p99Ms: 4, maxMs: 4 }],
  [Array.from({ length: 200 }, (_, i) => i + 1), { samples: 200, p50Ms: 100, p99Ms: 198, maxMs: 200 }],
  [[100, Infinity], { samples: 2, p50Ms: 100, p99Ms: null, maxMs: null }]
]

for (const [values, expected] of percentileCases) {
  test(`checkers: nearest-rank percentiles of ${values.length} values${values.includes(Infinity) ? ' with one never converged' : ''}`, () => {
    assert.equal(percentiles(values), expected)
  })
}

test.run()
