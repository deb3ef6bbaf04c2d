// The shipped fault scenarios run end to end at reduced size (fewer nodes, same timeline) and
// pass every check; random faults are drawn from the seed alone, so a run replays exactly.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync } from 'node:fs'
import { loadScenario, parseScenario, type Scenario } from '../../simulations/scenario.ts'
import { runScenario, type RunResult } from '../../simulations/runner.ts'
import { poissonArrivals, withRandomFaults } from '../../simulations/random-faults.ts'
import { createRandom } from '../../src/runtime/random.ts'

/** A shipped scenario with `count` generated nodes instead of its own. */
function reduced (file: string, count: number): Scenario {
  const raw = JSON.parse(readFileSync(file, 'utf8')) as { generate: { count: number } }
  raw.generate.count = count
  return parseScenario(raw, file)
}

function assertPassed (run: RunResult): void {
  for (const [name, check] of Object.entries(run.checks)) assert.ok(check.passed, `seed ${run.seed} ${name}: ${check.examples.slice(0, 3).join('; ')}`)
  for (const event of run.convergence.events) assert.ok(event.convergedMs !== null, `${event.event} of ${event.node} never converged: ${event.laggards?.join(', ')}`)
  assert.ok(run.passed)
}

test('fault scenarios: region-partition (24 nodes) — Europe cut off, then Asia → North America one way; every check passes, seed 1', async () => {
  const lines: string[] = []
  const run = await runScenario(reduced('simulations/region-partition.json', 24), 1, { log: (line) => lines.push(line) })
  assertPassed(run)
  assert.ok(lines.some((line) => /t=10 s: partition \d+ nodes ↔ the rest for 10000 ms/.test(line)), lines.join('\n'))
  assert.ok(lines.some((line) => /t=30 s: partition \d+ nodes → .+ for 6000 ms/.test(line)), lines.join('\n'))
  assert.is(run.convergence.byType.serviceDown.samples, 1)
})

test('fault scenarios: flapping-service (24 nodes) — six clean flaps and a second failure all converge within 2 s, seed 2', async () => {
  const run = await runScenario(reduced('simulations/flapping-service.json', 24), 2)
  assertPassed(run)
  assert.is(run.convergence.byType.serviceDown.samples, 7)
  assert.ok(run.convergence.byType.serviceDown.maxMs! <= 2000)
})

test('fault scenarios: nat-heavy (24 nodes, 60 % behind NAT, hole punching) — NATed nodes keep sessions, two symmetric NATs never connect, every origin stays reachable and every check passes, seed 1', async () => {
  const scenario = reduced('simulations/nat-heavy.json', 24)
  const natted = scenario.nodes.filter((node) => node.nat === true).map((node) => node.id)
  assert.is(natted.length, 14)
  let looked = 0
  const run = await runScenario(scenario, 1, {
    inject: (world, atMs) => {
      if (atMs !== 24_000) return
      looked++
      for (const id of natted) {
        const host = world.hosts.get(id)!
        assert.ok(host.sessions().some((session) => session.established), `${id} has no established session`)
        const symmetric = (peer: string): boolean => world.network.natType(peer) === 'symmetric'
        if (symmetric(id)) assert.ok(world.network.overlay(id)!.connectedPeers().every((peer) => !symmetric(peer)), `${id} is connected to another symmetric NAT`)
      }
    }
  })
  assert.is(looked, 1)
  assertPassed(run)
  assert.is(run.nat!.reachableShare, 1)
  assert.ok(run.nat!.holePunch.punched > 0, JSON.stringify(run.nat!.holePunch))
  assert.is(run.convergence.byType.nodeCrash.samples, 1)
})

test('fault scenarios: nat-heavy (60 nodes) — GeoDNS keeps answering NATed origins a node reaches only through relays (its route for the prefix may not use them: a prefix\'s relay paths open only when its route wants one), seed 2', async () => {
  // Seed 2 answered 89.6 % of first answers right while the zone read reachability from the
  // route's gated candidate paths; 100 % once it reads any overlay path to the origin.
  const run = await runScenario(loadScenario('simulations/nat-heavy.json'), 2)
  assertPassed(run)
  assert.ok((run.dns?.accuracy ?? 0) >= 0.99, `dns accuracy ${run.dns?.accuracy}`)
})

test('fault scenarios: churn (24 nodes) — members leave and rejoin with new keys while a service fails; every check passes, seed 1', async () => {
  const lines: string[] = []
  const scenario = reduced('simulations/churn.json', 24)
  const run = await runScenario(scenario, 1, { log: (line) => lines.push(line) })
  assertPassed(run)
  const drawn = withRandomFaults(scenario, 1).timeline
  assert.ok(drawn.filter((event) => event.event === 'nodeCrash').length >= 2, drawn.map((event) => `${event.at} ${event.event} ${event.node}`).join('; '))
  for (const event of drawn.filter((candidate) => candidate.event === 'nodeRestart')) {
    assert.ok(lines.some((line) => line.includes(`nodeRestart ${event.node}`)), `restart of ${event.node} was run`)
  }
})

