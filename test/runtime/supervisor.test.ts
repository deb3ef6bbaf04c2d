import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createActor, setup, type AnyActorRef } from 'xstate'
import { VirtualClock } from '../../src/runtime/clock.ts'
import { createRandom } from '../../src/runtime/random.ts'
import type { InspectionEvent } from '../../src/runtime/ports.ts'
import {
  backoffDelayMs, createSupervisor, recordRestart, SupervisorEscalationError,
  type BackoffOptions, type ChildSpec, type RestartType, type Strategy, type Supervisor, type SupervisorOptions
} from '../../src/runtime/supervisor.ts'

/** A worker that throws from an action on 'worker.crash' and reaches a final state on 'worker.finish'. */
const workerMachine = setup({
  types: { events: {} as { type: 'worker.crash' } | { type: 'worker.finish' } },
  actions: { throwCrash: () => { throw new Error('worker crashed') } }
}).createMachine({
  id: 'worker',
  initial: 'working',
  states: {
    working: { on: { 'worker.crash': { actions: 'throwCrash' }, 'worker.finish': 'finished' } },
    finished: { type: 'final' }
  }
})

/** Finishes on its own after the named delay, to prove the supervisor hands xstate our clock. */
const timedMachine = setup({ delays: { workTimeMs: 1000 } }).createMachine({
  initial: 'working',
  states: { working: { after: { workTimeMs: 'finished' } }, finished: { type: 'final' } }
})

interface Harness {
  clock: VirtualClock
  events: InspectionEvent[]
  /** Every actor each spec ever created, in creation order. */
  created: Map<string, AnyActorRef[]>
  startLog: string[]
  stopLog: string[]
  spec: (id: string, restart?: RestartType) => ChildSpec
  latest: (id: string) => AnyActorRef
  options: (extra: Partial<SupervisorOptions> & { strategy: Strategy }) => SupervisorOptions
}

function harness (): Harness {
  const clock = new VirtualClock()
  const events: InspectionEvent[] = []
  const created = new Map<string, AnyActorRef[]>()
  const startLog: string[] = []
  const stopLog: string[] = []
  const spec = (id: string, restart: RestartType = 'permanent'): ChildSpec => ({
    id,
    kind: 'worker',
    restart,
    start: (ctx) => {
      const actor = createActor(workerMachine, ctx.actorOptions)
      // complete fires when the actor is stopped (or finishes); error is the supervisor's business.
      actor.subscribe({ complete: () => { if (actor.getSnapshot().status === 'stopped') stopLog.push(id) }, error: () => {} })
      created.set(id, [...(created.get(id) ?? []), actor])
      startLog.push(id)
      return { kind: 'actor', actor }
    }
  })
  const latest = (id: string): AnyActorRef => {
    const list = created.get(id)
    if (list === undefined) throw new Error(`no actor ${id}`)
    return list[list.length - 1]!
  }
  const options = (extra: Partial<SupervisorOptions> & { strategy: Strategy }): SupervisorOptions => ({
    id: 'root', clock, random: createRandom(7), inspector: { emit: (event) => events.push(event) }, node: 'n1', ...extra
  })
  return { clock, events, created, startLog, stopLog, spec, latest, options }
}

const statusOf = (actor: AnyActorRef): string => actor.getSnapshot().status
const crash = (h: Harness, id: string): void => h.latest(id).send({ type: 'worker.crash' })
const counts = (h: Harness, ids: string[]): number[] => ids.map(id => h.created.get(id)?.length ?? 0)

// --- strategies ---------------------------------------------------------------------------------

const strategyTable: Array<{ strategy: Strategy, created: number[], restarts: number[], stopped: string[], restarted: string[] }> = [
  { strategy: 'one_for_one', created: [1, 2, 1], restarts: [0, 1, 0], stopped: [], restarted: ['b'] },
  { strategy: 'one_for_all', created: [2, 2, 2], restarts: [1, 1, 1], stopped: ['c', 'a'], restarted: ['a', 'b', 'c'] },
  { strategy: 'rest_for_one', created: [1, 2, 2], restarts: [0, 1, 1], stopped: ['c'], restarted: ['b', 'c'] }
]

