import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fc from 'fast-check'
import {
  bestPath, compareCandidates, comparePaths, directPath, isUsable, localPath, pathContains, relayPath, selectBestPath
} from '../../src/protocols/best-path.ts'
import type { HealthState, RouteCandidate, RoutePath, SelectionReason } from '../../src/protocols/routes.ts'

interface Spec { origin: string, health?: HealthState, preference?: number, load?: number, costMs?: number | null, via?: string }

/** costMs null = unreachable; `via` makes a relay path. */
function candidate ({ origin, health = 'healthy', preference = 100, load = 0, costMs = 10, via }: Spec): RouteCandidate {
  const path: RoutePath | undefined = costMs === null ? undefined : { hops: via === undefined ? [origin] : [via, origin], costMs }
  return { origin, seq: 1, attributes: { health, preference, load, ttlMs: 30_000 }, path }
}

interface Row {
  name: string
  candidates: Spec[]
  origin: string | undefined
  reason: SelectionReason
  nextHop?: string
  costMs?: number
  order?: string[]
}

const table: Row[] = [
  { name: 'no candidates', candidates: [], origin: undefined, reason: 'no-usable-origin' },
  { name: 'one failed candidate', candidates: [{ origin: 'a', health: 'failed' }], origin: undefined, reason: 'no-usable-origin', order: ['a'] },
  { name: 'one unreachable candidate', candidates: [{ origin: 'a', costMs: null }], origin: undefined, reason: 'no-usable-origin' },
  { name: 'only usable candidate first, then unusable ones by the same criteria', candidates: [{ origin: 'a', health: 'failed', costMs: 1 }, { origin: 'b', costMs: 90 }, { origin: 'c', costMs: null, preference: 1000 }], origin: 'b', reason: 'only-candidate', order: ['b', 'c', 'a'] },
  { name: 'single degraded candidate is still used', candidates: [{ origin: 'a', health: 'degraded' }], origin: 'a', reason: 'only-candidate' },
  { name: 'healthy beats degraded despite higher preference and lower cost', candidates: [{ origin: 'a', health: 'degraded', preference: 1000, costMs: 1 }, { origin: 'b', costMs: 200 }], origin: 'b', reason: 'health', order: ['b', 'a'] },
  { name: 'higher preference beats lower cost', candidates: [{ origin: 'a', preference: 100, costMs: 1 }, { origin: 'b', preference: 200, costMs: 50 }], origin: 'b', reason: 'preference' },
  { name: 'lower cost wins at equal preference', candidates: [{ origin: 'a', costMs: 30 }, { origin: 'b', costMs: 20 }, { origin: 'c', costMs: 25 }], origin: 'b', reason: 'cost', order: ['b', 'c', 'a'] },
  { name: 'lower load wins at equal cost (reported as cost)', candidates: [{ origin: 'a', costMs: 20, load: 0.9 }, { origin: 'b', costMs: 20, load: 0.1 }], origin: 'b', reason: 'cost' },
  { name: 'cost beats load', candidates: [{ origin: 'a', costMs: 19, load: 0.9 }, { origin: 'b', costMs: 20, load: 0 }], origin: 'a', reason: 'cost' },
  { name: 'exact tie goes to the lowest origin id (code-unit order)', candidates: [{ origin: 'b' }, { origin: 'B' }, { origin: 'a' }], origin: 'B', reason: 'tie-break', order: ['B', 'a', 'b'] },
  { name: 'reason compares the winner with the runner-up only', candidates: [{ origin: 'a', health: 'degraded' }, { origin: 'b', costMs: 5 }, { origin: 'c', costMs: 6 }], origin: 'b', reason: 'cost', order: ['b', 'c', 'a'] },
  { name: 'failed and unreachable never win, whatever their other attributes', candidates: [{ origin: 'a', health: 'failed', preference: 1000, costMs: 0 }, { origin: 'b', costMs: null, preference: 1000 }, { origin: 'c', health: 'degraded', preference: 0, costMs: 500 }], origin: 'c', reason: 'only-candidate' },
  { name: 'relay path: next hop is the relay, cost is the whole path', candidates: [{ origin: 'a', via: 'r', costMs: 70 }, { origin: 'b', costMs: 80 }], origin: 'a', reason: 'cost', nextHop: 'r', costMs: 70 },
  { name: 'direct path: next hop is the origin', candidates: [{ origin: 'a', costMs: 7 }], origin: 'a', reason: 'only-candidate', nextHop: 'a', costMs: 7 }
]

