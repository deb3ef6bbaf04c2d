import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError } from '../../src/runtime/config.ts'
import { main } from '../../src/runtime/cli.ts'
import { apportion, loadScenario, parseScenario } from '../../simulations/scenario.ts'
import { greatCircleKm } from '../../simulations/latency.ts'

const nodes = [
  { id: 'fra', lat: 50.11, lon: 8.68 },
  { id: 'nyc', lat: 40.71, lon: -74.01 },
  { id: 'sin', lat: 1.35, lon: 103.82 },
  { id: 'lon', lat: 51.51, lon: -0.13 }
]
const base = {
  name: 'tiny',
  durationMs: 20_000,
  degree: 2,
  nodes,
  services: [{ name: 'api', prefix: '10.42.255.1/32', origins: ['fra', 'nyc'] }],
  timeline: [
    { at: 5000, event: 'serviceDown', node: 'fra', service: 'api' },
    { at: 8000, event: 'nodeCrash', node: 'nyc' },
    { at: 12_000, event: 'serviceUp', node: 'fra', service: 'api' }
  ]
}

function withTimeline (...timeline: unknown[]): unknown { return { ...base, timeline } }

test('scenario: a minimal scenario gets the default world, expectations and protocol', () => {
  const scenario = parseScenario(base, 'tiny.json')
  assert.is(scenario.source, 'tiny.json')
  assert.equal(scenario.world, { inflation: 1.5, linkBaseMs: 1, jitterFraction: 0, jitterMs: 0, lossRate: 0, regions: [] })
  assert.equal(scenario.clients, [])
  assert.equal(scenario.faults, [])
  assert.is(scenario.randomFaults, undefined)
  assert.equal(scenario.expect, { convergenceP99Ms: { serviceDown: 2000, nodeCrash: 3000 }, optimality: 0.99, steadyAfterMs: 8000, stateConvergenceMs: 10_000, originReachability: 1, dnsAccuracy: { steady: 0.95, converged: 0 } })
  assert.equal(scenario.protocol, {})
  assert.is(scenario.services[0]!.preference, 100)
  assert.is(scenario.timeline.length, 3)
})

