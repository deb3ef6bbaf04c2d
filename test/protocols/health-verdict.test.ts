import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fc from 'fast-check'
import {
  checkVerdictPolicy, initialVerdictState, nextVerdict, VerdictPolicyError,
  type VerdictPolicy, type VerdictProbeResult, type VerdictState
} from '../../src/protocols/health-verdict.ts'

const policy: VerdictPolicy = { rise: 3, fall: 3, degradedLatencyMs: 200 }
const ok: VerdictProbeResult = { ok: true, latencyMs: 10 }
const slow: VerdictProbeResult = { ok: true, latencyMs: 250 }
const fail: VerdictProbeResult = { ok: false, latencyMs: 0 }
const S = (verdict: VerdictState['verdict'], consecutiveOk = 0, consecutiveFail = 0): VerdictState => ({ verdict, consecutiveOk, consecutiveFail })

// One step: [name, from, result, to]
const steps: Array<[string, VerdictState, VerdictProbeResult, VerdictState]> = [
  ['unknown, first ok counts towards rise', S('unknown'), ok, S('unknown', 1, 0)],
  ['unknown, rise-th ok is healthy', S('unknown', 2), ok, S('healthy', 3, 0)],
  ['unknown, rise-th answer slow is degraded', S('unknown', 2), slow, S('degraded', 3, 0)],
  ['unknown, slow answers count towards rise', S('unknown', 1), slow, S('unknown', 2, 0)],
  ['unknown, a failure resets the ok streak', S('unknown', 2), fail, S('unknown', 0, 1)],
  ['unknown, fall-th failure is failed', S('unknown', 0, 2), fail, S('failed', 0, 3)],
  ['healthy, ok stays healthy', S('healthy', 3), ok, S('healthy', 4, 0)],
  ['healthy, first failure degrades', S('healthy', 7), fail, S('degraded', 0, 1)],
  ['healthy, slow answer degrades (soft signal)', S('healthy', 7), slow, S('degraded', 0, 0)],
  ['degraded, second failure stays degraded', S('degraded', 0, 1), fail, S('degraded', 0, 2)],
  ['degraded, fall-th failure counting the first is failed', S('degraded', 0, 2), fail, S('failed', 0, 3)],
  ['degraded, ok counts towards rise and clears failures', S('degraded', 0, 2), ok, S('degraded', 1, 0)],
  ['degraded, rise-th fast ok is healthy', S('degraded', 2), ok, S('healthy', 3, 0)],
  ['degraded, slow answer breaks both streaks', S('degraded', 2, 0), slow, S('degraded', 0, 0)],
  ['degraded, slow answer clears failures', S('degraded', 0, 2), slow, S('degraded', 0, 0)],
  ['failed, failure stays failed', S('failed', 0, 3), fail, S('failed', 0, 4)],
  ['failed, ok counts towards rise', S('failed', 0, 9), ok, S('failed', 1, 0)],
  ['failed, rise-th ok is healthy directly', S('failed', 2), ok, S('healthy', 3, 0)],
  ['failed, rise-th answer slow is degraded', S('failed', 2), slow, S('degraded', 3, 0)]
]

for (const [name, from, result, to] of steps) {
  test(`health verdict: ${name}`, () => {
    assert.equal(nextVerdict(from, result, policy), to)
  })
}

test('health verdict: without degradedLatencyMs a slow answer is just ok', () => {
  assert.equal(nextVerdict(S('healthy', 3), { ok: true, latencyMs: 60_000 }, { rise: 3, fall: 3 }), S('healthy', 4, 0))
})

test('health verdict: fall 1 fails a healthy target on its first failure', () => {
  assert.equal(nextVerdict(S('healthy', 3), fail, { rise: 1, fall: 1 }), S('failed', 0, 1))
})

// Sequences from a fresh target: [results, verdict after each]
const sequences: Array<[string, string, string]> = [
  ['comes up after rise 3', 'ooo', 'uuh'],
  ['dies: degraded at once, failed on the 3rd failure', 'oooxxx', 'uuhddf'],
  ['one lost probe is only a de-preference', 'oooxooo', 'uuhdddh'],
  ['recovers after rise 3 from failed', 'oooxxxooo', 'uuhddfffh'],
  ['alternating never fails and never recovers', 'oooxoxoxox', 'uuhddddddd'],
  ['never comes up: failed after fall 3', 'xxx', 'uuf']
]
const letter = { unknown: 'u', healthy: 'h', degraded: 'd', failed: 'f' } as const
for (const [name, results, verdicts] of sequences) {
  test(`health verdict sequence: ${name} (${results})`, () => {
    let state = initialVerdictState
    let seen = ''
    for (const r of results) {
      state = nextVerdict(state, r === 'o' ? ok : fail, policy)
      seen += letter[state.verdict]
    }
    assert.is(seen, verdicts)
  })
}

test('health verdict: properties over random result sequences, rise/fall 1..5', () => {
  fc.assert(fc.property(
    fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 5 }), fc.array(fc.boolean(), { maxLength: 60 }),
    (rise, fall, results) => {
      const p = { rise, fall }
      let state = initialVerdictState
      let okRun = 0
      let failRun = 0
      for (const r of results) {
        const before = state
        state = nextVerdict(state, r ? ok : fail, p)
        okRun = r ? okRun + 1 : 0
        failRun = r ? 0 : failRun + 1
        // failed only with fall consecutive failures behind it; up from down only with rise ok.
        if (state.verdict === 'failed' && before.verdict !== 'failed') assert.ok(failRun >= fall)
        if (state.verdict === 'healthy' && (before.verdict === 'failed' || before.verdict === 'unknown')) assert.ok(okRun >= rise)
        if (failRun >= fall) assert.is(state.verdict, 'failed')
        if (before.verdict === 'healthy' && !r) assert.ok(state.verdict === 'degraded' || state.verdict === 'failed')
        assert.is(r ? state.consecutiveFail : state.consecutiveOk, 0, 'a result breaks the opposite streak')
      }
    }
  ))
})

test('health verdict: policy check names the bad field', () => {
  assert.throws(() => checkVerdictPolicy({ rise: 0, fall: 3 }), (error: Error) => error instanceof VerdictPolicyError && /rise/.test(error.message))
  assert.throws(() => checkVerdictPolicy({ rise: 3, fall: 1.5 }), /fall/)
  assert.throws(() => checkVerdictPolicy({ rise: 3, fall: 3, degradedLatencyMs: -1 }), /degradedLatencyMs/)
  checkVerdictPolicy({ rise: 3, fall: 3 })
})

test.run()