for (const row of strategyTable) {
  test(`supervisor: ${row.strategy}, middle of three permanent children crashes, restarts ${row.restarted.join(',')}`, () => {
    const h = harness()
    const sup = createSupervisor(h.options({ strategy: row.strategy, children: [h.spec('a'), h.spec('b'), h.spec('c')] }))
    sup.start()
    assert.equal(h.startLog, ['a', 'b', 'c'])
    const firstB = h.latest('b')
    h.startLog.length = 0
    crash(h, 'b')
    assert.is(statusOf(firstB), 'error')
    assert.equal(counts(h, ['a', 'b', 'c']), row.created)
    assert.equal(sup.children().map(c => c.restarts), row.restarts)
    assert.equal(sup.children().map(c => c.status), ['running', 'running', 'running'])
    assert.equal(h.stopLog, row.stopped, 'siblings stopped in reverse start order')
    assert.equal(h.startLog, row.restarted, 'restarted in start order')
    for (const id of ['a', 'b', 'c']) {
      const actors = h.created.get(id)!
      assert.is(statusOf(actors[actors.length - 1]!), 'active')
      for (const old of actors.slice(0, -1)) assert.ok(['stopped', 'error'].includes(statusOf(old)), `old ${id} is dead`)
    }
    const restart = h.events.find(e => e.detail?.decision === 'restart')
    assert.ok(restart !== undefined)
    assert.equal(restart.detail?.child, 'b')
    assert.equal(restart.detail?.group, row.restarted)
    assert.is(restart.kind, 'supervisor')
    assert.is(restart.node, 'n1')
  })
}

const restartTypeTable: Array<{ restart: RestartType, exit: 'error' | 'normal', restarted: boolean, listed: boolean }> = [
  { restart: 'permanent', exit: 'error', restarted: true, listed: true },
  { restart: 'permanent', exit: 'normal', restarted: true, listed: true },
  { restart: 'transient', exit: 'error', restarted: true, listed: true },
  { restart: 'transient', exit: 'normal', restarted: false, listed: true },
  { restart: 'temporary', exit: 'error', restarted: false, listed: false },
  { restart: 'temporary', exit: 'normal', restarted: false, listed: false }
]

for (const row of restartTypeTable) {
  test(`supervisor: ${row.restart} child, ${row.exit} exit, ${row.restarted ? 'restarted' : 'stays down'}`, () => {
    const h = harness()
    const sup = createSupervisor(h.options({ strategy: 'one_for_one', children: [h.spec('w', row.restart)] }))
    sup.start()
    h.latest('w').send({ type: row.exit === 'error' ? 'worker.crash' : 'worker.finish' })
    assert.is(h.created.get('w')!.length, row.restarted ? 2 : 1)
    const info = sup.children().find(c => c.id === 'w')
    assert.is(info !== undefined, row.listed)
    if (info !== undefined) assert.is(info.status, row.restarted ? 'running' : 'exited')
    const decision = h.events.at(-1)?.detail?.decision
    assert.is(decision, row.restarted ? 'restart' : 'give_up')
    assert.is(h.events.at(-1)?.detail?.reason, row.exit === 'error' ? 'Error: worker crashed' : 'normal')
  })
}

test('supervisor: one_for_all forgets a temporary sibling and restarts a transient one', () => {
  const h = harness()
  const sup = createSupervisor(h.options({
    strategy: 'one_for_all', children: [h.spec('tmp', 'temporary'), h.spec('tr', 'transient'), h.spec('p')]
  }))
  sup.start()
  const temporary = h.latest('tmp')
  crash(h, 'p')
  assert.is(statusOf(temporary), 'stopped')
  assert.equal(counts(h, ['tmp', 'tr', 'p']), [1, 2, 2])
  assert.equal(sup.children().map(c => c.id), ['tr', 'p'])
})

test('supervisor: an actor stopped from outside is a normal exit (transient stays down, permanent restarts)', () => {
  const h = harness()
  const sup = createSupervisor(h.options({ strategy: 'one_for_one', children: [h.spec('tr', 'transient'), h.spec('p')] }))
  sup.start()
  h.latest('tr').stop()
  h.latest('p').stop()
  assert.equal(sup.children().map(c => c.status), ['exited', 'running'])
  assert.equal(counts(h, ['tr', 'p']), [1, 2])
})

// --- intensity ----------------------------------------------------------------------------------

