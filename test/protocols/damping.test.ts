import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fc from 'fast-check'
import {
  checkDampingPolicy, decayPenalty, defaultDampingPolicy as policy, DampingPolicyError, initialDampingState,
  isSuppressed, penaltyCeiling, recordFlap, reuseAtMs, type DampingState
} from '../../src/protocols/damping.ts'

const close = (actual: number, expected: number, tolerance = 1e-6): void =>
  assert.ok(Math.abs(actual - expected) <= tolerance, `${actual} should be ${expected} ± ${tolerance}`)

const decayTable: Array<[number, number, number]> = [
  // [penalty, elapsedMs, expected] with half-life 60 s
  [1000, 0, 1000],
  [1000, 60_000, 500],
  [1000, 120_000, 250],
  [6000, 180_000, 750],
  [12_000, 240_000, 750],
  [1000, 30_000, 1000 / Math.SQRT2],
  [1000, -5000, 1000]
]
for (const [penalty, elapsedMs, expected] of decayTable) {
  test(`damping: decay ${penalty} over ${elapsedMs} ms is ${expected.toFixed(1)}`, () => {
    close(decayPenalty(penalty, elapsedMs, 60_000), expected)
  })
}

test('damping: ceiling is reuse × 2^(maxSuppress / halfLife) = 12000, as RFC 2439 defaults give', () => {
  close(penaltyCeiling(policy), 12_000)
  close(penaltyCeiling({ ...policy, halfLifeMs: 15 * 60_000, maxSuppressMs: 60 * 60_000 }), 12_000)
})

function flapsAt (times: number[]): DampingState {
  return times.reduce((state, t) => recordFlap(state, t, policy), initialDampingState)
}

test('damping: one clean failover (one flap) is never suppressed', () => {
  const state = flapsAt([10_000])
  assert.is(state.penalty, 1000)
  assert.is(state.flaps, 1)
  assert.not.ok(isSuppressed(state, 10_000, policy))
})

test('damping: six flaps in one instant reach 6000 but do not exceed it; the seventh suppresses', () => {
  const six = flapsAt([0, 0, 0, 0, 0, 0])
  assert.is(six.penalty, 6000)
  assert.not.ok(isSuppressed(six, 0, policy))
  assert.ok(isSuppressed(recordFlap(six, 0, policy), 0, policy))
})

// [flap period ms, flaps until suppressed]
const flapTable: Array<[number, number]> = [[1000, 7], [2000, 7], [4000, 7], [5000, 8]]
for (const [periodMs, expected] of flapTable) {
  test(`damping: flapping every ${periodMs} ms is suppressed on flap ${expected}`, () => {
    let state = initialDampingState
    let n = 0
    while (!state.suppressed && n < 100) state = recordFlap(state, n++ * periodMs, policy)
    assert.is(n, expected)
  })
}

test('damping: flapping once a minute is never suppressed (steady state 2000 < 6000)', () => {
  const state = flapsAt(Array.from({ length: 100 }, (_, i) => i * 60_000))
  assert.not.ok(state.suppressed)
  close(state.penalty, 2000, 1)
})

test('damping: penalty is capped at the ceiling, so suppression lasts at most maxSuppress after the last flap', () => {
  const state = flapsAt(Array.from({ length: 50 }, (_, i) => i * 100))
  close(state.penalty, 12_000)
  const lastFlapMs = 49 * 100
  assert.is(reuseAtMs(state, policy), lastFlapMs + 240_000)
  assert.ok(isSuppressed(state, lastFlapMs + 239_999, policy))
  assert.not.ok(isSuppressed(state, lastFlapMs + 240_000, policy))
})

test('damping: suppressed at 6000+ is reused after decaying to 750 (three half-lives), not at 6000', () => {
  const state = flapsAt([0, 0, 0, 0, 0, 0, 0]) // 7000
  const reuse = reuseAtMs(state, policy)
  close(reuse, 60_000 * Math.log2(7000 / 750), 1)
  // Hysteresis: still suppressed once the penalty has decayed below 6000 but not to 750.
  assert.ok(isSuppressed(state, 60_000, policy))
  assert.ok(isSuppressed(state, reuse - 1, policy))
  assert.not.ok(isSuppressed(state, reuse, policy))
})

test('damping: reuseAtMs of a state that is not suppressed is its update time', () => {
  assert.is(reuseAtMs(flapsAt([5000]), policy), 5000)
})

test('damping: a flap while suppressed pushes reuse later', () => {
  const state = flapsAt([0, 0, 0, 0, 0, 0, 0])
  const again = recordFlap(state, 30_000, policy)
  assert.ok(reuseAtMs(again, policy) > reuseAtMs(state, policy))
})

test('damping: properties: reuse time is exact to the ms and never beyond maxSuppress after the last flap', () => {
  fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 30_000 }), { minLength: 1, maxLength: 40 }), (gaps) => {
    let t = 0
    let state = initialDampingState
    for (const gap of gaps) { t += gap; state = recordFlap(state, t, policy) }
    assert.ok(state.penalty <= penaltyCeiling(policy) + 1e-9)
    if (!state.suppressed) return
    const reuse = reuseAtMs(state, policy)
    assert.ok(reuse <= t + policy.maxSuppressMs + 1)
    assert.ok(isSuppressed(state, reuse - 1, policy))
    assert.not.ok(isSuppressed(state, reuse, policy))
  }))
})

test('damping: policy check names the bad field', () => {
  assert.throws(() => checkDampingPolicy({ ...policy, halfLifeMs: 0 }), (error: Error) => error instanceof DampingPolicyError && /halfLifeMs/.test(error.message))
  assert.throws(() => checkDampingPolicy({ ...policy, reuseThreshold: 7000 }), /reuseThreshold/)
  assert.throws(() => checkDampingPolicy({ ...policy, maxSuppressMs: 60_000 }), /maxSuppressMs/)
  checkDampingPolicy(policy)
})

test.run()
