// Bytes per idle actor: 100,000 started xstate actors, each waiting on a pending `after` timer on one
// VirtualClock, measured as the growth of the JS heap (plus off-heap buffers) after full GCs.
// Run: node --expose-gc --import tsx bench/actor-memory.ts [--actors N]
// (without --expose-gc it re-runs itself with the flag).
import { spawnSync } from 'node:child_process'
import { parseArgs } from 'node:util'
import { assign, createActor, setup } from 'xstate'
import type { AnyActorRef } from 'xstate'
import { VirtualClock } from '../src/runtime/clock.ts'

const TARGET_BYTES_PER_ACTOR = 5 * 1024

interface ProberContext {
  target: string
  probeIntervalMs: number
  consecutiveSuccesses: number
  consecutiveFailures: number
  lastRttMs: number | undefined
}

type ProberEvent =
  | { type: 'health.probe.succeeded', rttMs: number }
  | { type: 'health.probe.failed' }

/** Shaped like a health prober (HAProxy rise/fall): four conditions, a probe interval timer. */
const proberMachine = setup({
  types: {
    context: {} as ProberContext,
    events: {} as ProberEvent,
    input: {} as { target: string, probeIntervalMs: number }
  },
  delays: { probeIntervalMs: ({ context }) => context.probeIntervalMs },
  guards: {
    hasRisen: ({ context }) => context.consecutiveSuccesses >= 2,
    hasFallen: ({ context }) => context.consecutiveFailures >= 3
  },
  actions: {
    recordSuccess: assign({
      consecutiveSuccesses: ({ context }) => context.consecutiveSuccesses + 1,
      consecutiveFailures: 0,
      lastRttMs: ({ event }) => (event.type === 'health.probe.succeeded' ? event.rttMs : undefined)
    }),
    recordFailure: assign({
      consecutiveFailures: ({ context }) => context.consecutiveFailures + 1,
      consecutiveSuccesses: 0
    })
  }
}).createMachine({
  context: ({ input }) => ({ ...input, consecutiveSuccesses: 0, consecutiveFailures: 0, lastRttMs: undefined }),
  initial: 'unknown',
  on: {
    'health.probe.succeeded': { actions: 'recordSuccess' },
    'health.probe.failed': { actions: 'recordFailure' }
  },
  states: {
    unknown: { after: { probeIntervalMs: { target: 'unknown', reenter: true } }, always: [{ guard: 'hasRisen', target: 'healthy' }, { guard: 'hasFallen', target: 'failed' }] },
    healthy: { after: { probeIntervalMs: { target: 'healthy', reenter: true } }, always: { guard: 'hasFallen', target: 'degraded' } },
    degraded: { after: { probeIntervalMs: { target: 'degraded', reenter: true } }, always: [{ guard: 'hasRisen', target: 'healthy' }, { guard: 'hasFallen', target: 'failed' }] },
    failed: { after: { probeIntervalMs: { target: 'failed', reenter: true } }, always: { guard: 'hasRisen', target: 'healthy' } }
  }
})

/** JS heap plus off-heap buffers (the clock's key arrays), after collecting twice. */
function usedBytes (gc: () => void): number {
  gc()
  gc()
  const { heapUsed, external } = process.memoryUsage()
  return heapUsed + external
}

function measure (gc: () => void, actorCount: number): void {
  const clock = new VirtualClock()
  const actors: AnyActorRef[] = []
  const before = usedBytes(gc)
  for (let i = 0; i < actorCount; i++) {
    const input = { target: `10.0.${i >> 8 & 255}.${i & 255}:443`, probeIntervalMs: 1000 + (i % 1000) }
    const actor = createActor(proberMachine, { clock, input, systemId: `health-prober:${i}` }).start()
    actor.send({ type: 'health.probe.succeeded', rttMs: 12 })
    actors.push(actor)
  }
  clock.advance(500) // no timer is due yet: every actor is idle with one pending timer
  const after = usedBytes(gc)
  const bytesPerActor = (after - before) / actorCount
  if (clock.pendingCount !== actorCount) throw new Error(`expected ${actorCount} pending timers, got ${clock.pendingCount}`)
  console.log(`actor.bytes_per_idle_actor ${Math.round(bytesPerActor)}`)
  console.log(`# ${actorCount} idle actors (4 states, pending after timer, small context): ` +
    `${(bytesPerActor / 1024).toFixed(2)} KB each, target <= ${TARGET_BYTES_PER_ACTOR / 1024} KB, ` +
    `${((after - before) / 1048576).toFixed(0)} MB total; ${actors.length} alive`)
}

/** Re-runs this script under --expose-gc, keeping the loader flags (e.g. --import tsx). */
function rerunWithGc (): never {
  console.warn('# global.gc unavailable: re-running with --expose-gc')
  const args = ['--expose-gc', ...process.execArgv, ...process.argv.slice(1)]
  const child = spawnSync(process.execPath, args, { stdio: 'inherit' })
  process.exit(child.status ?? 1)
}

function main (): void {
  const { values } = parseArgs({ options: { actors: { type: 'string', default: '100000' } } })
  const actorCount = Number(values.actors)
  if (!Number.isSafeInteger(actorCount) || actorCount < 1) throw new RangeError(`--actors must be a positive integer, got ${values.actors}`)
  const gc = globalThis.gc
  if (typeof gc !== 'function') rerunWithGc()
  measure(() => { gc() }, actorCount)
}

main()
