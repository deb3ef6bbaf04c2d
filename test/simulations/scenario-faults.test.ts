// The scenario fields of the simulator's input side: nodes and clients from the bundled cities,
// NAT, region latency overrides, timeline fault events and random faults. Each bad value is
// rejected with one line naming the file and the field.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readdirSync } from 'node:fs'
import { ConfigError } from '../../src/runtime/config.ts'
import { loadScenario, parseScenario } from '../../simulations/scenario.ts'
import { citiesIn, loadCities } from '../../simulations/cities.ts'
import { greatCircleKm } from '../../simulations/latency.ts'

const nodes = [
  { id: 'fra', lat: 50.11, lon: 8.68, region: 'eu' },
  { id: 'lon', lat: 51.51, lon: -0.13, region: 'eu' },
  { id: 'nyc', lat: 40.71, lon: -74.01, region: 'na' },
  { id: 'chi', lat: 41.85, lon: -87.65, region: 'na' },
  { id: 'sin', lat: 1.35, lon: 103.82, region: 'ap' }
]
const base = {
  name: 'tiny',
  durationMs: 20_000,
  degree: 2,
  nodes,
  services: [{ name: 'api', prefix: '10.42.255.1/32', origins: ['fra', 'nyc'] }],
  timeline: [] as unknown[]
}
const at = (event: Record<string, unknown>): unknown => ({ ...base, timeline: [{ at: 1000, ...event }] })
const cities = { ...base, nodes: undefined, services: [{ name: 'api', prefix: '10.42.255.1/32', origins: ['london-0'] }] }

