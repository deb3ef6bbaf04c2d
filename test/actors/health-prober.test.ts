import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createActor, type Actor } from 'xstate'
import {
  checkHealthProberPolicy, chooseHelpers, defaultHealthProberPolicy, healthProberMachine, healthStateName,
  HealthProberPolicyError, pathRtt, probeTimeoutMs, type HealthProberPolicy, type HealthVerdictDetail
} from '../../src/actors/health-prober.ts'
import type { Verdict } from '../../src/protocols/health-verdict.ts'
import { VirtualClock } from '../../src/runtime/clock.ts'
import { createRandom } from '../../src/runtime/random.ts'
import type { PeerId, Prober, ProbeResult, ProbeTarget, Random } from '../../src/runtime/ports.ts'

type HealthProber = Actor<typeof healthProberMachine>

/** How the scripted world answers a probe started at time t. */
interface Script {
  /** Direct probe of the target started at t: an answer after some latency, or 'refused' / 'hang'. */
  direct: (t: number) => number | 'refused' | 'hang' | 'throw' | 'opening'
  /** Does helper `via` reach the target at t? */
  via?: (helper: PeerId, t: number) => boolean
}

interface FakeProber extends Prober {
  probeTimes: number[]
  /** The timeout each probe was given. */
  timeouts: number[]
  viaCalls: Array<{ via: PeerId, target: PeerId, t: number }>
}

/** Answers on the virtual clock, as the simulator's prober would; a hung probe times out itself. */
function fakeProber (clock: VirtualClock, script: Script): FakeProber {
  const after = <T>(ms: number, value: T): Promise<T> => new Promise((resolve) => { clock.setTimeout(() => resolve(value), ms) })
  const prober: FakeProber = {
    probeTimes: [],
    timeouts: [],
    viaCalls: [],
    async probe (_target: ProbeTarget, options): Promise<ProbeResult> {
      const t = clock.now()
      prober.probeTimes.push(t)
      prober.timeouts.push(options.timeoutMs)
      const answer = script.direct(t)
      if (answer === 'throw') throw new Error('socket exploded')
      if (answer === 'opening') return await after(options.timeoutMs, { ok: false, latencyMs: 0, error: 'the probe stream was still opening', inconclusive: true })
      if (answer === 'refused') return await after(1, { ok: false, latencyMs: 1, error: 'connection refused' })
      if (answer === 'hang' || answer > options.timeoutMs) return await after(options.timeoutMs, { ok: false, latencyMs: options.timeoutMs, error: 'timeout' })
      return await after(answer, { ok: true, latencyMs: answer })
    },
    async probeVia (via, target, options): Promise<ProbeResult> {
      const t = clock.now()
      prober.viaCalls.push({ via, target, t })
      const reached = script.via?.(via, t) ?? false
      return await after(reached ? 20 : options.timeoutMs, reached ? { ok: true, latencyMs: 20 } : { ok: false, latencyMs: options.timeoutMs, error: 'timeout' })
    }
  }
  return prober
}

const flush = async (): Promise<void> => await new Promise((resolve) => setImmediate(resolve))

/** Runs the virtual clock to `untilMs`, letting promise callbacks settle before every timer. */
async function runUntil (clock: VirtualClock, untilMs: number): Promise<void> {
  for (let i = 0; i < 1_000_000; i++) {
    await flush()
    const next = clock.nextDueMs()
    if (next === undefined || next > untilMs) break
    clock.runUntil(Math.max(next, clock.now()))
  }
  clock.runUntil(Math.max(untilMs, clock.now()))
  await flush()
}

interface Change { verdict: Verdict, detail: HealthVerdictDetail }

function start (options: { script: Script, policy?: Partial<HealthProberPolicy>, target?: ProbeTarget, seed?: number }): { clock: VirtualClock, prober: FakeProber, actor: HealthProber, changes: Change[] } {
  const clock = new VirtualClock()
  const prober = fakeProber(clock, options.script)
  const changes: Change[] = []
  const actor = createActor(healthProberMachine, {
    clock,
    input: {
      target: options.target ?? { kind: 'tcp', host: '127.0.0.1', port: 8080 },
      prober,
      clock,
      random: createRandom(options.seed ?? 1),
      policy: { ...defaultHealthProberPolicy, ...options.policy },
      onVerdict: (verdict, detail) => changes.push({ verdict, detail })
    }
  })
  actor.start()
  return { clock, prober, actor, changes }
}

const at = (changes: Change[], verdict: Verdict): number | undefined => changes.find((c) => c.verdict === verdict)?.detail.atMs