test('supervisor: default intensity 1 in 5 s, second failure 4999 ms later escalates and stops everything', () => {
  const h = harness()
  const escalations: SupervisorEscalationError[] = []
  const sup = createSupervisor(h.options({ strategy: 'one_for_one', children: [h.spec('a'), h.spec('b')], onEscalate: e => escalations.push(e) }))
  sup.start()
  crash(h, 'b')
  assert.is(sup.status(), 'running')
  h.clock.advance(4999)
  crash(h, 'b')
  assert.is(sup.status(), 'escalated')
  assert.is(escalations.length, 1)
  assert.instance(escalations[0], SupervisorEscalationError)
  assert.is(escalations[0]!.name, 'SupervisorEscalationError')
  assert.is(escalations[0]!.childId, 'b')
  assert.is((escalations[0]!.cause as Error).message, 'worker crashed')
  assert.equal(sup.children().map(c => c.status), ['stopped', 'stopped'])
  for (const actors of h.created.values()) for (const actor of actors) assert.is.not(statusOf(actor), 'active')
  assert.is(h.events.at(-1)?.detail?.decision, 'escalate')
  assert.is(h.clock.pendingCount, 0)
})

const periodTable = [
  { gapMs: 5000, escalates: true },
  { gapMs: 5001, escalates: false }
]
for (const row of periodTable) {
  test(`supervisor: period is inclusive (OTP), second failure after ${row.gapMs} ms ${row.escalates ? 'escalates' : 'restarts'}`, () => {
    const h = harness()
    const sup = createSupervisor(h.options({ strategy: 'one_for_one', children: [h.spec('a')] }))
    sup.start()
    crash(h, 'a')
    h.clock.advance(row.gapMs)
    crash(h, 'a')
    assert.is(sup.status(), row.escalates ? 'escalated' : 'running')
  })
}

test('supervisor: one failure every 6 s restarts forever (50 failures, default intensity)', () => {
  const h = harness()
  const sup = createSupervisor(h.options({ strategy: 'one_for_one', children: [h.spec('a')] }))
  sup.start()
  for (let i = 0; i < 50; i++) {
    h.clock.advance(6000)
    crash(h, 'a')
  }
  assert.is(sup.status(), 'running')
  assert.is(sup.children()[0]!.restarts, 50)
  assert.is(h.created.get('a')!.length, 51)
})

for (const intensity of [0, 3]) {
  test(`supervisor: intensity ${intensity} allows ${intensity} restarts in the period, one more escalates`, () => {
    const h = harness()
    const sup = createSupervisor(h.options({ strategy: 'one_for_one', intensity, periodMs: 1000, children: [h.spec('a')] }))
    sup.start()
    for (let i = 0; i < intensity; i++) crash(h, 'a')
    assert.is(sup.status(), 'running')
    crash(h, 'a')
    assert.is(sup.status(), 'escalated')
    assert.is(h.created.get('a')!.length, intensity + 1)
  })
}

test('recordRestart: keeps restarts within the period, inclusive', () => {
  assert.equal(recordRestart([0, 100, 200], 1100, 1000, 5), { times: [100, 200, 1100], exceeded: false })
  assert.equal(recordRestart([0], 5000, 5000, 1), { times: [0, 5000], exceeded: true })
  assert.equal(recordRestart([], 0, 5000, 0), { times: [0], exceeded: true })
})

// --- backoff ------------------------------------------------------------------------------------

const backoffTable: Array<{ backoff: BackoffOptions, consecutive: number, delayMs: number }> = [
  { backoff: { minMs: 100, maxMs: 1000, jitter: 0, resetAfterMs: 0 }, consecutive: 0, delayMs: 100 },
  { backoff: { minMs: 100, maxMs: 1000, jitter: 0, resetAfterMs: 0 }, consecutive: 1, delayMs: 200 },
  { backoff: { minMs: 100, maxMs: 1000, jitter: 0, resetAfterMs: 0 }, consecutive: 3, delayMs: 800 },
  { backoff: { minMs: 100, maxMs: 1000, jitter: 0, resetAfterMs: 0 }, consecutive: 4, delayMs: 1000 },
  { backoff: { minMs: 100, maxMs: 1000, jitter: 0, resetAfterMs: 0 }, consecutive: 5000, delayMs: 1000 },
  { backoff: { minMs: 0, maxMs: 1000, jitter: 0.5, resetAfterMs: 0 }, consecutive: 7, delayMs: 0 }
]
for (const row of backoffTable) {
  test(`backoffDelayMs: min ${row.backoff.minMs}, max ${row.backoff.maxMs}, after ${row.consecutive} restarts is ${row.delayMs} ms`, () => {
    assert.is(backoffDelayMs(row.backoff, row.consecutive, createRandom(1)), row.delayMs)
  })
}

