import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createActor, setup } from 'xstate'
import { TimerLimitError, VirtualClock, createRealClock } from '../../src/runtime/clock.ts'

/** Records `label@time` for every fired callback. */
function recorder (clock: VirtualClock): { log: string[], at: (label: string) => () => void } {
  const log: string[] = []
  return { log, at: (label) => () => { log.push(`${label}@${clock.now()}`) } }
}

const orderingCases: Array<{ name: string, timers: Array<[string, number]>, expected: string[] }> = [
  { name: 'by due time', timers: [['c', 30], ['a', 10], ['b', 20]], expected: ['a@10', 'b@20', 'c@30'] },
  { name: 'equal due times by insertion', timers: [['x', 5], ['y', 5], ['z', 5]], expected: ['x@5', 'y@5', 'z@5'] },
  { name: 'mixed', timers: [['late', 9], ['first', 1], ['tie1', 4], ['tie2', 4]], expected: ['first@1', 'tie1@4', 'tie2@4', 'late@9'] },
  { name: 'negative and NaN delays run at now', timers: [['neg', -5], ['nan', Number.NaN], ['zero', 0]], expected: ['neg@0', 'nan@0', 'zero@0'] }
]

for (const { name, timers, expected } of orderingCases) {
  test(`virtual clock: fires ${name}`, () => {
    const clock = new VirtualClock()
    const { log, at } = recorder(clock)
    for (const [label, delay] of timers) clock.setTimeout(at(label), delay)
    clock.advance(100)
    assert.equal(log, expected)
    assert.is(clock.now(), 100)
    assert.is(clock.pendingCount, 0)
  })
}

test('virtual clock: chained delay set at t=250 for 100 ms fires at exactly t=350', () => {
  const clock = new VirtualClock()
  const { log, at } = recorder(clock)
  clock.setTimeout(() => { at('first')(); clock.setTimeout(at('second'), 100) }, 250)
  clock.advance(1000)
  assert.equal(log, ['first@250', 'second@350'])
})

test('virtual clock: start time offsets every due time', () => {
  const clock = new VirtualClock(1_000)
  const { log, at } = recorder(clock)
  clock.setTimeout(at('a'), 5)
  assert.is(clock.nextDueMs(), 1_005)
  clock.advance(5)
  assert.equal(log, ['a@1005'])
})

test('virtual clock: clearTimeout inside a callback cancels a later timer', () => {
  const clock = new VirtualClock()
  const { log, at } = recorder(clock)
  const later = clock.setTimeout(at('later'), 20)
  clock.setTimeout(() => { at('canceller')(); clock.clearTimeout(later) }, 10)
  clock.advance(100)
  assert.equal(log, ['canceller@10'])
  assert.is(clock.pendingCount, 0)
})

test('virtual clock: clearing a fired, foreign or junk handle is a no-op', () => {
  const clock = new VirtualClock()
  const other = new VirtualClock()
  const { log, at } = recorder(clock)
  const fired = clock.setTimeout(at('a'), 1)
  const kept = clock.setTimeout(at('b'), 5)
  clock.advance(1)
  clock.clearTimeout(fired)
  other.clearTimeout(kept)
  clock.clearTimeout(undefined)
  clock.clearTimeout(42)
  assert.is(clock.pendingCount, 1)
  clock.advance(10)
  assert.equal(log, ['a@1', 'b@5'])
})

test('virtual clock: timers added during advance within the window run, later ones wait', () => {
  const clock = new VirtualClock()
  const { log, at } = recorder(clock)
  clock.setTimeout(() => {
    clock.setTimeout(at('inside'), 40)
    clock.setTimeout(at('now'), 0)
    clock.setTimeout(at('outside'), 60)
  }, 50)
  assert.is(clock.advance(100), 3)
  assert.equal(log, ['now@50', 'inside@90'])
  assert.is(clock.pendingCount, 1)
  assert.is(clock.nextDueMs(), 110)
})

test('virtual clock: advance(0) runs timers due now, including zero-delay ones', () => {
  const clock = new VirtualClock()
  const { log, at } = recorder(clock)
  clock.setTimeout(at('zero'), 0)
  clock.setTimeout(at('one'), 1)
  assert.is(clock.advance(0), 1)
  assert.equal(log, ['zero@0'])
  assert.is(clock.pendingCount, 1)
})