test('health prober: a live service is healthy after rise 3 probes, interval 500 ± 10 %', async () => {
  const { clock, actor, changes, prober } = start({ script: { direct: () => 5 } })
  await runUntil(clock, 3000)
  assert.equal(changes.map((c) => c.verdict), ['healthy'])
  const healthyAt = at(changes, 'healthy')!
  // Probes at 0, ~500, ~1000; the third answer (5 ms) makes it healthy.
  assert.ok(healthyAt >= 2 * 450 + 5 && healthyAt <= 2 * 550 + 5, `healthy at ${healthyAt}`)
  const gaps = prober.probeTimes.slice(1).map((t, i) => t - prober.probeTimes[i]!)
  assert.ok(gaps.every((gap) => gap >= 450 && gap <= 550), `gaps ${gaps.join(',')}`)
  assert.ok(new Set(gaps).size > 1, 'intervals are jittered')
  const context = actor.getSnapshot().context
  assert.is(context.verdict, 'healthy')
  assert.is(context.lastLatencyMs, 5)
  assert.is(context.failures, 0)
  assert.is(context.changedAtMs, healthyAt)
  actor.stop()
})

for (const [mode, failLatencyMs] of [['refused', 1], ['hang', 400]] as const) {
  test(`health prober: a service that dies at t is degraded by t + 550 + ${failLatencyMs} and failed within [t + 900, t + 1650] + ${failLatencyMs} ms (fall 3, ${mode}), 20 seeds`, async () => {
    for (let seed = 1; seed <= 20; seed++) {
      const diesAtMs = 5000 + seed * 37
      const { clock, actor, changes } = start({ seed, script: { direct: (t) => t < diesAtMs ? 5 : mode } })
      await runUntil(clock, diesAtMs + 3000)
      assert.equal(changes.map((c) => c.verdict), ['healthy', 'degraded', 'failed'], `seed ${seed}`)
      const degradedAfter = at(changes, 'degraded')! - diesAtMs
      const failedAfter = at(changes, 'failed')! - diesAtMs
      assert.ok(degradedAfter > 0 && degradedAfter <= 550 + failLatencyMs, `seed ${seed}: degraded after ${degradedAfter} ms`)
      // Three failed probes: the first within one interval of the death, two more intervals later.
      assert.ok(failedAfter >= 2 * 450 + failLatencyMs && failedAfter <= 3 * 550 + failLatencyMs, `seed ${seed}: failed after ${failedAfter} ms`)
      const failed = changes[2]!.detail
      assert.is(failed.consecutiveFail, 3)
      assert.is(failed.lastError, mode === 'refused' ? 'connection refused' : 'timeout')
      assert.is(failed.previous, 'degraded')
      assert.ok(actor.getSnapshot().context.consecutiveFail > 3, 'probing goes on while failed')
      actor.stop()
    }
  })
}

test('health prober: probes that could not be sent yet (a stream still opening) are not judged', async () => {
  const { clock, actor, changes } = start({ script: { direct: (t) => t < 2000 ? 'opening' : 5 } })
  await runUntil(clock, 5000)
  assert.equal(changes.map((c) => c.verdict), ['healthy'], 'never degraded or failed while the way was being set up')
  const context = actor.getSnapshot().context
  assert.ok(context.inconclusive >= 3, `${context.inconclusive} inconclusive probes`)
  assert.is(context.failures, 0)
  actor.stop()
})

test('health prober: a far target gets twice its smoothed round trip as timeout, up to 90 % of the interval', async () => {
  const policy = { ...defaultHealthProberPolicy, intervalMs: 500, timeoutMs: 300 }
  assert.is(probeTimeoutMs(policy, undefined), 450, 'no sample yet: the ceiling, a conservative first timeout (RFC 6298 §2.1)')
  assert.is(probeTimeoutMs(policy, 20), 300, 'a near target keeps the policy')
  assert.is(probeTimeoutMs(policy, 200), 400)
  assert.is(probeTimeoutMs(policy, 275), 450, 'capped below the interval')
  assert.is(probeTimeoutMs({ ...policy, timeoutMs: 480 }, 275), 480, 'never below the policy')

  // 275 ms away with jitter up to 330 ms: a fixed 300 ms timeout would fail about half the probes.
  const { clock, actor, changes, prober } = start({ policy: { timeoutMs: 300, rise: 2, fall: 2 }, script: { direct: (t) => 275 + (Math.floor(t) % 7) * 9 } })
  await runUntil(clock, 20_000)
  assert.equal(changes.map((c) => c.verdict), ['healthy'], `verdicts ${changes.map((c) => c.verdict).join(', ')}`)
  assert.ok(actor.getSnapshot().context.failures <= 1, 'only the first probe, at the policy timeout, could miss')
  assert.ok(prober.timeouts.slice(2).every((timeout) => timeout === 450), `timeouts ${[...new Set(prober.timeouts)].join(', ')}`)
  actor.stop()
})