test('backoffDelayMs: jitter 0.25 stays within ±25% and uses both sides, 2000 draws', () => {
  const random = createRandom(3)
  const backoff = { minMs: 1000, maxMs: 1000, jitter: 0.25, resetAfterMs: 0 }
  let below = 0
  let above = 0
  for (let i = 0; i < 2000; i++) {
    const delay = backoffDelayMs(backoff, 0, random)
    assert.ok(delay >= 750 && delay <= 1250, `delay ${delay}`)
    if (delay < 1000) below++
    if (delay > 1000) above++
  }
  assert.ok(below > 800 && above > 800, `below ${below}, above ${above}`)
})

test('supervisor: backoff delays are exact on the virtual clock: 100, 200, 400, 800, 800, then reset after 10 s', () => {
  const h = harness()
  const backoff = { minMs: 100, maxMs: 800, jitter: 0, resetAfterMs: 10_000 }
  const sup = createSupervisor(h.options({ strategy: 'one_for_one', intensity: 100, backoff, children: [h.spec('a')] }))
  sup.start()
  const expectRestartAfter = (delayMs: number): void => {
    const before = h.created.get('a')!.length
    crash(h, 'a')
    assert.is(sup.children()[0]!.status, 'restarting')
    assert.is(h.clock.nextDueMs()! - h.clock.now(), delayMs)
    h.clock.advance(delayMs - 1)
    assert.is(h.created.get('a')!.length, before, `not restarted 1 ms early (delay ${delayMs})`)
    h.clock.advance(1)
    assert.is(h.created.get('a')!.length, before + 1, `restarted after exactly ${delayMs} ms`)
    assert.is(sup.children()[0]!.status, 'running')
  }
  for (const delayMs of [100, 200, 400, 800, 800]) expectRestartAfter(delayMs)
  h.clock.advance(9_999)
  expectRestartAfter(800)
  h.clock.advance(10_000)
  expectRestartAfter(100)
  expectRestartAfter(200)
})

test('supervisor: backoff jitter 0.5 draws from the Random port, delay within [50, 150) and reproducible by seed', () => {
  const delays = (seed: number): number[] => {
    const h = harness()
    const backoff = { minMs: 100, maxMs: 100, jitter: 0.5, resetAfterMs: 0 }
    const sup = createSupervisor({ ...h.options({ strategy: 'one_for_one', intensity: 100, backoff, children: [h.spec('a')] }), random: createRandom(seed) })
    sup.start()
    const out: number[] = []
    for (let i = 0; i < 20; i++) {
      crash(h, 'a')
      const delay = h.clock.nextDueMs()! - h.clock.now()
      out.push(delay)
      h.clock.advance(delay)
    }
    return out
  }
  const first = delays(11)
  for (const delay of first) assert.ok(delay >= 50 && delay <= 150, `delay ${delay}`)
  assert.ok(new Set(first).size > 5, 'jitter varies')
  assert.equal(delays(11), first)
  assert.not.equal(delays(12), first)
})

test('supervisor: one_for_all with backoff stops all now and restarts all after the delay', () => {
  const h = harness()
  const backoff = { minMs: 300, maxMs: 300, jitter: 0, resetAfterMs: 0 }
  const sup = createSupervisor(h.options({ strategy: 'one_for_all', backoff, children: [h.spec('a'), h.spec('b')] }))
  sup.start()
  const [a] = h.created.get('a')!
  crash(h, 'b')
  assert.is(statusOf(a!), 'stopped')
  assert.equal(sup.children().map(c => c.status), ['restarting', 'restarting'])
  h.clock.advance(300)
  assert.equal(sup.children().map(c => c.status), ['running', 'running'])
  assert.equal(counts(h, ['a', 'b']), [2, 2])
})

// --- stopping -----------------------------------------------------------------------------------

