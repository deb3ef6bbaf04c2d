import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createActor, type Actor } from 'xstate'
import {
  announcerStateName, checkPrefixAnnouncerPolicy, defaultPrefixAnnouncerPolicy, prefixAnnouncerMachine,
  PrefixAnnouncerPolicyError, type PrefixAnnouncerPolicy
} from '../../src/actors/prefix-announcer.ts'
import { defaultHealthProberPolicy, healthProberMachine } from '../../src/actors/health-prober.ts'
import { reuseAtMs } from '../../src/protocols/damping.ts'
import type { RouteAttributes } from '../../src/protocols/routes.ts'
import { VirtualClock } from '../../src/runtime/clock.ts'
import { createRandom } from '../../src/runtime/random.ts'
import type { Prober, ProbeResult } from '../../src/runtime/ports.ts'

type Announcer = Actor<typeof prefixAnnouncerMachine>

interface Published { t: number, kind: 'announce' | 'withdraw' | 'drained', health?: string, preference?: number }

const attributes: Omit<RouteAttributes, 'health'> = { preference: 100, load: 0.2, ttlMs: 30_000 }

function start (policy: Partial<PrefixAnnouncerPolicy> = {}, clock = new VirtualClock(), seed = 1): { clock: VirtualClock, actor: Announcer, log: Published[] } {
  const log: Published[] = []
  const actor = createActor(prefixAnnouncerMachine, {
    clock,
    input: {
      prefix: '10.42.255.1/32',
      service: 'api',
      attributes,
      announce: (announced) => log.push({ t: clock.now(), kind: 'announce', health: announced.health, preference: announced.preference }),
      withdraw: () => log.push({ t: clock.now(), kind: 'withdraw' }),
      onDrained: () => log.push({ t: clock.now(), kind: 'drained' }),
      clock,
      random: createRandom(seed),
      policy: { ...defaultPrefixAnnouncerPolicy, ...policy }
    }
  })
  actor.start()
  return { clock, actor, log }
}

const state = (actor: Announcer): string => announcerStateName(actor.getSnapshot().value)
const announces = (log: Published[]): Published[] => log.filter((entry) => entry.kind === 'announce')

test('prefix announcer: a healthy service is announced after announceDelay in [0, 100] ms, then refreshed every ttl/3 × [0.75, 1]', () => {
  for (let seed = 1; seed <= 10; seed++) {
    const { clock, actor, log } = start({}, new VirtualClock(), seed)
    assert.is(state(actor), 'withdrawn')
    actor.send({ type: 'service.healthy' })
    assert.is(state(actor), 'announcing')
    clock.advance(100)
    assert.is(state(actor), 'announced')
    const first = log[0]!
    assert.ok(first.kind === 'announce' && first.health === 'healthy' && first.preference === 100 && first.t >= 0 && first.t <= 100, JSON.stringify(first))
    clock.advance(60_000)
    const times = announces(log).map((entry) => entry.t)
    const gaps = times.slice(1).map((t, i) => t - times[i]!)
    assert.ok(gaps.length >= 6 && gaps.every((gap) => gap >= 7500 && gap <= 10_000), `refresh gaps ${gaps.join(',')}`)
    assert.is(log.filter((entry) => entry.kind === 'withdraw').length, 0)
    actor.stop()
  }
})

test('prefix announcer: only a healthy service is announced; degraded from withdrawn waits', () => {
  const { clock, actor, log } = start()
  actor.send({ type: 'service.degraded' })
  clock.advance(1000)
  assert.is(state(actor), 'withdrawn')
  assert.equal(log, [])
  actor.send({ type: 'service.healthy' })
  actor.send({ type: 'service.degraded' })
  clock.advance(1000)
  assert.is(state(actor), 'withdrawn', 'degraded during the hold-down cancels the announcement')
  assert.equal(log, [])
})

test('prefix announcer: degraded re-announces with health degraded (no withdrawal), healthy again restores it', () => {
  const { clock, actor, log } = start()
  actor.send({ type: 'service.healthy' }); clock.advance(100)
  actor.send({ type: 'service.degraded' })
  assert.equal(log.at(-1), { t: clock.now(), kind: 'announce', health: 'degraded', preference: 100 })
  assert.equal(actor.getSnapshot().value, { announced: 'degraded' })
  clock.advance(20_000)
  assert.ok(announces(log).slice(2).every((entry) => entry.health === 'degraded'), 'refreshes keep the degraded health')
  actor.send({ type: 'service.healthy' })
  assert.is(log.at(-1)!.health, 'healthy')
  assert.is(log.filter((entry) => entry.kind === 'withdraw').length, 0)
  assert.is(actor.getSnapshot().context.damping.flaps, 0, 'degradation is not a flap')
})