test('virtual clock: window end is inclusive and now lands on it', () => {
  const clock = new VirtualClock()
  const { log, at } = recorder(clock)
  clock.setTimeout(at('edge'), 100)
  clock.setTimeout(at('past'), 101)
  clock.runUntil(100)
  assert.equal(log, ['edge@100'])
  assert.is(clock.now(), 100)
})

test('virtual clock: step fires one timer at a time and reports when none is left', () => {
  const clock = new VirtualClock()
  const { log, at } = recorder(clock)
  clock.setTimeout(at('b'), 20)
  clock.setTimeout(at('a'), 10)
  assert.ok(clock.step())
  assert.equal(log, ['a@10'])
  assert.is(clock.now(), 10)
  assert.ok(clock.step())
  assert.not.ok(clock.step())
  assert.equal(log, ['a@10', 'b@20'])
})

test('virtual clock: runAll drains a finite chain and returns the count', () => {
  const clock = new VirtualClock()
  let remaining = 5
  const tick = (): void => { if (--remaining > 0) clock.setTimeout(tick, 10) }
  clock.setTimeout(tick, 10)
  assert.is(clock.runAll(), 5)
  assert.is(clock.now(), 50)
})

test('virtual clock: runAll on a self re-arming timer stops at maxTimers with TimerLimitError', () => {
  const clock = new VirtualClock()
  let fired = 0
  const tick = (): void => { fired++; clock.setTimeout(tick, 10) }
  clock.setTimeout(tick, 10)
  assert.throws(() => clock.runAll({ maxTimers: 1000 }), (err: Error) => err instanceof TimerLimitError && err.name === 'TimerLimitError')
  assert.is(fired, 1000)
  assert.is(clock.now(), 10_000)
})

test('virtual clock: advance livelock guard throws past maxTimersPerCall', () => {
  const clock = new VirtualClock(0, { maxTimersPerCall: 100 })
  const spin = (): void => { clock.setTimeout(spin, 0) }
  clock.setTimeout(spin, 0)
  assert.throws(() => clock.advance(1), (err: Error) => err instanceof TimerLimitError && /more than 100 timers/.test(err.message))
})

const badArguments: Array<{ name: string, call: (clock: VirtualClock) => unknown }> = [
  { name: 'advance(-1)', call: (c) => c.advance(-1) },
  { name: 'advance(NaN)', call: (c) => c.advance(Number.NaN) },
  { name: 'advance(Infinity)', call: (c) => c.advance(Infinity) },
  { name: 'runUntil(past)', call: (c) => { c.advance(10); return c.runUntil(5) } },
  { name: 'setTimeout(Infinity)', call: (c) => c.setTimeout(() => {}, Infinity) },
  { name: 'runAll({ maxTimers: -1 })', call: (c) => c.runAll({ maxTimers: -1 }) },
  { name: 'new VirtualClock(NaN)', call: () => new VirtualClock(Number.NaN) }
]

for (const { name, call } of badArguments) {
  test(`virtual clock: ${name} throws RangeError`, () => {
    assert.throws(() => call(new VirtualClock()), (err: Error) => err instanceof RangeError)
  })
}

test('virtual clock: advancing from inside a callback is refused', () => {
  const clock = new VirtualClock()
  let error: unknown
  clock.setTimeout(() => { try { clock.advance(1) } catch (err) { error = err } }, 1)
  clock.advance(5)
  assert.ok(error instanceof Error && /inside a timer callback/.test(error.message))
})

test('virtual clock: a throwing callback propagates and leaves the clock usable', () => {
  const clock = new VirtualClock()
  const { log, at } = recorder(clock)
  clock.setTimeout(() => { throw new Error('boom') }, 5)
  clock.setTimeout(at('after'), 6)
  assert.throws(() => clock.advance(10), /boom/)
  assert.is(clock.now(), 5)
  clock.advance(5)
  assert.equal(log, ['after@6'])
})

