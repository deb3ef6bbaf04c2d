// Random faults (Scenario.randomFaults, format in simulations/scenario-faults.ts) drawn from one
// run's seed into concrete events before the run starts, so a run is replayed exactly from its
// seed and the events it suffered can be printed and read like a hand-written timeline. Arrivals
// of each kind are a Poisson process of perMinute per simulated minute inside [fromMs, untilMs);
// each kind draws from its own fork of the seed, so adding one kind never moves another's events.
import { createRandom } from '../src/runtime/random.ts'
import type { Random } from '../src/runtime/ports.ts'
import { faultEnds, type FaultEvent, type RandomFaults } from './scenario-faults.ts'
import { regionsOf, type Scenario, type TimelineEvent } from './scenario.ts'

/** Bound on the events of one kind in one run, whatever the rate. */
export const MAX_RANDOM_EVENTS_PER_KIND = 10_000
/** Tries to find a node free for a crash before that arrival is skipped. */
const MAX_PICKS = 32

/** Arrival times of a Poisson process of `perMinute`, in [fromMs, untilMs), whole milliseconds. */
export function poissonArrivals (random: Random, perMinute: number, fromMs: number, untilMs: number): number[] {
  const meanGapMs = 60_000 / perMinute
  const times: number[] = []
  let t = fromMs
  for (let i = 0; i < MAX_RANDOM_EVENTS_PER_KIND; i++) {
    t += -Math.log(1 - random.next()) * meanGapMs
    if (t >= untilMs) break
    times.push(Math.floor(t))
  }
  return times
}

/** The scenario with its random faults drawn for `seed` and merged into timeline and faults. */
export function withRandomFaults (scenario: Scenario, seed: number): Scenario {
  const spec = scenario.randomFaults
  if (spec === undefined) return scenario
  const random = createRandom(seed).fork('random-faults')
  const drawn: FaultEvent[] = []
  const nextId = (): number => scenario.faults.length + drawn.length
  drawLinkFaults(scenario, spec, random, drawn, nextId)
  drawNodeFaults(scenario, spec, random, drawn, nextId)
  const ends = faultEnds(drawn, nextId())
  const crashes = drawCrashes(scenario, spec, random)
  return {
    ...scenario,
    timeline: [...scenario.timeline, ...crashes].sort((a, b) => a.at - b.at),
    faults: [...scenario.faults, ...drawn, ...ends].sort((a, b) => a.at - b.at)
  }
}

/** A fault with a duration lasts at most to the end of the run. */
function clip (scenario: Scenario, at: number, durationMs: number): number {
  return Math.max(1, Math.min(durationMs, scenario.durationMs - at))
}

function drawLinkFaults (scenario: Scenario, spec: RandomFaults, random: Random, drawn: FaultEvent[], nextId: () => number): void {
  const { fromMs, untilMs } = spec
  const origin = (kind: string): string => `faults.random.${kind}`
  if (spec.lossSpikes !== undefined) {
    const { perMinute, rate, durationMs } = spec.lossSpikes
    for (const at of poissonArrivals(random.fork('lossSpikes'), perMinute, fromMs, untilMs)) {
      drawn.push({ at, id: nextId(), origin: origin('lossSpikes'), event: 'loss', rate, durationMs: clip(scenario, at, durationMs) })
    }
  }
  if (spec.delaySpikes !== undefined) {
    const { perMinute, extraMs, jitterMs, durationMs } = spec.delaySpikes
    for (const at of poissonArrivals(random.fork('delaySpikes'), perMinute, fromMs, untilMs)) {
      drawn.push({ at, id: nextId(), origin: origin('delaySpikes'), event: 'delay', extraMs, jitterMs, durationMs: clip(scenario, at, durationMs) })
    }
  }
  if (spec.reordering !== undefined) {
    const { perMinute, rate, windowMs, durationMs } = spec.reordering
    for (const at of poissonArrivals(random.fork('reordering'), perMinute, fromMs, untilMs)) {
      drawn.push({ at, id: nextId(), origin: origin('reordering'), event: 'reorder', rate, windowMs, durationMs: clip(scenario, at, durationMs) })
    }
  }
  if (spec.partitions !== undefined) {
    const { perMinute, durationMs, oneWayShare } = spec.partitions
    const regions = [...regionsOf(scenario.nodes)].sort(([a], [b]) => a.localeCompare(b))
    const fork = random.fork('partitions')
    for (const at of poissonArrivals(fork, perMinute, fromMs, untilMs)) {
      const [, members] = regions[fork.int(regions.length)]!
      if (members.length === scenario.nodes.length) continue // one region only: nothing to cut it from
      const scope = { from: members, oneWay: fork.next() < oneWayShare }
      drawn.push({ at, id: nextId(), origin: origin('partitions'), event: 'partition', scope, durationMs: clip(scenario, at, durationMs) })
    }
  }
}