const rejected: Array<[string, unknown, RegExp]> = [
  ['not an object', [], /^tiny\.json: must be an object, got an array$/],
  ['unknown top-level key', { ...base, colour: 'red' }, /tiny\.json: colour: unknown key \(allowed: name, /],
  ['missing name', { ...base, name: undefined }, /tiny\.json: name: is required/],
  ['bad name', { ...base, name: 'Tiny Scenario' }, /name: must be lowercase letters, digits and dashes/],
  ['duration not an integer', { ...base, durationMs: 2.5e3 + 0.5 }, /durationMs: must be an integer, got 2500\.5/],
  ['duration too short', { ...base, durationMs: 10 }, /durationMs: must be between 1000 and 3600000, got 10/],
  ['neither nodes nor generate', { ...base, nodes: undefined }, /nodes: is required \(or "generate"\)/],
  ['both nodes and generate', { ...base, generate: { count: 10, sites: [{ name: 'a', lat: 0, lon: 0 }] } }, /generate: cannot be given together with "nodes"/],
  ['one node', { ...base, nodes: [nodes[0]] }, /nodes: must have at least 2 entries/],
  ['duplicate node id', { ...base, nodes: [...nodes, nodes[0]] }, /nodes\[4\]\.id: duplicate node id "fra"/],
  ['latitude out of range', { ...base, nodes: [{ id: 'x', lat: 91, lon: 0 }, ...nodes] }, /nodes\[0\]\.lat: must be between -90 and 90, got 91/],
  ['latitude as text', { ...base, nodes: [{ id: 'x', lat: '50', lon: 0 }, ...nodes] }, /nodes\[0\]\.lat: must be a number, got the string "50"/],
  ['unknown node key', { ...base, nodes: [{ ...nodes[0], city: 'Frankfurt' }, ...nodes.slice(1)] }, /nodes\[0\]\.city: unknown key/],
  ['degree not below node count', { ...base, degree: 4 }, /degree: must be below the number of nodes \(4\), got 4/],
  ['world loss above bound', { ...base, world: { lossRate: 0.9 } }, /world\.lossRate: must be between 0 and 0\.5, got 0\.9/],
  ['world inflation below 1', { ...base, world: { inflation: 0.5 } }, /world\.inflation: must be between 1 and 10/],
  ['generate site weight', { ...base, nodes: undefined, generate: { count: 10, sites: [{ name: 'a', lat: 0, lon: 0, weight: 0 }] } }, /generate\.sites\[0\]\.weight: must be between 0\.001/],
  ['generate fewer nodes than sites', { ...base, nodes: undefined, generate: { count: 2, sites: [{ name: 'a', lat: 0, lon: 0 }, { name: 'b', lat: 1, lon: 1 }, { name: 'c', lat: 2, lon: 2 }] } }, /generate\.count: must be between 3 and 10000, got 2/],
  ['generate duplicate site', { ...base, nodes: undefined, generate: { count: 5, sites: [{ name: 'a', lat: 0, lon: 0 }, { name: 'a', lat: 1, lon: 1 }] } }, /generate\.sites\[1\]\.name: duplicate site "a"/],
  ['no services', { ...base, services: [] }, /services: must have at least 1 entry/],
  ['service prefix not CIDR', { ...base, services: [{ ...base.services[0], prefix: '10.42.255.300/32' }] }, /services\[0\]\.prefix: .*300/],
  ['service prefix host bits', { ...base, services: [{ ...base.services[0], prefix: '10.42.255.1/24' }] }, /services\[0\]\.prefix: .*host bits are set/],
  ['service origin unknown', { ...base, services: [{ ...base.services[0], origins: ['fra', 'tokyo'] }] }, /services\[0\]\.origins\[1\]: unknown node "tokyo"/],
  ['service origin twice', { ...base, services: [{ ...base.services[0], origins: ['fra', 'fra'] }] }, /services\[0\]\.origins: lists "fra" twice/],
  ['duplicate service name', { ...base, services: [base.services[0], { ...base.services[0], prefix: '10.42.255.2/32' }] }, /services\[1\]\.name: duplicate service "api"/],
  ['duplicate prefix', { ...base, services: [base.services[0], { ...base.services[0], name: 'web' }] }, /services\[1\]\.prefix: prefix 10\.42\.255\.1\/32 is already used/],
  ['event beyond the duration', withTimeline({ at: 20_000, event: 'nodeCrash', node: 'sin' }), /timeline\[0\]\.at: must be between 0 and 19999, got 20000/],
  ['events out of order', withTimeline({ at: 5000, event: 'nodeCrash', node: 'sin' }, { at: 4000, event: 'nodeCrash', node: 'lon' }), /timeline\[1\]\.at: must not be earlier than timeline\[0\]\.at \(5000\), got 4000/],
  ['unknown event', withTimeline({ at: 1000, event: 'nodeReboot', node: 'sin' }), /timeline\[0\]\.event: must be one of serviceDown, serviceUp, nodeCrash, nodeRestart, serviceFlap, partition, loss, delay, reorder, clockSkew, cpuStall, got "nodeReboot"/],
  ['event on an unknown node', withTimeline({ at: 1000, event: 'nodeCrash', node: 'tokyo' }), /timeline\[0\]\.node: unknown node "tokyo"/],
  ['serviceDown without service', withTimeline({ at: 1000, event: 'serviceDown', node: 'fra' }), /timeline\[0\]\.service: is required for serviceDown/],
  ['serviceDown on a non-origin', withTimeline({ at: 1000, event: 'serviceDown', node: 'sin', service: 'api' }), /timeline\[0\]\.node: sin is not an origin of api/],
  ['serviceDown of an unknown service', withTimeline({ at: 1000, event: 'serviceDown', node: 'fra', service: 'web' }), /timeline\[0\]\.service: unknown service "web"/],
  ['service taken down twice', withTimeline({ at: 1000, event: 'serviceDown', node: 'fra', service: 'api' }, { at: 2000, event: 'serviceDown', node: 'fra', service: 'api' }), /timeline\[1\]\.event: api on fra is already down/],
  ['serviceUp of a running service', withTimeline({ at: 1000, event: 'serviceUp', node: 'fra', service: 'api' }), /timeline\[0\]\.event: api on fra is not down/],
  ['restart of a live node', withTimeline({ at: 1000, event: 'nodeRestart', node: 'sin' }), /timeline\[0\]\.event: sin has not crashed/],
  ['restart too soon after the crash', withTimeline({ at: 1000, event: 'nodeCrash', node: 'sin' }, { at: 4000, event: 'nodeRestart', node: 'sin' }), /timeline\[1\]\.event: sin crashed at 1000 and cannot restart before 6000/],
  ['crash twice', withTimeline({ at: 1000, event: 'nodeCrash', node: 'sin' }, { at: 2000, event: 'nodeCrash', node: 'sin' }), /timeline\[1\]\.event: sin has already crashed/],
  ['service on a crash', withTimeline({ at: 1000, event: 'nodeCrash', node: 'sin', service: 'api' }), /timeline\[0\]\.service: not allowed for nodeCrash/],
  ['unknown event key', withTimeline({ at: 1000, event: 'nodeCrash', node: 'sin', reason: 'x' }), /timeline\[0\]\.reason: unknown key/],
  ['probe timeout above interval', { ...base, protocol: { originProbe: { intervalMs: 500, timeoutMs: 900 } } }, /protocol\.originProbe\.timeoutMs: must not exceed protocol\.originProbe\.intervalMs \(500\)/],
  ['probe jitter of 1', { ...base, protocol: { serviceProbe: { jitter: 1 } } }, /protocol\.serviceProbe\.jitter: must be between 0 and 0\.99/],
  ['unknown protocol key', { ...base, protocol: { gossipD: 8 } }, /protocol\.gossipD: unknown key/],
  ['unknown expectation', { ...base, expect: { convergenceP99Ms: { serviceUp: 100 } } }, /expect\.convergenceP99Ms\.serviceUp: unknown key \(allowed: serviceDown, nodeCrash\)/],
  ['optimality above 1', { ...base, expect: { optimality: 99 } }, /expect\.optimality: must be between 0 and 1, got 99/],
  ['DNS accuracy as a bare number', { ...base, expect: { dnsAccuracy: 0.9 } }, /expect\.dnsAccuracy: must be an object, got number 0\.9/],
  ['DNS accuracy bound above 1', { ...base, expect: { dnsAccuracy: { steady: 95 } } }, /expect\.dnsAccuracy\.steady: must be between 0 and 1, got 95/],
  ['DNS accuracy for an unknown phase', { ...base, expect: { dnsAccuracy: { end: 0.5 } } }, /expect\.dnsAccuracy\.end: unknown key \(allowed: steady, converged\)/]
]

for (const [label, value, pattern] of rejected) {
  test(`scenario: rejects ${label}`, () => {
    try {
      parseScenario(value, 'tiny.json')
      assert.unreachable('should have thrown')
    } catch (error) {
      assert.instance(error, ConfigError)
      assert.match((error as Error).message, /^tiny\.json: /)
      assert.match((error as Error).message, pattern)
      assert.not.match((error as Error).message, /\n/, 'one line')
    }
  })
}

test('scenario: generated nodes are spread by weight, <site>-0 at the site, the rest within spreadKm, the same every time', () => {
  const sites = [{ name: 'fra', lat: 50.11, lon: 8.68, weight: 3 }, { name: 'sin', lat: 1.35, lon: 103.82, weight: 1 }]
  const value = { ...base, nodes: undefined, generate: { count: 40, spreadKm: 200, sites }, services: [{ name: 'api', prefix: '10.42.255.1/32', origins: ['fra-0', 'sin-0'] }], timeline: [] }
  const first = parseScenario(value, 'g.json')
  const second = parseScenario(value, 'g.json')
  assert.equal(first.nodes, second.nodes)
  assert.is(first.nodes.length, 40)
  assert.is(first.nodes.filter((node) => node.id.startsWith('fra-')).length, 30)
  assert.equal(first.nodes.find((node) => node.id === 'sin-0'), { id: 'sin-0', lat: 1.35, lon: 103.82 })
  for (const node of first.nodes) {
    const site = sites.find((candidate) => node.id.startsWith(`${candidate.name}-`))!
    assert.ok(greatCircleKm(site, node) <= 200.1, `${node.id} is ${greatCircleKm(site, node).toFixed(1)} km from ${site.name}`)
  }
  const reseeded = parseScenario({ ...value, generate: { ...value.generate, seed: 2 } }, 'g.json')
  assert.not.equal(reseeded.nodes, first.nodes)
})

const apportioned: Array<[number, number[], number[]]> = [
  [10, [1, 1], [5, 5]],
  [10, [3, 1], [7, 3]],
  [3, [100, 1, 1], [1, 1, 1]],
  [7, [1, 1, 1], [3, 2, 2]],
  [1000, [37.4, 5.3], [875, 125]]
]
for (const [total, weights, expected] of apportioned) {
  test(`scenario: apportion ${total} by ${weights.join(':')} gives ${expected.join(', ')} (at least one each, sums to the total)`, () => {
    const counts = apportion(total, weights)
    assert.equal(counts, expected)
    assert.is(counts.reduce((a, b) => a + b, 0), total)
  })
}

test('scenario: the shipped scenarios parse; origin-failover is 1,000 nodes, 3 prefixes × 5 origins on 5 continents', () => {
  const big = loadScenario('simulations/origin-failover.json')
  assert.is(big.nodes.length, 1000)
  assert.equal(big.services.map((service) => service.prefix), ['10.42.255.1/32', '10.42.255.2/32', '10.42.255.3/32'])
  for (const service of big.services) {
    assert.is(service.origins.length, 5)
    const regions = new Set(service.origins.map((origin) => big.nodes.find((node) => node.id === origin)!.region))
    assert.is(regions.size, 5, `${service.name} origins span ${[...regions].join(', ')}`)
  }
  assert.equal(big.timeline.map((event) => event.event), ['serviceDown', 'nodeCrash', 'serviceUp', 'nodeRestart'])
  for (const file of ['simulations/small-failover.json', 'simulations/stale-reach-report.json']) assert.ok(loadScenario(file).nodes.length <= 100)
})

test('scenario: file problems name the file: missing, bad JSON', () => {
  const dir = mkdtempSync(join(tmpdir(), 'form-anycast-scenario-'))
  try {
    assert.throws(() => loadScenario(join(dir, 'nope.json')), /nope\.json: scenario file not found/)
    writeFileSync(join(dir, 'bad.json'), '{"name": ')
    assert.throws(() => loadScenario(join(dir, 'bad.json')), /bad\.json: not valid JSON/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('scenario: `form-anycast sim` exits 2 with one line naming file and field for a bad scenario or flag', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'form-anycast-scenario-'))
  try {
    const file = join(dir, 'broken.json')
    writeFileSync(file, JSON.stringify(withTimeline({ at: 1000, event: 'nodeRestart', node: 'sin' })))
    const lines: string[] = []
    const io = { out: (line: string) => lines.push(line), err: (line: string) => lines.push(line) }
    assert.is(await main(['node', 'form-anycast', 'sim', file], io), 2)
    assert.equal(lines, [`form-anycast: ${file}: timeline[0].event: sin has not crashed`])
    lines.length = 0
    assert.is(await main(['node', 'form-anycast', 'sim', file, '--seeds', '0'], io), 2)
    assert.match(lines.join('\n'), /--seeds must be an integer from 1 to 1000, got "0"/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