const rejected: Array<[string, unknown, RegExp]> = [
  ['generate: regions with sites', { ...base, nodes: undefined, generate: { count: 5, regions: ['eu'], sites: [{ name: 'a', lat: 0, lon: 0 }] } }, /generate\.regions: draws from the bundled cities; it cannot be given together with "sites"/],
  ['generate: unknown region', { ...cities, generate: { count: 5, regions: ['europe'] } }, /generate\.regions\[0\]: must be one of af, ap, eu, me, na, oc, sa, got "europe"/],
  ['generate: region twice', { ...cities, generate: { count: 5, regions: ['eu', 'eu'] } }, /generate\.regions: lists "eu" twice/],
  ['generate: unknown city', { ...cities, generate: { count: 5, include: ['atlantis'] } }, /generate\.include\[0\]: no city "atlantis" in the bundled cities/],
  ['generate: city outside the regions', { ...cities, generate: { count: 5, regions: ['ap'], include: ['london'] } }, /generate\.include\[0\]: no city "london" in the bundled cities of ap/],
  ['generate: one node', { ...cities, generate: { count: 1 } }, /generate\.count: must be between 2 and 10000, got 1/],
  ['natShare: above 0.95', { ...base, natShare: 1 }, /natShare: must be between 0 and 0\.95, got 1/],
  ['natShare: more than the nodes serving nothing', { ...base, natShare: 0.9 }, /natShare: 0\.9 of 5 nodes is 5, but only 3 nodes serve nothing/],
  ['node nat: not a boolean', { ...base, nodes: [{ ...nodes[0], nat: 'yes' }, ...nodes.slice(1)] }, /nodes\[0\]\.nat: must be true or false, got the string "yes"/],
  ['node nat: every node', { ...base, nodes: nodes.map((node) => ({ ...node, nat: true })) }, /nodes: every node is behind NAT/],
  ['clients: duplicate id', { ...base, clients: [{ id: 'c', lat: 0, lon: 0 }, { id: 'c', lat: 1, lon: 1 }] }, /clients\[1\]\.id: duplicate client id "c"/],
  ['clients: bad longitude', { ...base, clients: [{ id: 'c', lat: 0, lon: 200 }] }, /clients\[0\]\.lon: must be between -180 and 180, got 200/],
  ['clients: generated without a count', { ...base, clients: { regions: ['eu'] } }, /clients\.count: is required/],
  ['clients: generated in an unknown region', { ...base, clients: { count: 3, regions: ['mars'] } }, /clients\.regions\[0\]: must be one of/],
  ['world.regions: a pair with one region', { ...base, world: { regions: [{ between: ['eu'], inflation: 2 }] } }, /world\.regions\[0\]\.between: must have at least 2 entries/],
  ['world.regions: the same pair twice', { ...base, world: { regions: [{ between: ['eu', 'na'], inflation: 2 }, { between: ['na', 'eu'], linkBaseMs: 3 }] } }, /world\.regions\[1\]\.between: na – eu is already set by an earlier entry/],
  ['world.regions: sets nothing', { ...base, world: { regions: [{ between: ['eu', 'na'] }] } }, /world\.regions\[0\]: sets nothing/],
  ['world.regions: inflation below 1', { ...base, world: { regions: [{ between: ['eu', 'na'], inflation: 0.5 }] } }, /world\.regions\[0\]\.inflation: must be between 1 and 10, got 0\.5/],
  ['world.jitterMs: negative', { ...base, world: { jitterMs: -1 } }, /world\.jitterMs: must be between 0 and 1000, got -1/],
  ['partition: no sets', at({ event: 'partition' }), /timeline\[0\]\.between: is required/],
  ['partition: unknown region', at({ event: 'partition', between: [{ regions: ['oc'] }] }), /timeline\[0\]\.between\[0\]\.regions\[0\]: no node is in region "oc" \(regions: eu, na, ap\)/],
  ['partition: unknown node', at({ event: 'partition', between: [{ nodes: ['tokyo'] }] }), /timeline\[0\]\.between\[0\]\.nodes\[0\]: unknown node "tokyo"/],
  ['partition: regions and nodes', at({ event: 'partition', between: [{ regions: ['eu'], nodes: ['fra'] }] }), /timeline\[0\]\.between\[0\]: must have exactly one of "regions" and "nodes"/],
  ['partition: overlapping sets', at({ event: 'partition', between: [{ regions: ['eu'] }, { nodes: ['fra', 'nyc'] }] }), /timeline\[0\]\.between\[1\]: shares node "fra" with between\[0\]/],
  ['partition: everybody against nobody', at({ event: 'partition', between: [{ regions: ['eu', 'na', 'ap'] }] }), /timeline\[0\]\.between\[0\]: holds every node/],
  ['partition: past the run', at({ event: 'partition', between: [{ regions: ['eu'] }], durationMs: 30_000 }), /timeline\[0\]\.durationMs: must be between 1 and 19000, got 30000/],
  ['partition: oneWay not a boolean', at({ event: 'partition', between: [{ regions: ['eu'] }], oneWay: 1 }), /timeline\[0\]\.oneWay: must be true or false/],
  ['partition: a key of another fault', at({ event: 'partition', between: [{ regions: ['eu'] }], rate: 0.5 }), /timeline\[0\]\.rate: unknown key \(allowed: at, event, between, oneWay, durationMs\)/],
  ['loss: rate above 1', at({ event: 'loss', rate: 1.5 }), /timeline\[0\]\.rate: must be between 0 and 1, got 1\.5/],
  ['loss: one-way without sets', at({ event: 'loss', rate: 0.5, oneWay: true }), /timeline\[0\]\.oneWay: needs "between"/],
  ['delay: nothing to add', at({ event: 'delay', durationMs: 1000 }), /timeline\[0\]: needs "extraMs" or "jitterMs" above 0/],
  ['reorder: no window', at({ event: 'reorder', rate: 0.5 }), /timeline\[0\]\.windowMs: must be a number, got undefined/],
  ['clockSkew: node and nodes', at({ event: 'clockSkew', node: 'fra', nodes: { regions: ['eu'] }, offsetMs: 10 }), /timeline\[0\]: must have exactly one of "node" and "nodes"/],
  ['clockSkew: not whole ms', at({ event: 'clockSkew', node: 'fra', offsetMs: 1.5 }), /timeline\[0\]\.offsetMs: must be an integer, got 1\.5/],
  ['cpuStall: no duration', at({ event: 'cpuStall', node: 'fra' }), /timeline\[0\]\.durationMs: is required/],
  ['cpuStall: unknown node', at({ event: 'cpuStall', node: 'tokyo', durationMs: 100 }), /timeline\[0\]\.node: unknown node "tokyo"/],
  ['serviceFlap: not an origin', at({ event: 'serviceFlap', node: 'sin', service: 'api', periodMs: 2000, count: 2 }), /timeline\[0\]\.node: sin is not an origin of api/],
  ['serviceFlap: past the run', at({ event: 'serviceFlap', node: 'fra', service: 'api', periodMs: 4000, count: 6 }), /timeline\[0\]\.count: 6 flaps of 4000 ms end at 23000, past the run \(durationMs 20000\)/],
  ['serviceFlap: down as long as the period', at({ event: 'serviceFlap', node: 'fra', service: 'api', periodMs: 2000, count: 2, downMs: 2000 }), /timeline\[0\]\.downMs: must be between 1 and 1999, got 2000/],
  ['serviceFlap: clashes with a later serviceDown', { ...base, timeline: [{ at: 1000, event: 'serviceFlap', node: 'fra', service: 'api', periodMs: 4000, count: 3 }, { at: 4000, event: 'serviceDown', node: 'fra', service: 'api' }] }, /timeline\[0\]\.event: api on fra is already down \(serviceFlap: serviceDown at 5000\)/],
  ['nodeRestart: unknown state', { ...base, timeline: [{ at: 1000, event: 'nodeCrash', node: 'sin' }, { at: 7000, event: 'nodeRestart', node: 'sin', state: 'fresh' }] }, /timeline\[1\]\.state: must be "kept" or "wiped", got "fresh"/],
  ['nodeCrash: a state', at({ event: 'nodeCrash', node: 'sin', state: 'wiped' }), /timeline\[0\]\.state: not allowed for nodeCrash/],
  ['faults: no random key', { ...base, faults: {} }, /faults\.random: is required/],
  ['faults: unknown kind', { ...base, faults: { random: { earthquakes: {} } } }, /faults\.random\.earthquakes: unknown key/],
  ['faults: window reversed', { ...base, faults: { random: { fromMs: 9000, untilMs: 8000 } } }, /faults\.random\.untilMs: must be between 9001 and 20000, got 8000/],
  ['faults: crash down too short', { ...base, faults: { random: { crashes: { perMinute: 1, downMs: 1000 } } } }, /faults\.random\.crashes\.downMs: must be between 5000 and 3600000, got 1000/],
  ['faults: churn rate zero', { ...base, faults: { random: { churn: { perMinute: 0, downMs: 6000 } } } }, /faults\.random\.churn\.perMinute: must be between 0\.001 and 600, got 0/],
  ['faults: loss spike without a rate', { ...base, faults: { random: { lossSpikes: { perMinute: 1, durationMs: 1000 } } } }, /faults\.random\.lossSpikes\.rate: is required/],
  ['faults: delay spike adds nothing', { ...base, faults: { random: { delaySpikes: { perMinute: 1, durationMs: 1000 } } } }, /faults\.random\.delaySpikes: needs "extraMs" or "jitterMs" above 0/],
  ['faults: partitions without regions', { ...base, nodes: nodes.map(({ region: _region, ...node }) => node), faults: { random: { partitions: { perMinute: 1, durationMs: 1000 } } } }, /faults\.random\.partitions: needs nodes with regions/],
  ['faults: skew share above 1', { ...base, faults: { random: { clockSkew: { share: 2, maxOffsetMs: 100 } } } }, /faults\.random\.clockSkew\.share: must be between 0 and 1, got 2/]
]