function drawNodeFaults (scenario: Scenario, spec: RandomFaults, random: Random, drawn: FaultEvent[], nextId: () => number): void {
  const ids = scenario.nodes.map((node) => node.id)
  if (spec.stalls !== undefined) {
    const fork = random.fork('stalls')
    for (const at of poissonArrivals(fork, spec.stalls.perMinute, spec.fromMs, spec.untilMs)) {
      drawn.push({ at, id: nextId(), origin: 'faults.random.stalls', event: 'cpuStall', nodes: [ids[fork.int(ids.length)]!], durationMs: clip(scenario, at, spec.stalls.durationMs) })
    }
  }
  if (spec.clockSkew !== undefined) {
    const fork = random.fork('clockSkew')
    const { share, maxOffsetMs } = spec.clockSkew
    const pool = [...ids]
    const count = Math.round(share * pool.length)
    for (let i = 0; i < count; i++) {
      const j = i + fork.int(pool.length - i)
      const node = pool[j]!
      pool[j] = pool[i]!
      pool[i] = node
      const offsetMs = Math.round((fork.next() * 2 - 1) * maxOffsetMs)
      drawn.push({ at: spec.fromMs, id: nextId(), origin: 'faults.random.clockSkew', event: 'clockSkew', nodes: [node], offsetMs })
    }
  }
}

/**
 * Crashes (any node) and churn (nodes that serve nothing): a nodeCrash, then a nodeRestart downMs
 * later unless that is past the run. Nodes the hand-written timeline names are left alone, and a
 * node's down intervals never touch, so every drawn event is one the timeline parser would accept.
 */
function drawCrashes (scenario: Scenario, spec: RandomFaults, random: Random): TimelineEvent[] {
  const named = new Set(scenario.timeline.map((event) => event.node))
  const origins = new Set(scenario.services.flatMap((service) => service.origins))
  const down = new Map<string, Array<[number, number]>>()
  const events: TimelineEvent[] = []
  const isFree = (node: string, from: number, to: number): boolean =>
    (down.get(node) ?? []).every(([start, end]) => to < start || from > end)
  for (const kind of ['crashes', 'churn'] as const) {
    const options = spec[kind]
    if (options === undefined) continue
    const fork = random.fork(kind)
    const pool = scenario.nodes.map((node) => node.id).filter((id) => !named.has(id) && (kind === 'crashes' || !origins.has(id)))
    if (pool.length === 0) continue
    for (const at of poissonArrivals(fork, options.perMinute, spec.fromMs, spec.untilMs)) {
      const restartAt = at + options.downMs
      const until = restartAt < scenario.durationMs ? restartAt : Infinity
      let node: string | undefined
      for (let pick = 0; pick < MAX_PICKS && node === undefined; pick++) {
        const candidate = pool[fork.int(pool.length)]!
        if (isFree(candidate, at, until)) node = candidate
      }
      const wiped = fork.next() < options.wipedShare
      if (node === undefined) continue
      down.set(node, [...(down.get(node) ?? []), [at, until]])
      events.push({ at, event: 'nodeCrash', node })
      if (until !== Infinity) events.push({ at: restartAt, event: 'nodeRestart', node, state: wiped ? 'wiped' : 'kept' })
    }
  }
  return events
}