/** 12 nodes, 14 s, every kind of random fault at a high rate. */
const everyFault = {
  name: 'every-fault',
  durationMs: 14_000,
  degree: 4,
  generate: { count: 12, spreadKm: 50, seed: 1, regions: ['eu', 'na'], include: ['london', 'chicago'] },
  services: [{ name: 'api', prefix: '10.42.255.1/32', origins: ['london-0', 'chicago-0'] }],
  timeline: [],
  faults: {
    random: {
      fromMs: 1000,
      untilMs: 12_000,
      lossSpikes: { perMinute: 40, rate: 0.3, durationMs: 1000 },
      delaySpikes: { perMinute: 40, extraMs: 50, jitterMs: 20, durationMs: 1000 },
      reordering: { perMinute: 40, rate: 0.5, windowMs: 30, durationMs: 1000 },
      partitions: { perMinute: 40, durationMs: 1000, oneWayShare: 0.5 },
      crashes: { perMinute: 10, downMs: 5000 },
      stalls: { perMinute: 30, durationMs: 300 },
      clockSkew: { share: 0.3, maxOffsetMs: 2000 }
    }
  },
  expect: { steadyAfterMs: 1000 }
}

test('fault scenarios: random faults give the same trace hash twice for one seed and another for another seed, seeds 3 and 4', async () => {
  const scenario = parseScenario(everyFault, 'every-fault.json')
  const first = await runScenario(scenario, 3)
  const second = await runScenario(scenario, 3)
  const other = await runScenario(scenario, 4)
  assert.is(first.traceHash, second.traceHash)
  assert.equal(first.convergence, second.convergence)
  assert.is.not(other.traceHash, first.traceHash)
  const kinds = new Set(withRandomFaults(scenario, 3).faults.map((fault) => fault.event))
  for (const kind of ['loss', 'delay', 'reorder', 'partition', 'cpuStall', 'clockSkew', 'faultEnd']) assert.ok(kinds.has(kind as never), `seed 3 drew no ${kind}`)
  assert.equal(withRandomFaults(scenario, 3), withRandomFaults(scenario, 3))
  assert.not.equal(withRandomFaults(scenario, 4).faults, withRandomFaults(scenario, 3).faults)
})

test('fault scenarios: churn removes and re-adds as many nodes as the seed\'s arrivals, never an origin or a node the timeline names, seeds 1–5', () => {
  const value = {
    ...everyFault,
    durationMs: 60_000,
    generate: { ...everyFault.generate, count: 50 },
    faults: { random: { fromMs: 2000, untilMs: 50_000, churn: { perMinute: 12, downMs: 8000, wipedShare: 0.5 } } },
    expect: { steadyAfterMs: 8000 }
  }
  const origins = new Set(['london-0', 'chicago-0'])
  const states = new Set<string | undefined>()
  const named = parseScenario(value, 'churn.json').nodes.find((node) => !origins.has(node.id))!.id
  const scenario = parseScenario({ ...value, timeline: [{ at: 5000, event: 'nodeCrash', node: named }] }, 'churn.json')
  for (const seed of [1, 2, 3, 4, 5]) {
    const arrivals = poissonArrivals(createRandom(seed).fork('random-faults').fork('churn'), 12, 2000, 50_000)
    const timeline = withRandomFaults(scenario, seed).timeline.filter((event) => event.node !== named)
    const crashes = timeline.filter((event) => event.event === 'nodeCrash')
    const restarts = timeline.filter((event) => event.event === 'nodeRestart')
    assert.equal(crashes.map((event) => event.at), arrivals, `seed ${seed}: one leave per arrival`)
    assert.is(restarts.length, crashes.length, `seed ${seed}: every leaver rejoins (all within the run)`)
    for (const crash of crashes) {
      assert.ok(!origins.has(crash.node), `seed ${seed}: churned an origin`)
      assert.ok(restarts.some((restart) => restart.node === crash.node && restart.at === crash.at + 8000), `seed ${seed}: ${crash.node} rejoins 8 s later`)
    }
    for (const restart of restarts) states.add(restart.state)
    assert.ok(arrivals.length >= 4 && arrivals.length <= 20, `seed ${seed}: ${arrivals.length} arrivals for a mean of 9.6`)
  }
  assert.equal([...states].sort(), ['kept', 'wiped'], 'wipedShare 0.5 gives both kinds of rejoin')
})

test.run()