test('virtual clock: cleared timers do not accumulate (compaction), 100,000 set and cleared', () => {
  const clock = new VirtualClock()
  const keep = clock.setTimeout(() => {}, 1_000_000)
  for (let i = 0; i < 100_000; i++) clock.clearTimeout(clock.setTimeout(() => {}, 500_000 + i))
  assert.is(clock.pendingCount, 1)
  const heapLength = (clock as unknown as { heap: { size: number } }).heap.size
  assert.ok(heapLength <= 2048, `heap holds ${heapLength} entries for 1 live timer`)
  clock.clearTimeout(keep)
  assert.is(clock.nextDueMs(), undefined)
})

test('virtual clock: 100,000 pending timers with random delays fire in order, each exactly on time', () => {
  const clock = new VirtualClock()
  const count = 100_000
  let state = 12345
  let fired = 0
  let lastTime = -1
  let late = 0
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0
    const due = state % 10_000
    clock.setTimeout(() => {
      fired++
      if (clock.now() !== due) late++
      if (clock.now() < lastTime) late++
      lastTime = clock.now()
    }, due)
  }
  assert.is(clock.pendingCount, count)
  clock.advance(5_000)
  const halfway = fired
  assert.ok(halfway > 40_000 && halfway < 60_000, `fired ${halfway} by t=5000`)
  clock.advance(5_000)
  assert.is(fired, count)
  assert.is(late, 0)
  assert.is(clock.pendingCount, 0)
})

test('virtual clock: drives xstate `after` delays at exactly the virtual time', () => {
  const clock = new VirtualClock()
  const machine = setup({
    delays: { warmUpMs: 250, coolDownMs: 100 }
  }).createMachine({
    initial: 'cold',
    states: {
      cold: { after: { warmUpMs: 'warm' } },
      warm: { after: { coolDownMs: 'done' } },
      done: { type: 'final' }
    }
  })
  const transitions: string[] = []
  const actor = createActor(machine, { clock })
  actor.subscribe((snapshot) => { transitions.push(`${String(snapshot.value)}@${clock.now()}`) })
  actor.start()
  clock.advance(249)
  assert.is(actor.getSnapshot().value, 'cold')
  clock.advance(1)
  assert.is(actor.getSnapshot().value, 'warm')
  clock.advance(1_000)
  assert.equal(transitions, ['cold@0', 'warm@250', 'done@350'])
  assert.is(actor.getSnapshot().status, 'done')
  assert.is(clock.pendingCount, 0)
})

test('virtual clock: stopping an xstate actor clears its pending `after` timer', () => {
  const clock = new VirtualClock()
  const machine = setup({ delays: { idleMs: 1_000 } }).createMachine({
    initial: 'idle',
    states: { idle: { after: { idleMs: 'gone' } }, gone: {} }
  })
  const actor = createActor(machine, { clock }).start()
  assert.is(clock.pendingCount, 1)
  actor.stop()
  assert.is(clock.pendingCount, 0)
})

test('real clock: fires after the delay and clearTimeout cancels', async () => {
  const clock = createRealClock()
  const start = clock.now()
  let cancelledFired = false
  clock.clearTimeout(clock.setTimeout(() => { cancelledFired = true }, 1))
  const firedAt = await new Promise<number>((resolve) => { clock.setTimeout(() => resolve(clock.now()), 5) })
  assert.ok(firedAt - start >= 4, `fired after ${firedAt - start} ms`)
  assert.not.ok(cancelledFired)
})

test('real clock: unref option leaves timers unreferenced, default keeps them referenced', () => {
  for (const unref of [false, true]) {
    const clock = createRealClock({ unref })
    const handle = clock.setTimeout(() => {}, 60_000) as NodeJS.Timeout
    assert.is(handle.hasRef(), !unref)
    clock.clearTimeout(handle)
  }
})

test('real clock: a delay beyond 2^31-1 ms is not clamped to 1 ms and can be cleared', async () => {
  for (const unref of [false, true]) {
    const clock = createRealClock({ unref })
    let fired = false
    const handle = clock.setTimeout(() => { fired = true }, 30 * 24 * 3600 * 1000)
    await new Promise((resolve) => { setTimeout(resolve, 20) })
    assert.not.ok(fired)
    clock.clearTimeout(handle)
  }
})

test('real clock: Infinity delay throws RangeError, as on the virtual clock', () => {
  assert.throws(() => createRealClock().setTimeout(() => {}, Infinity), (err: Error) => err instanceof RangeError)
})

test.run()