test('prefix announcer: failed withdraws at once and records one flap (penalty 1000)', () => {
  const { clock, actor, log } = start()
  actor.send({ type: 'service.healthy' }); clock.advance(100)
  clock.advance(5000)
  actor.send({ type: 'service.failed' })
  assert.equal(log.at(-1), { t: 5100, kind: 'withdraw' })
  assert.is(state(actor), 'withdrawn')
  const { damping, announced, withdrawals } = actor.getSnapshot().context
  assert.is(damping.flaps, 1)
  assert.is(damping.penalty, 1000)
  assert.is(announced, undefined)
  assert.is(withdrawals, 1)
  clock.advance(60_000)
  assert.is(log.at(-1)!.kind, 'withdraw', 'no refresh after a withdrawal')
})

test('prefix announcer: one clean failover is not damped: re-announced within announceDelay of recovery', () => {
  const { clock, actor, log } = start()
  actor.send({ type: 'service.healthy' }); clock.advance(100)
  actor.send({ type: 'service.failed' })
  clock.advance(3000)
  actor.send({ type: 'service.healthy' })
  assert.is(state(actor), 'announcing')
  const recoveredAt = clock.now()
  clock.advance(100)
  assert.is(state(actor), 'announced')
  const reannounced = announces(log).at(-1)!
  assert.ok(reannounced.t >= recoveredAt && reannounced.t <= recoveredAt + 100)
})

test('prefix announcer: a service flapping every 4 s is suppressed on flap 7 and reused only once the penalty decays to 750', () => {
  const { clock, actor, log } = start()
  let flaps = 0
  let suppressedAt: number | undefined
  // Up 2 s, down 2 s, while the flapping lasts.
  for (let cycle = 0; cycle < 20 && suppressedAt === undefined; cycle++) {
    actor.send({ type: 'service.healthy' })
    if (state(actor) === 'suppressed') { suppressedAt = clock.now(); break }
    clock.advance(2000)
    actor.send({ type: 'service.failed' })
    flaps++
    clock.advance(2000)
  }
  assert.is(flaps, 7)
  assert.ok(suppressedAt !== undefined)
  const context = actor.getSnapshot().context
  assert.ok(context.damping.penalty > 6000 && context.damping.suppressed)
  const expectedReuse = reuseAtMs(context.damping, defaultPrefixAnnouncerPolicy.damping)
  assert.is(context.suppressedUntilMs, expectedReuse)
  // About three half-lives (60 s each) after the last flap: 6090 decays to 750 in log2(8.1) ≈ 3.02.
  const lastFlapMs = suppressedAt - 2000
  assert.ok(expectedReuse - lastFlapMs > 180_000 && expectedReuse - lastFlapMs < 185_000, `reuse ${expectedReuse - lastFlapMs} ms after the last flap`)
  // Stable from here on: nothing is announced until reuse.
  const before = announces(log).length
  clock.runUntil(expectedReuse - 1)
  assert.is(state(actor), 'suppressed')
  assert.is(announces(log).length, before)
  clock.runUntil(expectedReuse + 100)
  assert.is(state(actor), 'announced')
  const reused = announces(log).at(-1)!
  assert.ok(reused.t >= expectedReuse && reused.t <= expectedReuse + 100, `announced at ${reused.t}`)
  assert.is(actor.getSnapshot().context.suppressedUntilMs, undefined)
})

test('prefix announcer: failures while suppressed count as flaps and push reuse later', () => {
  const { clock, actor } = start()
  for (let i = 0; i < 7; i++) {
    actor.send({ type: 'service.healthy' }); clock.advance(100)
    actor.send({ type: 'service.failed' }); clock.advance(100)
  }
  actor.send({ type: 'service.healthy' })
  assert.is(state(actor), 'suppressed')
  const firstReuse = actor.getSnapshot().context.suppressedUntilMs!
  actor.send({ type: 'service.failed' })
  assert.is(state(actor), 'withdrawn')
  assert.is(actor.getSnapshot().context.damping.flaps, 8)
  actor.send({ type: 'service.healthy' })
  assert.is(state(actor), 'suppressed')
  assert.ok(actor.getSnapshot().context.suppressedUntilMs! > firstReuse)
})

