// NAT in scenarios: the `nat` field (hole punching on), its validation, and what a run reports —
// every node still reaching every healthy origin (directly or through a relay), the share of
// NAT-affected pairs that ended direct, and the originsReachable check failing when a node is cut off.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { parseScenario } from '../../simulations/scenario.ts'
import { runScenario } from '../../simulations/runner.ts'
import { miniScenario } from '../support/mini-scenario.ts'

const nodes = [
  { id: 'fra', lat: 50.11, lon: 8.68 },
  { id: 'lon', lat: 51.51, lon: -0.13 },
  { id: 'nyc', lat: 40.71, lon: -74.01 },
  { id: 'chi', lat: 41.85, lon: -87.65 },
  { id: 'sin', lat: 1.35, lon: 103.82 }
]
const base = { name: 'tiny', durationMs: 20_000, degree: 2, nodes, services: [{ name: 'api', prefix: '10.42.255.1/32', origins: ['fra', 'nyc'] }], timeline: [] }

test('scenario nat: bad values are rejected naming the field', () => {
  const rejected: Array<[unknown, RegExp]> = [
    [{ nat: { symmetricShare: 0.1 } }, /nat\.share: is required/],
    [{ nat: { share: 0.4, punchSuccess: 2 } }, /nat\.punchSuccess: must be between 0 and 1, got 2/],
    [{ nat: { share: 0.4, symmetricShare: -1 } }, /nat\.symmetricShare: must be between 0 and 1, got -1/],
    [{ nat: { share: 0.4, attempts: 0 } }, /nat\.attempts: must be between 1 and 10, got 0/],
    [{ nat: { share: 0.4, origins: 'yes' } }, /nat\.origins: must be true or false/],
    [{ nat: { share: 0.4, typo: 1 } }, /nat: unknown key "typo"|nat\.typo/],
    [{ nat: { share: 0.8 } }, /nat\.share: 0\.8 of 5 nodes is 4, but only 3 nodes serve nothing and may sit behind NAT/],
    [{ natShare: 0.4, nat: { share: 0.4 } }, /natShare: cannot be given together with "nat"/]
  ]
  for (const [changes, pattern] of rejected) {
    assert.throws(() => parseScenario({ ...base, ...changes as object }, 't.json'), pattern, JSON.stringify(changes))
  }
})

test('scenario nat: defaults, origins behind NAT when asked, natShare still means NAT without hole punching', () => {
  const nat = parseScenario({ ...base, nat: { share: 0.8, origins: true } }, 't.json')
  assert.equal(nat.nat, { symmetricShare: 0.25, punchSuccess: 0.9, attempts: 3 })
  assert.is(nat.nodes.filter((node) => node.nat === true).length, 4)
  assert.ok(nat.nodes.some((node) => node.nat === true && (node.id === 'fra' || node.id === 'nyc')), 'an origin sits behind NAT')
  const legacy = parseScenario({ ...base, natShare: 0.4 }, 't.json')
  assert.is(legacy.nat, undefined)
  assert.is(legacy.nodes.filter((node) => node.nat === true).length, 2)
})

test('runner nat: every symmetric NAT (origins included) — every node still reaches every healthy origin, some pairs only through a relay, seed 1', async () => {
  const run = await runScenario(miniScenario({ nat: { share: 0.5, origins: true, symmetricShare: 1 } }), 1)
  const nat = run.nat!
  assert.ok(nat.natNodes === 10 && nat.symmetricNodes === 10, JSON.stringify(nat))
  assert.is(nat.reachableShare, 1)
  assert.equal(nat.unreachable, [])
  assert.ok(run.checks.originsReachable!.passed)
  // Two symmetric NATs never punch: those pairs end relayed; reversals still make public–NATed pairs direct.
  assert.ok(nat.holePunch.failedPairs > 0 && nat.holePunch.punched === 0 && nat.holePunch.reversals > 0, JSON.stringify(nat.holePunch))
  assert.ok(nat.relayedOnly > 0, JSON.stringify(nat))
  assert.ok(nat.directPathShare! < 1 && nat.directPathShare! > 0, JSON.stringify(nat))
  assert.is(nat.originsReachedPerNode.min, 1)
})

test('runner nat: punchable NATs that always punch end direct for every NAT pair (16 s: 9 s after the last restart), seed 1', async () => {
  const run = await runScenario(miniScenario({ nat: { share: 0.5, origins: true, symmetricShare: 0, punchSuccess: 1 }, durationMs: 16_000 }), 1)
  const nat = run.nat!
  assert.is(nat.symmetricNodes, 0)
  assert.is(nat.reachableShare, 1)
  assert.ok(nat.holePunch.punched > 0 && nat.holePunch.failedPairs === 0, JSON.stringify(nat.holePunch))
  assert.is(nat.directPathShare, 1)
  assert.is(nat.relayedOnly, 0)
})

test('runner nat: a node cut off from everyone fails originsReachable, naming it, seed 2', async () => {
  const scenario = miniScenario({ nat: { share: 0.5, origins: true } })
  const victim = scenario.nodes.find((node) => node.nat === true && !scenario.services.some((service) => service.origins.includes(node.id)))!.id
  const run = await runScenario(scenario, 2, {
    inject: (world, atMs) => { if (atMs === 3000) world.network.partition([victim], scenario.nodes.map((node) => node.id).filter((id) => id !== victim)) }
  })
  const check = run.checks.originsReachable!
  assert.is(check.passed, false)
  assert.ok(check.violations > 0)
  assert.ok(check.examples.every((example) => example.startsWith(`${victim} → `)), check.examples.join('; '))
  assert.ok(run.nat!.reachableShare! < 1)
  assert.ok(run.nat!.originsReachedPerNode.min! < 1)
})

test('runner: scenarios without NAT have no nat report and no originsReachable check', async () => {
  const run = await runScenario(miniScenario(), 3)
  assert.is(run.nat, undefined)
  assert.is(run.checks.originsReachable, undefined)
})

test.run()
