import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { activeOrigins, type TierCandidate } from '../../src/protocols/probe-tiers.ts'

const c = (origin: string, rttMs: number | undefined, failed = false): TierCandidate => ({ origin, rttMs, failed })
const sorted = (set: Set<string>): string[] => [...set].sort()

test('probe tiers: the two nearest usable origins of a prefix are active, the rest standby', () => {
  const prefix = [c('far', 250), c('near', 10), c('mid', 80), c('next', 40), c('farther', 300)]
  assert.equal(sorted(activeOrigins([prefix], 2)), ['near', 'next'])
  assert.equal(sorted(activeOrigins([prefix], 1)), ['near'])
  assert.equal(sorted(activeOrigins([prefix], 9)), ['far', 'farther', 'mid', 'near', 'next'])
})

test('probe tiers: a failed nearer origin stays active (its recovery is seen at once) and does not count', () => {
  const prefix = [c('near', 10, true), c('next', 40), c('mid', 80, true), c('far', 250), c('farther', 300)]
  assert.equal(sorted(activeOrigins([prefix], 2)), ['far', 'mid', 'near', 'next'])
})

test('probe tiers: unmeasured origins are always active; an origin active for one prefix is active', () => {
  const api = [c('a', 10), c('b', 20), c('c', 30), c('new', undefined)]
  const web = [c('c', 5), c('d', 6), c('a', 100)]
  assert.equal(sorted(activeOrigins([api, web], 2)), ['a', 'c', 'd', 'new'])
  assert.equal(sorted(activeOrigins([[c('x', undefined), c('y', undefined), c('z', undefined)]], 1)), ['x', 'y', 'z'])
  assert.equal(sorted(activeOrigins([], 2)), [])
})

test('probe tiers: equal RTTs are broken by origin id, whatever the input order', () => {
  const one = activeOrigins([[c('b', 10), c('a', 10), c('c', 10)]], 1)
  const two = activeOrigins([[c('c', 10), c('b', 10), c('a', 10)]], 1)
  assert.equal(sorted(one), ['a'])
  assert.equal(sorted(two), ['a'])
})

test.run()