test('health prober: the path RTT takes a lower sample at once and a higher one at gain 1/8', async () => {
  assert.is(pathRtt(undefined, 80), 80, 'the first sample')
  assert.is(pathRtt(80, 0.5), 0.5, 'a slow first answer does not linger')
  assert.is(pathRtt(0.5, 8.5), 1.5, 'a spike moves it by an eighth')
  let estimate = 10
  for (let sample = 0; sample < 40; sample++) estimate = pathRtt(estimate, 50)
  assert.ok(estimate > 49 && estimate < 50, `a lasting rise is followed: ${estimate}`)

  // Through the actor: a slow first answer, then steady 5 ms with every fourth answer 40 ms late.
  const { clock, actor, changes } = start({ script: { direct: (t) => t < 100 ? 120 : Math.floor(t / 500) % 4 === 3 ? 45 : 5 } })
  await runUntil(clock, 10_000)
  const context = actor.getSnapshot().context
  assert.ok(context.pathRttMs! >= 5 && context.pathRttMs! <= 10, `path RTT ${context.pathRttMs} (a late answer moves it 5 ms at most)`)
  assert.ok(context.srttMs! > context.pathRttMs!, `SRTT ${context.srttMs} stays above it: it sets the timeout, conservatively`)
  const detail = changes[0]!.detail
  assert.ok(detail.pathRttMs !== undefined && detail.pathRttMs <= detail.lastLatencyMs!, `the verdict detail carries it: ${detail.pathRttMs} after a ${detail.lastLatencyMs} ms answer`)
  actor.stop()
})

test('health prober: one lost probe only de-prefers; rise 3 fast answers make it healthy again', async () => {
  const { clock, changes } = start({ script: { direct: (t) => t >= 2000 && t < 2400 ? 'refused' : 5 } })
  await runUntil(clock, 5000)
  assert.equal(changes.map((c) => c.verdict), ['healthy', 'degraded', 'healthy'])
  const back = at(changes.slice(2), 'healthy')! - at(changes, 'degraded')!
  assert.ok(back >= 3 * 450 && back <= 3 * 550 + 5, `healthy again ${back} ms after the loss`)
})

test('health prober: a failed service recovers straight to healthy after rise 3, detail says previous failed', async () => {
  const { clock, changes } = start({ script: { direct: (t) => t >= 2000 && t < 5000 ? 'refused' : 5 } })
  await runUntil(clock, 8000)
  assert.equal(changes.map((c) => c.verdict), ['healthy', 'degraded', 'failed', 'healthy'])
  const recovered = changes[3]!
  assert.is(recovered.detail.previous, 'failed')
  const recoveryMs = recovered.detail.atMs - 5000
  assert.ok(recoveryMs >= 2 * 450 && recoveryMs <= 3 * 550 + 5, `healthy ${recoveryMs} ms after recovery`)
})

test('health prober: answers slower than degradedLatencyMs 100 degrade; fast ones recover', async () => {
  const { clock, changes, actor } = start({ policy: { degradedLatencyMs: 100 }, script: { direct: (t) => t >= 3000 && t < 4500 ? 150 : 5 } })
  await runUntil(clock, 9000)
  assert.equal(changes.map((c) => c.verdict), ['healthy', 'degraded', 'healthy'])
  assert.is(changes[1]!.detail.lastLatencyMs, 150)
  assert.is(actor.getSnapshot().context.failures, 0, 'slow is not a failure')
})

test('health prober: a probe that never settles is failed by the actor 10 % after timeoutMs, and the schedule goes on', async () => {
  const clock = new VirtualClock()
  let calls = 0
  const prober: Prober = {
    probe: async () => { calls++; return await new Promise<ProbeResult>(() => {}) },
    probeVia: async () => await new Promise<ProbeResult>(() => {})
  }
  const actor = createActor(healthProberMachine, { clock, input: { target: { kind: 'http', url: 'http://x/' }, prober, clock, random: createRandom(3), policy: defaultHealthProberPolicy } })
  actor.start()
  await runUntil(clock, 2000)
  const context = actor.getSnapshot().context
  assert.ok(calls >= 4, `probed ${calls} times`)
  assert.is(context.verdict, 'failed')
  assert.match(context.lastError ?? '', /did not settle within 495 ms/)
  actor.stop()
})

