import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { proxyOrder } from '../../src/protocols/proxy-order.ts'
import type { HealthState, RouteCandidate, RouteEntry } from '../../src/protocols/routes.ts'

function candidate (origin: string, costMs: number | undefined, health: HealthState = 'healthy', preference = 100): RouteCandidate {
  return { origin, seq: 1, attributes: { health, preference, load: 0, ttlMs: 15_000 }, path: costMs === undefined ? undefined : { hops: [origin], costMs } }
}
function entry (chosen: string | undefined, candidates: RouteCandidate[]): RouteEntry {
  return { prefix: '10.42.255.1/32', service: 'web', origin: chosen, nextHop: chosen, costMs: 1, reason: 'cost', candidates }
}

const cases: Array<{ name: string, route: RouteEntry | undefined, active?: Record<string, number>, limit?: number, want: string[] }> = [
  { name: 'no route: nothing to try', route: undefined, want: [] },
  { name: 'chosen first, then the rest by cost', route: entry('b', [candidate('d', 40), candidate('c', 20), candidate('b', 5)]), want: ['b', 'c', 'd'] },
  { name: 'the route table chose by hysteresis a costlier origin: it still goes first', route: entry('c', [candidate('b', 5), candidate('c', 6)]), want: ['c', 'b'] },
  { name: 'failed and unreachable origins are never tried', route: entry('b', [candidate('b', 5), candidate('c', 20, 'failed'), candidate('d', undefined)]), want: ['b'] },
  { name: 'healthy before degraded, preference before cost', route: entry(undefined, [candidate('b', 5, 'degraded'), candidate('c', 50, 'healthy', 100), candidate('d', 60, 'healthy', 200)]), want: ['d', 'c', 'b'] },
  { name: 'an origin at its connection limit goes last', route: entry('b', [candidate('b', 5), candidate('c', 20), candidate('d', 40)]), active: { b: 2, c: 1 }, limit: 2, want: ['c', 'd', 'b'] }
]

for (const { name, route, active, limit, want } of cases) {
  test(`proxy order: ${name}`, () => {
    assert.equal(proxyOrder(route, { active: new Map(Object.entries(active ?? {})), ...(limit === undefined ? {} : { maxConnectionsPerOrigin: limit }) }), want)
  })
}

test.run()