for (const [label, value, pattern] of rejected) {
  test(`scenario input: rejects ${label}`, () => {
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

test('cities: the bundled dataset has 1,000 cities in seven regions with unique ids, sane coordinates and populations', () => {
  const all = loadCities()
  assert.is(all.length, 1000)
  assert.is(new Set(all.map((city) => city.id)).size, 1000)
  assert.equal([...new Set(all.map((city) => city.region))].sort(), ['af', 'ap', 'eu', 'me', 'na', 'oc', 'sa'])
  for (const city of all) {
    assert.ok(city.lat >= -90 && city.lat <= 90 && city.lon >= -180 && city.lon <= 180, city.id)
    assert.ok(city.population >= 100_000, `${city.id} has ${city.population} people`)
  }
  const london = all.find((city) => city.id === 'london')!
  assert.ok(greatCircleKm(london, { lat: 51.5, lon: -0.13 }) < 5)
  assert.is(london.region, 'eu')
})

test('scenario input: generated from cities — included cities first, the rest weighted by population within the regions, the same every time, seed 1 vs 2', () => {
  const value = { ...cities, generate: { count: 400, spreadKm: 40, seed: 1, regions: ['eu', 'na'], include: ['london', 'chicago'] } }
  const first = parseScenario(value, 'c.json')
  assert.equal(parseScenario(value, 'c.json').nodes, first.nodes)
  assert.is(first.nodes.length, 400)
  assert.equal(first.nodes.slice(0, 2).map((node) => node.id), ['london-0', 'chicago-0'])
  assert.ok(first.nodes.every((node) => node.region === 'eu' || node.region === 'na'))
  const byId = new Map(citiesIn(['eu', 'na']).map((city) => [city.id, city]))
  for (const node of first.nodes) {
    const city = byId.get(node.id.slice(0, node.id.lastIndexOf('-')))!
    assert.ok(greatCircleKm(city, node) <= 40.1, `${node.id} is ${greatCircleKm(city, node).toFixed(1)} km from ${city.id}`)
  }
  // Population weighting: New York City (8.2 M) draws several nodes; no small city draws that many.
  const count = (prefix: string): number => first.nodes.filter((node) => node.id.startsWith(`${prefix}-`) && byId.has(prefix)).length
  assert.ok(count('new-york-city') >= 5, `new-york-city has ${count('new-york-city')} nodes`)
  assert.not.equal(parseScenario({ ...value, generate: { ...value.generate, seed: 2 } }, 'c.json').nodes, first.nodes)
})

test('scenario input: clients listed or drawn by population; natShare picks nodes that serve nothing, the same every time', () => {
  const listed = parseScenario({ ...base, clients: [{ id: 'c1', lat: 1.3, lon: 103.8, region: 'ap' }] }, 't.json')
  assert.equal(listed.clients, [{ id: 'c1', lat: 1.3, lon: 103.8, region: 'ap' }])
  const drawn = parseScenario({ ...base, clients: { count: 50, regions: ['sa'], seed: 3 } }, 't.json')
  assert.is(drawn.clients.length, 50)
  assert.ok(drawn.clients.every((client) => client.region === 'sa' && client.id.startsWith('client-')))
  const nat = parseScenario({ ...base, natShare: 0.4 }, 't.json')
  const natted = nat.nodes.filter((node) => node.nat === true).map((node) => node.id)
  assert.is(natted.length, 2)
  assert.ok(!natted.includes('fra') && !natted.includes('nyc'), `origins stay public: ${natted.join(', ')}`)
  assert.equal(parseScenario({ ...base, natShare: 0.4 }, 't.json').nodes, nat.nodes)
})

test('scenario input: fault events parse into faults with their ends, flaps into serviceDown/serviceUp pairs, all sorted by time', () => {
  const scenario = parseScenario({
    ...base,
    world: { regions: [{ between: ['eu', 'na'], inflation: 2.5, jitterMs: 3 }] },
    timeline: [
      { at: 1000, event: 'serviceFlap', node: 'fra', service: 'api', periodMs: 3000, count: 2, downMs: 1000 },
      { at: 1500, event: 'partition', between: [{ regions: ['eu'] }, { nodes: ['sin'] }], oneWay: true, durationMs: 5000 },
      { at: 2000, event: 'clockSkew', nodes: { regions: ['na'] }, offsetMs: -3000 },
      { at: 3000, event: 'loss', rate: 0.3, durationMs: 1000 },
      { at: 3000, event: 'nodeCrash', node: 'sin' },
      { at: 9000, event: 'nodeRestart', node: 'sin', state: 'wiped' }
    ]
  }, 't.json')
  assert.equal(scenario.world.regions, [{ between: ['eu', 'na'], inflation: 2.5, jitterMs: 3 }])
  assert.equal(scenario.timeline.map((event) => `${event.at} ${event.event} ${event.node}${event.state === undefined ? '' : ` ${event.state}`}`), [
    '1000 serviceDown fra', '2000 serviceUp fra', '3000 nodeCrash sin', '4000 serviceDown fra', '5000 serviceUp fra', '9000 nodeRestart sin wiped'
  ])
  assert.equal(scenario.faults.map((fault) => `${fault.at} ${fault.event} #${fault.id}${fault.event === 'faultEnd' ? ` ends #${fault.ends}` : ''}`), [
    '1500 partition #0', '2000 clockSkew #1', '3000 loss #2', '4000 faultEnd #4 ends #2', '6500 faultEnd #3 ends #0'
  ])
  const partition = scenario.faults[0]!
  assert.ok(partition.event === 'partition')
  assert.equal(partition.scope, { from: ['fra', 'lon'], to: ['sin'], oneWay: true })
  const skew = scenario.faults[1]!
  assert.ok(skew.event === 'clockSkew' && skew.offsetMs === -3000)
  assert.equal(skew.nodes, ['nyc', 'chi'])
})

test('scenario input: every shipped scenario parses and validates, with the sizes its README line promises', () => {
  const files = readdirSync('simulations').filter((file) => file.endsWith('.json')).sort()
  for (const expected of ['churn.json', 'flapping-service.json', 'nat-heavy.json', 'origin-failover.json', 'region-partition.json', 'scale-1000.json', 'scale-10000.json', 'small-failover.json']) {
    assert.ok(files.includes(expected), `simulations/${expected} is shipped`)
  }
  const sizes = new Map<string, number>()
  for (const file of files) sizes.set(file, loadScenario(`simulations/${file}`).nodes.length)
  assert.is(sizes.get('scale-1000.json'), 1000)
  assert.is(sizes.get('scale-10000.json'), 10_000)
  const nat = loadScenario('simulations/nat-heavy.json')
  assert.is(nat.nodes.filter((node) => node.nat === true).length, 36)
  assert.ok(nat.nat !== undefined && nat.nodes.some((node) => node.nat === true && nat.services[0]!.origins.includes(node.id)), 'nat-heavy punches holes and puts origins behind NAT too')
  assert.ok(loadScenario('simulations/churn.json').randomFaults?.churn !== undefined)
  assert.ok(loadScenario('simulations/region-partition.json').faults.some((fault) => fault.event === 'partition' && fault.scope.oneWay))
})

test.run()