test('supervisor: stop() stops children in reverse start order and is idempotent', async () => {
  const h = harness()
  const sup = createSupervisor(h.options({ strategy: 'one_for_one', children: [h.spec('a'), h.spec('b'), h.spec('c')] }))
  sup.start()
  await sup.stop()
  await sup.stop()
  assert.equal(h.stopLog, ['c', 'b', 'a'])
  assert.is(sup.status(), 'stopped')
  assert.throws(() => sup.startChild(h.spec('d')), /stopped/)
})

test('supervisor: stop() while a restart is pending cancels the timer and leaves nothing running', async () => {
  const h = harness()
  const backoff = { minMs: 1000, maxMs: 1000, jitter: 0, resetAfterMs: 0 }
  const sup = createSupervisor(h.options({ strategy: 'one_for_one', backoff, children: [h.spec('a'), h.spec('b')] }))
  sup.start()
  crash(h, 'a')
  assert.is(h.clock.pendingCount, 1)
  await sup.stop()
  assert.is(h.clock.pendingCount, 0)
  h.clock.advance(5000)
  assert.equal(counts(h, ['a', 'b']), [1, 1])
  for (const actors of h.created.values()) for (const actor of actors) assert.is.not(statusOf(actor), 'active')
})

test('supervisor: stopChild stops without restart and forgets; terminateChild keeps it listed; restartChild revives', () => {
  const h = harness()
  const sup = createSupervisor(h.options({ strategy: 'one_for_all', children: [h.spec('a'), h.spec('b'), h.spec('c')] }))
  sup.start()
  assert.ok(sup.stopChild('b'))
  assert.is(statusOf(h.latest('b')), 'stopped')
  assert.equal(sup.children().map(c => c.id), ['a', 'c'])
  assert.equal(counts(h, ['a', 'b', 'c']), [1, 1, 1], 'one_for_all does not restart siblings on stopChild')
  assert.ok(sup.terminateChild('c'))
  assert.equal(sup.children().map(c => c.status), ['running', 'stopped'])
  crash(h, 'a')
  assert.equal(counts(h, ['a', 'c']), [2, 1], 'a terminated child is not part of a group restart')
  assert.ok(sup.restartChild('c'))
  assert.equal(sup.children().map(c => [c.status, c.restarts]), [['running', 1], ['running', 0]])
  assert.not.ok(sup.stopChild('nope'))
  assert.equal(h.events.filter(e => e.detail?.decision === 'stop').map(e => e.detail?.child), ['b', 'c'])
})

test('supervisor: stopChild during a pending restart cancels it', () => {
  const h = harness()
  const backoff = { minMs: 500, maxMs: 500, jitter: 0, resetAfterMs: 0 }
  const sup = createSupervisor(h.options({ strategy: 'one_for_one', backoff, children: [h.spec('a')] }))
  sup.start()
  crash(h, 'a')
  sup.stopChild('a')
  assert.is(h.clock.pendingCount, 0)
  h.clock.advance(1000)
  assert.is(h.created.get('a')!.length, 1)
})

test('supervisor: startChild before start() waits for start(); duplicate ids are refused', () => {
  const h = harness()
  const sup = createSupervisor(h.options({ strategy: 'one_for_one', children: [h.spec('a')] }))
  sup.startChild(h.spec('b'))
  assert.is(h.startLog.length, 0)
  sup.start()
  assert.equal(h.startLog, ['a', 'b'])
  assert.throws(() => sup.startChild(h.spec('a')), /duplicate child id a/)
  sup.startChild(h.spec('c'))
  assert.equal(sup.children().map(c => [c.id, c.status]), [['a', 'running'], ['b', 'running'], ['c', 'running']])
})

test('supervisor: a spec whose start throws counts as a failure and escalates past the intensity', () => {
  const h = harness()
  let attempts = 0
  const escalations: unknown[] = []
  const broken: ChildSpec = { id: 'broken', kind: 'worker', restart: 'permanent', start: () => { attempts++; throw new Error('no config') } }
  const sup = createSupervisor(h.options({ strategy: 'one_for_one', intensity: 2, children: [h.spec('a'), broken], onEscalate: e => escalations.push(e) }))
  sup.start()
  assert.is(attempts, 3)
  assert.is(sup.status(), 'escalated')
  assert.is(escalations.length, 1)
  assert.is(statusOf(h.latest('a')), 'stopped')
})