for (const row of table) {
  test(`best-path: ${row.name} → ${row.origin ?? 'none'} (${row.reason})`, () => {
    const entry = selectBestPath('10.42.255.1/32', 'api', row.candidates.map(candidate))
    assert.is(entry.prefix, '10.42.255.1/32')
    assert.is(entry.service, 'api')
    assert.is(entry.origin, row.origin)
    assert.is(entry.reason, row.reason)
    assert.is(entry.candidates.length, row.candidates.length)
    if (row.origin === undefined) {
      assert.is(entry.nextHop, undefined)
      assert.is(entry.costMs, undefined)
    } else {
      assert.is(entry.candidates[0]!.origin, row.origin, 'the chosen origin is listed first')
      assert.is(entry.nextHop, row.nextHop ?? entry.candidates[0]!.path!.hops[0])
      if (row.costMs !== undefined) assert.is(entry.costMs, row.costMs)
    }
    if (row.order !== undefined) assert.equal(entry.candidates.map((c) => c.origin), row.order)
  })
}

test('best-path: selectBestPath does not reorder the caller\'s array', () => {
  const candidates = [candidate({ origin: 'b', costMs: 1 }), candidate({ origin: 'a', costMs: 2 })]
  selectBestPath('p', 's', candidates)
  assert.equal(candidates.map((c) => c.origin), ['b', 'a'])
})

test('best-path: isUsable needs a path and health other than failed', () => {
  assert.ok(isUsable(candidate({ origin: 'a' })))
  assert.ok(isUsable(candidate({ origin: 'a', health: 'degraded' })))
  assert.not.ok(isUsable(candidate({ origin: 'a', health: 'failed' })))
  assert.not.ok(isUsable(candidate({ origin: 'a', costMs: null })))
})

const specArb = fc.record({
  origin: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'),
  health: fc.constantFrom<HealthState>('healthy', 'degraded', 'failed'),
  preference: fc.constantFrom(0, 100, 200),
  load: fc.constantFrom(0, 0.5, 1),
  costMs: fc.option(fc.constantFrom(0, 5, 10, 20), { nil: null }),
  via: fc.option(fc.constantFrom('r1', 'r2'), { nil: undefined })
}, { requiredKeys: ['origin'] })
const candidatesArb = fc.uniqueArray(specArb, { selector: (spec) => spec.origin, maxLength: 8 }).map((specs) => specs.map(candidate))

test('best-path: property — the same candidates in any order give the same entry', () => {
  fc.assert(fc.property(candidatesArb.chain((list) => fc.tuple(fc.constant(list), fc.shuffledSubarray(list, { minLength: list.length, maxLength: list.length }))), ([list, shuffled]) => {
    assert.equal(selectBestPath('p', 's', shuffled), selectBestPath('p', 's', list))
  }), { seed: 21, numRuns: 1000 })
})

test('best-path: property — the winner is usable and no usable candidate beats it on (health, preference, cost, load, origin)', () => {
  const rank = { healthy: 0, degraded: 1, failed: 2 }
  const key = (c: RouteCandidate): Array<number | string> => [rank[c.attributes.health], -c.attributes.preference, c.path!.costMs, c.attributes.load, c.origin]
  const less = (x: Array<number | string>, y: Array<number | string>): boolean => {
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i]! < y[i]!
    return false
  }
  fc.assert(fc.property(candidatesArb, (list) => {
    const entry = selectBestPath('p', 's', list)
    const usable = list.filter(isUsable)
    if (usable.length === 0) { assert.is(entry.origin, undefined); return }
    const winner = list.find((c) => c.origin === entry.origin)!
    assert.ok(isUsable(winner))
    for (const other of usable) assert.not.ok(less(key(other), key(winner)), `${other.origin} should have won over ${winner.origin}`)
    assert.is(entry.reason, usable.length === 1 ? 'only-candidate' : entry.reason)
    assert.ok(usable.length === 1 || entry.reason !== 'only-candidate')
  }), { seed: 22, numRuns: 1000 })
})

