// Formation's relay rule as a pure function of failure times: 3 direct-path failures within 300 s
// send an origin to its relays for the hold-down; older failures fall out of the window.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { DirectFallback, defaultDirectFallbackPolicy, validateDirectFallbackPolicy } from '../../src/protocols/direct-fallback.ts'

const S = 1000

test('direct fallback: the defaults are Formation\'s (3 failures in 300 s), relayed for 300 s', () => {
  assert.equal(defaultDirectFallbackPolicy, { failures: 3, windowMs: 300 * S, holdDownMs: 300 * S })
})

const table: Array<{ name: string, failuresAt: number[], trippedAt: number | undefined }> = [
  { name: 'three failures in 20 s trip at the third', failuresAt: [0, 10 * S, 20 * S], trippedAt: 20 * S },
  { name: 'two failures never trip', failuresAt: [0, 10 * S], trippedAt: undefined },
  { name: 'three failures spread over 300 s exactly do not trip (the window is half-open)', failuresAt: [0, 150 * S, 300 * S], trippedAt: undefined },
  { name: 'the oldest failure falls out: trips at the fourth', failuresAt: [0, 200 * S, 310 * S, 320 * S], trippedAt: 320 * S },
  { name: 'failures 200 s apart never trip', failuresAt: [0, 200 * S, 400 * S, 600 * S, 800 * S], trippedAt: undefined }
]

for (const row of table) {
  test(`direct fallback (3 in 300 s): ${row.name}`, () => {
    const fallback = new DirectFallback()
    let trippedAt: number | undefined
    for (const atMs of row.failuresAt) {
      const until = fallback.recordFailure('o', atMs)
      if (until !== undefined) {
        assert.is(trippedAt, undefined, 'trips once')
        trippedAt = atMs
        assert.is(until, atMs + 300 * S)
      }
    }
    assert.is(trippedAt, row.trippedAt)
  })
}

test('direct fallback: relayed for the hold-down only, failures meanwhile do not extend it, then a clean slate', () => {
  const fallback = new DirectFallback({ failures: 3, windowMs: 300 * S, holdDownMs: 60 * S })
  for (const atMs of [0, 1 * S]) assert.is(fallback.recordFailure('o', atMs), undefined)
  assert.is(fallback.failureCount('o', 1 * S), 2)
  assert.is(fallback.recordFailure('o', 2 * S), 62 * S)
  assert.ok(fallback.isRelayed('o', 2 * S))
  assert.ok(fallback.isRelayed('o', 62 * S - 1))
  assert.is(fallback.recordFailure('o', 30 * S), undefined, 'a failure while relayed changes nothing')
  assert.not.ok(fallback.isRelayed('o', 62 * S))
  assert.not.ok(fallback.isRelayed('other', 2 * S), 'per origin')
  // After the hold-down the count starts again from zero: two more failures do not trip it.
  assert.is(fallback.recordFailure('o', 63 * S), undefined)
  assert.is(fallback.recordFailure('o', 64 * S), undefined)
  assert.is(fallback.recordFailure('o', 65 * S), 125 * S)
  fallback.forget('o')
  assert.not.ok(fallback.isRelayed('o', 66 * S))
})

test('direct fallback: a bad policy is rejected naming the field', () => {
  assert.throws(() => validateDirectFallbackPolicy({ failures: 0, windowMs: 1, holdDownMs: 1 }), /directFallback\.failures/)
  assert.throws(() => validateDirectFallbackPolicy({ failures: 3, windowMs: -1, holdDownMs: 1 }), /directFallback\.windowMs/)
  assert.throws(() => new DirectFallback({ failures: 3, windowMs: 1, holdDownMs: Number.NaN }), /directFallback\.holdDownMs/)
})

test.run()