test('health prober: a prober that throws counts as a failed probe with the error', async () => {
  const { clock, actor } = start({ script: { direct: () => 'throw' } })
  await runUntil(clock, 2000)
  assert.is(actor.getSnapshot().context.verdict, 'failed')
  assert.match(actor.getSnapshot().context.lastError ?? '', /probe error: socket exploded/)
})

test('health prober: health.check.now probes at once instead of after the interval', async () => {
  const { clock, actor, prober } = start({ script: { direct: () => 5 } })
  await runUntil(clock, 100)
  assert.is(prober.probeTimes.length, 1)
  actor.send({ type: 'health.check.now' })
  await runUntil(clock, 101)
  assert.equal(prober.probeTimes, [0, 100])
  // A check while a probe is in flight does not start a second one.
  actor.send({ type: 'health.check.now' })
  await runUntil(clock, 102)
  assert.is(prober.probeTimes.length, 2)
})

test('health prober: health.cadence.set slows the schedule, and speeding up probes at once when the new interval is past', async () => {
  const { clock, actor, prober } = start({ script: { direct: () => 5 }, policy: { jitter: 0 } })
  await runUntil(clock, 2100)
  assert.equal(prober.probeTimes, [0, 500, 1000, 1500, 2000])
  // While a probe rests: the next one is due 5 s after the last one started.
  actor.send({ type: 'health.cadence.set', intervalMs: 5000 })
  await runUntil(clock, 12_100)
  assert.equal(prober.probeTimes.slice(5), [7000, 12_000])
  assert.is(actor.getSnapshot().context.policy.intervalMs, 5000)
  // 3.4 s after the last start the 500 ms interval is long past: probe now, then every 500 ms.
  await runUntil(clock, 15_400)
  actor.send({ type: 'health.cadence.set', intervalMs: 500 })
  await runUntil(clock, 16_500)
  assert.equal(prober.probeTimes.slice(7), [15_400, 15_900, 16_400])
  // Sent while a probe is in flight (a hung one would be too): it applies from that probe's start.
  actor.send({ type: 'health.cadence.set', intervalMs: 2000 })
  await runUntil(clock, 20_500)
  assert.equal(prober.probeTimes.slice(10), [18_400, 20_400])
  assert.is(actor.getSnapshot().context.verdict, 'healthy')
  actor.stop()
})

test('health prober: a cadence the policy check refuses stops the actor with the error, naming intervalMs', async () => {
  const { clock, actor } = start({ script: { direct: () => 5 } })
  await runUntil(clock, 100)
  const errors: unknown[] = []
  actor.subscribe({ error: (error) => errors.push(error) })
  actor.send({ type: 'health.cadence.set', intervalMs: 0 })
  assert.is(errors.length, 1)
  assert.match(String(errors[0]), /intervalMs must be > 0/)
})

test('health prober: fed-in probe events are judged like its own probes', async () => {
  const { actor } = start({ script: { direct: () => 'hang' } })
  for (let i = 0; i < 3; i++) actor.send({ type: 'health.probe.succeeded', latencyMs: 2 })
  assert.is(healthStateName(actor.getSnapshot().value), 'healthy')
  actor.send({ type: 'health.probe.failed', error: 'keepalive missed' })
  assert.is(healthStateName(actor.getSnapshot().value), 'degraded')
  assert.is(actor.getSnapshot().context.lastError, 'keepalive missed')
})

const peer: ProbeTarget = { kind: 'peer', peerId: 'p-target' }
const helpers = ['h1', 'h2', 'h3', 'h4', 'h5', 'p-target']

test('health prober: indirect probes save a peer behind a 60 % lossy direct link, 500 intervals, seed 11', async () => {
  const loss = createRandom(11)
  const direct = (): number | 'hang' => loss.next() < 0.6 ? 'hang' : 5
  const withHelp = start({ target: peer, seed: 11, script: { direct, via: () => true }, policy: { indirect: { k: 3, via: () => helpers } } })
  await runUntil(withHelp.clock, 500 * 500)
  const context = withHelp.actor.getSnapshot().context
  assert.not.ok(withHelp.changes.some((c) => c.verdict === 'failed'), 'never declared failed')
  assert.ok(context.indirectRounds > 10, `${context.indirectRounds} indirect rounds`)
  assert.ok(withHelp.prober.viaCalls.every((call) => call.target === 'p-target' && call.via !== 'p-target'), 'the target is never its own helper')
  withHelp.actor.stop()

  // The same link without indirect probes produces false "dead" verdicts.
  const loss2 = createRandom(11)
  const alone = start({ target: peer, seed: 11, script: { direct: () => loss2.next() < 0.6 ? 'hang' : 5 } })
  await runUntil(alone.clock, 500 * 500)
  assert.ok(alone.changes.filter((c) => c.verdict === 'failed').length > 5, 'without help the peer is declared failed')
  alone.actor.stop()
})