test('best-path: property — compareCandidates is antisymmetric and transitive', () => {
  fc.assert(fc.property(candidatesArb, (list) => {
    for (const a of list) {
      for (const b of list) {
        assert.is(Math.sign(compareCandidates(a, b)), -Math.sign(compareCandidates(b, a)) || 0)
        if (a !== b) assert.is.not(compareCandidates(a, b), 0)
        for (const c of list) {
          if (compareCandidates(a, b) < 0 && compareCandidates(b, c) < 0) assert.ok(compareCandidates(a, c) < 0)
        }
      }
    }
  }), { seed: 23, numRuns: 300 })
})

// --- paths ----------------------------------------------------------------------------------------

const hysteresisCases: Array<[string, Spec[], string | undefined, string, SelectionReason]> = [
  ['incumbent 5 % costlier is kept', [{ origin: 'a', costMs: 100 }, { origin: 'b', costMs: 105 }], 'b', 'b', 'hysteresis'],
  ['incumbent 10 % costlier is kept', [{ origin: 'a', costMs: 100 }, { origin: 'b', costMs: 110 }], 'b', 'b', 'hysteresis'],
  ['incumbent 11 % costlier loses', [{ origin: 'a', costMs: 100 }, { origin: 'b', costMs: 111 }], 'b', 'a', 'cost'],
  ['sub-millisecond noise keeps the incumbent', [{ origin: 'a', costMs: 1 }, { origin: 'b', costMs: 1.4 }], 'b', 'b', 'hysteresis'],
  ['a degraded incumbent is never kept', [{ origin: 'a', costMs: 100 }, { origin: 'b', costMs: 90, health: 'degraded' }], 'b', 'a', 'health'],
  ['a less preferred incumbent is never kept', [{ origin: 'a', costMs: 100, preference: 200 }, { origin: 'b', costMs: 100 }], 'b', 'a', 'preference'],
  ['an unreachable incumbent is never kept', [{ origin: 'a', costMs: 100 }, { origin: 'b', costMs: null }], 'b', 'a', 'only-candidate'],
  ['no incumbent: plain best', [{ origin: 'a', costMs: 100 }, { origin: 'b', costMs: 105 }], undefined, 'a', 'cost']
]

for (const [label, specs, incumbent, expected, reason] of hysteresisCases) {
  test(`best-path hysteresis: ${label}`, () => {
    const entry = selectBestPath('10.0.0.1/32', 'api', specs.map(candidate), incumbent)
    assert.is(entry.origin, expected)
    assert.is(entry.reason, reason)
  })
}

test('best-path: directPath and localPath', () => {
  assert.equal(directPath('o', 12), { hops: ['o'], costMs: 12 })
  assert.equal(localPath('me'), { hops: ['me'], costMs: 0 })
})

const relayRows: Array<[name: string, self: string, relay: string, relayRttMs: number, origin: string, rttMs: number, expected: RoutePath | undefined]> = [
  ['ordinary relay adds both legs', 'me', 'r', 10, 'o', 25, { hops: ['r', 'o'], costMs: 35 }],
  ['origin is this node: loop', 'me', 'r', 10, 'me', 25, undefined],
  ['relay is this node: loop', 'me', 'me', 0, 'o', 25, undefined],
  ['relay reports itself: not a relay path', 'me', 'r', 10, 'r', 0, undefined]
]

for (const [name, self, relay, relayRttMs, origin, rttMs, expected] of relayRows) {
  test(`best-path: relayPath, ${name}`, () => {
    const path = relayPath(self, relay, relayRttMs, { origin, rttMs })
    assert.equal(path, expected)
    if (path !== undefined) assert.not.ok(pathContains(path, self))
  })
}

test('best-path: bestPath takes min cost, then direct over relayed, then lowest hop ids; undefined when none', () => {
  assert.is(bestPath([]), undefined)
  assert.is(bestPath([undefined, undefined]), undefined)
  const direct = directPath('o', 30)
  const viaA = relayPath('me', 'a', 10, { origin: 'o', rttMs: 20 })!
  const viaB = relayPath('me', 'b', 5, { origin: 'o', rttMs: 25 })!
  const cheaper = relayPath('me', 'c', 5, { origin: 'o', rttMs: 5 })!
  assert.equal(bestPath([viaB, viaA, direct]), direct)
  assert.equal(bestPath([viaB, viaA]), viaA)
  assert.equal(bestPath([viaB, undefined, viaA]), viaA)
  assert.equal(bestPath([direct, cheaper]), cheaper)
  assert.is(comparePaths(direct, direct), 0)
  assert.ok(comparePaths(direct, viaA) < 0 && comparePaths(viaA, direct) > 0)
})

test.run()