test('supervisor: a stopped supervisor starts again from its initial children, so a spec may reuse it', async () => {
  const h = harness()
  const inner = createSupervisor(h.options({ id: 'inner', strategy: 'one_for_one', parent: 'root', children: [h.spec('w')] }))
  const spec: ChildSpec = { id: 'inner', kind: 'supervisor', restart: 'permanent', start: () => ({ kind: 'supervisor', supervisor: inner }) }
  const root = createSupervisor(h.options({ strategy: 'one_for_one', intensity: 5, children: [spec] }))
  root.start()
  inner.startChild(h.spec('dynamic'))
  crash(h, 'w')
  crash(h, 'w')
  assert.is(root.children()[0]!.restarts, 1, 'inner escalated and was restarted by root')
  assert.is(inner.status(), 'running')
  assert.equal(inner.children().map(c => [c.id, c.status, c.restarts]), [['w', 'running', 0]], 'fresh: startChild children dropped, counters reset')
  assert.equal(counts(h, ['w', 'dynamic']), [3, 1])
  assert.is(statusOf(h.latest('dynamic')), 'stopped')
  crash(h, 'w')
  assert.is(inner.status(), 'running', 'restart intensity history was reset too')
  await root.stop()
  for (const actors of h.created.values()) for (const actor of actors) assert.is.not(statusOf(actor), 'active')
})

test('supervisor: invalid options fail at creation and say which', () => {
  const h = harness()
  assert.throws(() => createSupervisor(h.options({ strategy: 'one_for_one', intensity: -1 })), /intensity/)
  assert.throws(() => createSupervisor(h.options({ strategy: 'one_for_one', periodMs: 0 })), /periodMs/)
  assert.throws(() => createSupervisor(h.options({ strategy: 'one_for_one', backoff: { minMs: 10, maxMs: 5, jitter: 0, resetAfterMs: 0 } })), /minMs <= maxMs/)
  assert.throws(() => createSupervisor(h.options({ strategy: 'one_for_one', backoff: { minMs: 1, maxMs: 5, jitter: 2, resetAfterMs: 0 } })), /jitter/)
  assert.throws(() => createSupervisor({ ...h.options({ strategy: 'one_for_one' }), clock: undefined as never }), /missing component: clock/)
})

// --- nesting ------------------------------------------------------------------------------------

function nestedTree (h: Harness, created: Supervisor[], rootOptions: Partial<SupervisorOptions> = {}): Supervisor {
  const inner: ChildSpec = {
    id: 'inner',
    kind: 'supervisor',
    restart: 'permanent',
    start: (ctx) => {
      const supervisor = createSupervisor({ ...ctx.supervisorDefaults, id: 'inner', strategy: 'one_for_one', children: [h.spec('w')] })
      created.push(supervisor)
      return { kind: 'supervisor', supervisor }
    }
  }
  return createSupervisor(h.options({ strategy: 'one_for_one', periodMs: 60_000, intensity: 2, children: [h.spec('top'), inner], ...rootOptions }))
}

test('supervisor: a nested supervisor that escalates is a failed child, restarted fresh by its parent', () => {
  const h = harness()
  const inners: Supervisor[] = []
  const root = nestedTree(h, inners)
  root.start()
  crash(h, 'w')
  assert.is(inners.length, 1, 'inner restarted its worker itself')
  crash(h, 'w')
  assert.is(inners[0]!.status(), 'escalated')
  assert.is(inners.length, 2, 'root started a new inner supervisor')
  assert.is(inners[1]!.status(), 'running')
  assert.equal(root.children().map(c => [c.id, c.status, c.restarts]), [['top', 'running', 0], ['inner', 'running', 1]])
  const worker = root.child('inner')
  assert.ok(worker?.kind === 'supervisor' && worker.supervisor === inners[1])
  assert.is(h.created.get('w')!.filter(a => statusOf(a) === 'active').length, 1)
  const escalate = h.events.find(e => e.detail?.decision === 'escalate')
  assert.is(escalate?.systemId, 'inner')
  assert.is(escalate?.parent, 'root')
})