test('prefix announcer: drain announces de-preferred, waits drainTime 1 s, withdraws, then reports drained', () => {
  const { clock, actor, log } = start()
  actor.send({ type: 'service.healthy' }); clock.advance(100)
  log.length = 0
  const drainAt = clock.now()
  actor.send({ type: 'announcer.drain' })
  assert.is(state(actor), 'draining')
  actor.send({ type: 'announcer.drain' })
  assert.is(state(actor), 'draining', 'a second drain changes nothing')
  clock.advance(999)
  assert.equal(log, [{ t: drainAt, kind: 'announce', health: 'degraded', preference: 0 }])
  clock.advance(1)
  assert.equal(log, [
    { t: drainAt, kind: 'announce', health: 'degraded', preference: 0 },
    { t: drainAt + 1000, kind: 'withdraw' },
    { t: drainAt + 1000, kind: 'drained' }
  ])
  assert.is(actor.getSnapshot().status, 'done')
  clock.advance(60_000)
  assert.is(log.length, 3, 'nothing after drained')
})

test('prefix announcer: a service that fails while draining is withdrawn at once', () => {
  const { clock, actor, log } = start()
  actor.send({ type: 'service.healthy' }); clock.advance(100)
  actor.send({ type: 'announcer.drain' })
  clock.advance(300)
  actor.send({ type: 'service.failed' })
  assert.equal(log.slice(-2).map((entry) => entry.kind), ['withdraw', 'drained'])
  assert.is(log.at(-1)!.t, 400)
})

test('prefix announcer: draining with nothing announced is drained at once, without a withdrawal', () => {
  for (const setupEvents of [[], ['service.healthy']] as const) {
    const { actor, log } = start()
    for (const type of setupEvents) actor.send({ type })
    actor.send({ type: 'announcer.drain' })
    assert.equal(log.map((entry) => entry.kind), ['drained'])
    assert.is(actor.getSnapshot().status, 'done')
  }
})

test('prefix announcer: wired to a health prober, a service dying at 5 s is de-preferred within 551 ms and withdrawn within 1651 ms', async () => {
  const clock = new VirtualClock()
  const diesAtMs = 5000
  const prober: Prober = {
    probe: async (): Promise<ProbeResult> => {
      const up = clock.now() < diesAtMs
      return await new Promise((resolve) => clock.setTimeout(() => resolve(up ? { ok: true, latencyMs: 1 } : { ok: false, latencyMs: 1, error: 'refused' }), 1))
    },
    probeVia: async () => ({ ok: false, latencyMs: 0 })
  }
  const { actor: announcer, log } = start({}, clock)
  const health = createActor(healthProberMachine, {
    clock,
    input: {
      target: { kind: 'tcp', host: '127.0.0.1', port: 80 },
      prober,
      clock,
      random: createRandom(9),
      policy: defaultHealthProberPolicy,
      onVerdict: (verdict) => { if (verdict !== 'unknown') announcer.send({ type: `service.${verdict}` }) }
    }
  })
  health.start()
  for (let i = 0; i < 100_000 && clock.now() < 8000; i++) {
    await new Promise((resolve) => setImmediate(resolve))
    clock.runUntil(Math.min(8000, clock.nextDueMs() ?? 8000))
  }
  const firstAnnounce = log[0]!
  assert.ok(firstAnnounce.health === 'healthy' && firstAnnounce.t <= 2 * 550 + 1 + 100, `first announced at ${firstAnnounce.t}`)
  const deprefer = log.find((entry) => entry.t >= diesAtMs && entry.kind === 'announce')!
  const withdrawal = log.find((entry) => entry.kind === 'withdraw')!
  assert.is(deprefer.health, 'degraded')
  assert.ok(deprefer.t - diesAtMs <= 551, `de-preferred after ${deprefer.t - diesAtMs} ms`)
  assert.ok(withdrawal.t - diesAtMs >= 901 && withdrawal.t - diesAtMs <= 1651, `withdrawn after ${withdrawal.t - diesAtMs} ms`)
  health.stop()
  announcer.stop()
})

test('prefix announcer: policy check names the bad field', () => {
  const bad: Array<[Partial<PrefixAnnouncerPolicy>, Partial<typeof attributes>, RegExp]> = [
    [{ announceDelayMs: -1 }, {}, /announceDelayMs/],
    [{ drainTimeMs: Number.NaN }, {}, /drainTimeMs/],
    [{}, { ttlMs: 0 }, /ttlMs/],
    [{ damping: { ...defaultPrefixAnnouncerPolicy.damping, halfLifeMs: 0 } }, {}, /damping: halfLifeMs/]
  ]
  for (const [policy, attrs, pattern] of bad) {
    assert.throws(
      () => checkPrefixAnnouncerPolicy({ ...defaultPrefixAnnouncerPolicy, ...policy }, { ...attributes, ...attrs }),
      (error: Error) => error instanceof PrefixAnnouncerPolicyError && pattern.test(error.message)
    )
  }
})

test.run()
