// Virtual-clock throughput: 100,000 xstate actors ticking on one VirtualClock, and the raw heap.
// Run: node --import tsx bench/clock.ts [--actors N] [--seconds S] [--min-tick-ms A] [--max-tick-ms B]
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { assign, createActor, setup } from 'xstate'
import { VirtualClock } from '../src/runtime/clock.ts'
import { createRandom } from '../src/runtime/random.ts'

const SEED = 1
const RAW_TIMERS = 1_000_000

/** A small periodic actor, shaped like a prober: waits its interval, records a tick, waits again. */
const tickerMachine = setup({
  types: { context: {} as { tickIntervalMs: number, ticks: number }, input: {} as { tickIntervalMs: number } },
  delays: { tickIntervalMs: ({ context }) => context.tickIntervalMs },
  actions: { recordTick: assign({ ticks: ({ context }) => context.ticks + 1 }) }
}).createMachine({
  context: ({ input }) => ({ tickIntervalMs: input.tickIntervalMs, ticks: 0 }),
  initial: 'waiting',
  states: {
    waiting: { after: { tickIntervalMs: { target: 'waiting', reenter: true, actions: 'recordTick' } } }
  }
})

interface ActorBenchOptions {
  actorCount: number
  virtualSeconds: number
  minTickMs: number
  maxTickMs: number
}

function benchActors ({ actorCount, virtualSeconds, minTickMs, maxTickMs }: ActorBenchOptions): void {
  const clock = new VirtualClock()
  const random = createRandom(SEED)
  const startedAt = performance.now()
  for (let i = 0; i < actorCount; i++) {
    const tickIntervalMs = minTickMs + random.int(maxTickMs - minTickMs + 1)
    createActor(tickerMachine, { clock, input: { tickIntervalMs } }).start()
  }
  const createMs = performance.now() - startedAt
  clock.advance(1000) // warm-up: JIT and steady-state heap
  const runStartedAt = performance.now()
  const fired = clock.advance(virtualSeconds * 1000)
  const runMs = performance.now() - runStartedAt
  const wallMsPerVirtualSecond = runMs / virtualSeconds
  console.log(`clock.actor_create_ms_${actorCount} ${createMs.toFixed(0)}`)
  console.log(`clock.timers_per_sec ${Math.round(fired / (runMs / 1000))}`)
  console.log(`clock.wall_ms_per_virtual_second_100k_actors ${wallMsPerVirtualSecond.toFixed(1)}`)
  console.log(`clock.us_per_actor_transition ${(runMs * 1000 / fired).toFixed(2)}`)
  console.log(`# ${actorCount} actors ticking every ${minTickMs}-${maxTickMs} ms: ${fired} timers fired in ${virtualSeconds} ` +
    `virtual s, ${wallMsPerVirtualSecond.toFixed(0)} wall ms per virtual s (target ~1000), pending ${clock.pendingCount}`)
}

function benchRawHeap (timerCount: number): void {
  const clock = new VirtualClock()
  const random = createRandom(SEED).fork('raw')
  let fired = 0
  const onFire = (): void => { fired++ }
  const startedAt = performance.now()
  for (let i = 0; i < timerCount; i++) clock.setTimeout(onFire, random.int(3_600_000))
  const setMs = performance.now() - startedAt
  clock.runAll()
  const totalMs = performance.now() - startedAt
  if (fired !== timerCount) throw new Error(`raw heap fired ${fired} of ${timerCount}`)
  console.log(`clock.raw_set_and_fire_per_sec ${Math.round(timerCount / (totalMs / 1000))}`)
  console.log(`# raw heap: ${timerCount} timers set in ${setMs.toFixed(0)} ms, set+fired in ${totalMs.toFixed(0)} ms`)
}

/** The clock's own share of the actor run: the same re-arming pattern with plain callbacks. */
function benchSteadyHeap ({ actorCount, virtualSeconds, minTickMs, maxTickMs }: ActorBenchOptions): void {
  const clock = new VirtualClock()
  const random = createRandom(SEED)
  for (let i = 0; i < actorCount; i++) {
    const tickIntervalMs = minTickMs + random.int(maxTickMs - minTickMs + 1)
    const tick = (): void => { clock.setTimeout(tick, tickIntervalMs) }
    clock.setTimeout(tick, tickIntervalMs)
  }
  clock.advance(1000)
  const startedAt = performance.now()
  const fired = clock.advance(virtualSeconds * 1000)
  const runMs = performance.now() - startedAt
  console.log(`clock.ns_per_fire_plain_timers_${actorCount}_pending ${Math.round(runMs * 1e6 / fired)}`)
}

function positiveInteger (flag: string, text: string): number {
  const value = Number(text)
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`--${flag} must be a positive integer, got ${text}`)
  return value
}

function main (): void {
  const { values } = parseArgs({
    options: {
      actors: { type: 'string', default: '100000' },
      seconds: { type: 'string', default: '5' },
      'min-tick-ms': { type: 'string', default: '100' },
      'max-tick-ms': { type: 'string', default: '1000' }
    }
  })
  const options = {
    actorCount: positiveInteger('actors', values.actors),
    virtualSeconds: positiveInteger('seconds', values.seconds),
    minTickMs: positiveInteger('min-tick-ms', values['min-tick-ms']),
    maxTickMs: positiveInteger('max-tick-ms', values['max-tick-ms'])
  }
  if (options.maxTickMs < options.minTickMs) throw new RangeError('--max-tick-ms must be >= --min-tick-ms')
  console.log(`# seed ${SEED}, node ${process.version}`)
  benchActors(options)
  benchSteadyHeap(options)
  benchRawHeap(RAW_TIMERS)
}

main()