test('supervisor: escalation climbs to the root, which stops the whole tree and calls onEscalate', () => {
  const h = harness()
  const inners: Supervisor[] = []
  const escalations: SupervisorEscalationError[] = []
  const root = nestedTree(h, inners, { intensity: 1, onEscalate: e => escalations.push(e) })
  root.start()
  for (let i = 0; i < 4; i++) crash(h, 'w')
  assert.is(root.status(), 'escalated')
  assert.is(escalations.length, 1)
  assert.is(escalations[0]!.childId, 'inner')
  assert.instance(escalations[0]!.cause, SupervisorEscalationError)
  for (const actors of h.created.values()) for (const actor of actors) assert.is.not(statusOf(actor), 'active')
  for (const inner of inners) assert.ok(['stopped', 'escalated'].includes(inner.status()))
})

test('supervisor: stopping the root while a nested restart is pending cancels it; nothing is orphaned', async () => {
  const h = harness()
  const created: Supervisor[] = []
  const inner: ChildSpec = {
    id: 'inner',
    kind: 'supervisor',
    restart: 'permanent',
    start: (ctx) => {
      const backoff = { minMs: 2000, maxMs: 2000, jitter: 0, resetAfterMs: 0 }
      const supervisor = createSupervisor({ ...ctx.supervisorDefaults, id: 'inner', strategy: 'rest_for_one', backoff, children: [h.spec('w'), h.spec('x')] })
      created.push(supervisor)
      return { kind: 'supervisor', supervisor }
    }
  }
  const root = createSupervisor(h.options({ strategy: 'one_for_one', children: [inner, h.spec('top')] }))
  root.start()
  crash(h, 'w')
  assert.is(h.clock.pendingCount, 1)
  assert.equal(created[0]!.children().map(c => c.status), ['restarting', 'restarting'])
  assert.equal(h.stopLog, ['x'], 'rest_for_one stopped x when w crashed')
  await root.stop()
  assert.is(h.clock.pendingCount, 0)
  h.clock.advance(10_000)
  assert.equal(counts(h, ['w', 'x', 'top']), [1, 1, 1])
  for (const actors of h.created.values()) for (const actor of actors) assert.is.not(statusOf(actor), 'active')
  assert.is(created[0]!.status(), 'stopped')
  assert.equal(h.stopLog, ['x', 'top'], 'root stop stopped only top; inner had nothing running')
})

test('supervisor: tree() describes nested supervisors and actor states', () => {
  const h = harness()
  const root = nestedTree(h, [])
  root.start()
  h.latest('top').send({ type: 'worker.finish' })
  assert.equal(root.tree(), {
    id: 'root',
    kind: 'supervisor',
    strategy: 'one_for_one',
    status: 'running',
    children: [
      { id: 'top', kind: 'worker', status: 'running', restarts: 1, state: 'working' },
      {
        id: 'inner',
        kind: 'supervisor',
        status: 'running',
        restarts: 0,
        strategy: 'one_for_one',
        children: [{ id: 'w', kind: 'worker', status: 'running', restarts: 0, state: 'working' }]
      }
    ]
  })
})

test('supervisor: children get our clock through actorOptions, so xstate delays run on virtual time', () => {
  const h = harness()
  let systemId: string | undefined
  const timed: ChildSpec = {
    id: 'timed:1',
    kind: 'timed',
    restart: 'transient',
    start: (ctx) => {
      systemId = ctx.actorOptions.systemId
      return { kind: 'actor', actor: createActor(timedMachine, ctx.actorOptions) }
    }
  }
  const sup = createSupervisor(h.options({ strategy: 'one_for_one', children: [timed] }))
  sup.start()
  assert.is(systemId, 'timed:1')
  assert.is(sup.children()[0]!.status, 'running')
  h.clock.advance(999)
  assert.is(sup.children()[0]!.status, 'running')
  h.clock.advance(1)
  assert.is(sup.children()[0]!.status, 'exited')
})

test('supervisor: each incarnation gets its own Random fork', () => {
  const h = harness()
  const draws: number[] = []
  const spec: ChildSpec = {
    ...h.spec('a'),
    start: (ctx) => { draws.push(ctx.random.next()); return h.spec('a').start(ctx) }
  }
  const sup = createSupervisor(h.options({ strategy: 'one_for_one', children: [spec] }))
  sup.start()
  crash(h, 'a')
  assert.is(draws.length, 2)
  assert.is.not(draws[0], draws[1])
})

test.run()