test('health prober: a dead peer is failed after fall 3 plus one indirect round that nobody answers, k 3', async () => {
  const diesAtMs = 3000
  const { clock, actor, changes, prober } = start({ target: peer, script: { direct: (t) => t < diesAtMs ? 5 : 'hang', via: (_, t) => t < diesAtMs }, policy: { indirect: { k: 3, via: () => helpers } } })
  await runUntil(clock, 7000)
  assert.equal(changes.map((c) => c.verdict), ['healthy', 'degraded', 'failed'])
  const failed = changes[2]!
  assert.is(failed.detail.indirect?.asked.length, 3)
  assert.is(new Set(failed.detail.indirect?.asked).size, 3, 'three distinct helpers')
  assert.equal(failed.detail.indirect?.reachedBy, [])
  const failedAfter = failed.detail.atMs - diesAtMs
  // fall 3 probes that each time out (400 ms), then one indirect round (timeout 400 ms).
  assert.ok(failedAfter >= 2 * 450 + 400 + 400 && failedAfter <= 3 * 550 + 400 + 400, `failed ${failedAfter} ms after death`)
  assert.is(prober.viaCalls.length, 3)
  assert.match(failed.detail.lastError ?? '', /through all 3 helpers/)
  assert.is(actor.getSnapshot().context.indirectRounds, 1, 'a failed peer is not suspected again')
})

test('health prober: with no helper to ask, a suspected peer fails at once', async () => {
  const { clock, changes, actor } = start({ target: peer, script: { direct: (t) => t < 2000 ? 5 : 'refused' }, policy: { indirect: { k: 3, via: () => ['p-target'] } } })
  await runUntil(clock, 5000)
  assert.equal(changes.map((c) => c.verdict), ['healthy', 'degraded', 'failed'])
  assert.match(changes[2]!.detail.lastError ?? '', /no helper to ask/)
  assert.is(actor.getSnapshot().context.indirectRounds, 1)
})

test('health prober: indirect probes are for peers only; a tcp service fails after fall', async () => {
  const { clock, changes, prober } = start({ script: { direct: (t) => t < 2000 ? 5 : 'refused', via: () => true }, policy: { indirect: { k: 3, via: () => helpers } } })
  await runUntil(clock, 5000)
  assert.equal(changes.map((c) => c.verdict), ['healthy', 'degraded', 'failed'])
  assert.is(prober.viaCalls.length, 0)
})

test('health prober: chooseHelpers picks k distinct helpers, never the target, uniformly (seed 5)', () => {
  const random: Random = createRandom(5)
  const counts = new Map<string, number>()
  for (let i = 0; i < 3000; i++) {
    const chosen = chooseHelpers(['a', 'b', 'c', 'd', 'a', 'target'], 'target', 2, random)
    assert.is(new Set(chosen).size, 2)
    assert.not.ok(chosen.includes('target'))
    for (const peerId of chosen) counts.set(peerId, (counts.get(peerId) ?? 0) + 1)
  }
  for (const peerId of ['a', 'b', 'c', 'd']) {
    const share = (counts.get(peerId) ?? 0) / 6000
    assert.ok(share > 0.22 && share < 0.28, `${peerId} chosen ${share}`)
  }
  assert.equal(chooseHelpers(['a'], 'target', 3, random), ['a'])
})

test('health prober: policy check names the bad field', () => {
  const bad: Array<[Partial<HealthProberPolicy>, RegExp]> = [
    [{ intervalMs: 0 }, /intervalMs/], [{ timeoutMs: -1 }, /timeoutMs/], [{ jitter: 1 }, /jitter/],
    [{ rise: 0 }, /rise/], [{ indirect: { k: 1.5, via: () => [] } }, /indirect\.k/]
  ]
  for (const [policy, pattern] of bad) {
    assert.throws(() => checkHealthProberPolicy({ ...defaultHealthProberPolicy, ...policy }), (error: Error) => error instanceof HealthProberPolicyError && pattern.test(error.message))
  }
})

test.run()
