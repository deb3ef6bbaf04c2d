// The DNS accuracy checker: the oracle table (lowest true RTT, ties, unhealthy answers, region
// overrides where distance and RTT disagree), the simulator's ECS numbering and GeoIP, and the meter
// over production NodeHosts on the simulated overlay — the node agent's own zone answers every
// client's nearest healthy origin, follows a service failure, and a zone that answers the farthest
// origin scores low.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { SimWorld } from '../../simulations/world.ts'
import {
  DnsAccuracyMeter, clientSubnet, createClientGeoIp, dnsAccuracyCheck, judgeFirstAnswer, nodeAddress, nodeZoneFactory, type DnsWorldView
} from '../../simulations/dns-accuracy.ts'
import { defaultLatencyModel, type Coordinates, type LatencyModel } from '../../simulations/latency.ts'
import { parseScenario, type ScenarioClient, type ScenarioNode, type ScenarioService } from '../../simulations/scenario.ts'
import { runScenario } from '../../simulations/runner.ts'
import type { GeoIp } from '../../src/runtime/geoip.ts'
import type { ServiceConfig } from '../../src/runtime/config.ts'
import { MINI_SCENARIO } from '../support/mini-scenario.ts'

const PLACES: Record<string, Coordinates> = {
  fra: { lat: 50.11, lon: 8.68, region: 'eu' },
  nyc: { lat: 40.71, lon: -74.01, region: 'na' },
  sin: { lat: 1.35, lon: 103.82, region: 'ap' },
  lon: { lat: 51.51, lon: -0.13, region: 'eu' },
  /** Reykjavík: 2,400 km from Frankfurt, 4,200 km from New York. */
  rey: { lat: 64.15, lon: -21.94, region: 'eu' }
}
const where = (id: string): Coordinates => PLACES[id]!

/** Europe – Europe links are poor: the RTT to Frankfurt from Reykjavík exceeds New York's. */
const POOR_EUROPE: LatencyModel = { ...defaultLatencyModel, regions: [{ between: ['eu', 'eu'], inflation: 4 }] }

const judgeCases: Array<[string, Coordinates, string | undefined, string[], LatencyModel, { correct: boolean, geoCorrect: boolean, best: string | undefined }]> = [
  ['London gets Frankfurt', PLACES.lon!, 'fra', ['fra', 'nyc', 'sin'], defaultLatencyModel, { correct: true, geoCorrect: true, best: 'fra' }],
  ['London gets New York: wrong', PLACES.lon!, 'nyc', ['fra', 'nyc', 'sin'], defaultLatencyModel, { correct: false, geoCorrect: false, best: 'fra' }],
  ['Frankfurt down: London gets New York, right', PLACES.lon!, 'nyc', ['nyc', 'sin'], defaultLatencyModel, { correct: true, geoCorrect: true, best: 'nyc' }],
  ['London gets Frankfurt while it is down: wrong', PLACES.lon!, 'fra', ['nyc', 'sin'], defaultLatencyModel, { correct: false, geoCorrect: false, best: 'nyc' }],
  ['no answer at all: wrong', PLACES.lon!, undefined, ['fra'], defaultLatencyModel, { correct: false, geoCorrect: false, best: 'fra' }],
  ['no healthy origin: nothing to judge', PLACES.lon!, 'fra', [], defaultLatencyModel, { correct: false, geoCorrect: false, best: undefined }],
  ['an origin asking for itself gets itself', PLACES.sin!, 'sin', ['fra', 'sin'], defaultLatencyModel, { correct: true, geoCorrect: true, best: 'sin' }],
  ['region override: Reykjavík → Frankfurt is nearest but not fastest', PLACES.rey!, 'fra', ['fra', 'nyc'], POOR_EUROPE, { correct: false, geoCorrect: true, best: 'nyc' }],
  ['region override: Reykjavík → New York is fastest but not nearest', PLACES.rey!, 'nyc', ['fra', 'nyc'], POOR_EUROPE, { correct: true, geoCorrect: false, best: 'nyc' }]
]

for (const [label, client, answered, healthy, model, expected] of judgeCases) {
  test(`dns accuracy: oracle — ${label}`, () => {
    const judged = judgeFirstAnswer(client, answered, healthy, where, model)
    assert.is(judged.correct, expected.correct)
    assert.is(judged.geoCorrect, expected.geoCorrect)
    assert.is(judged.bestOrigin, expected.best)
  })
}

test('dns accuracy: two origins at the same place are both right (ties)', () => {
  const twin = (id: string): Coordinates => id === 'fra2' ? PLACES.fra! : where(id)
  assert.ok(judgeFirstAnswer(PLACES.lon!, 'fra2', ['fra', 'fra2'], twin, defaultLatencyModel).correct)
  assert.ok(judgeFirstAnswer(PLACES.lon!, 'fra', ['fra', 'fra2'], twin, defaultLatencyModel).correct)
})

test('dns accuracy: every client its own /24, every node its own address; the GeoIP places each /24, nothing else', () => {
  assert.is(clientSubnet(0), '20.0.0.0')
  assert.is(clientSubnet(257), '20.1.1.0')
  assert.is(clientSubnet(99_999), '21.134.159.0')
  assert.is(new Set(Array.from({ length: 70_000 }, (_, index) => clientSubnet(index))).size, 70_000)
  assert.is(nodeAddress(0), '198.18.0.0')
  assert.is(nodeAddress(65_537), '198.19.0.1')
  assert.throws(() => clientSubnet(-1), /client index/)
  assert.throws(() => nodeAddress(1.5), /node index/)
  const geoip = createClientGeoIp([{ id: 'a', lat: 1, lon: 2 }, { id: 'b', lat: -3, lon: 4 }])
  assert.equal(geoip.lookup('20.0.1.0'), { lat: -3, lon: 4 })
  assert.equal(geoip.lookup('20.0.0.77'), { lat: 1, lon: 2 })
  assert.is(geoip.lookup('20.0.2.0'), undefined)
  assert.is(geoip.lookup('2001:db8::1'), undefined)
})

// ---- the meter over production NodeHosts ------------------------------------------------------

const NODES: ScenarioNode[] = Object.entries({ fra: 'eu', nyc: 'na', sin: 'ap', lon: 'eu' }).map(([id, region]) => ({ id, lat: PLACES[id]!.lat, lon: PLACES[id]!.lon, region }))
const API: ScenarioService = { name: 'api', prefix: '10.42.255.1/32', origins: ['fra', 'nyc', 'sin'], preference: 100 }
/** Clients near each node and a few between them. */
const CLIENTS: ScenarioClient[] = [
  { id: 'paris', lat: 48.86, lon: 2.35 }, { id: 'boston', lat: 42.36, lon: -71.06 }, { id: 'jakarta', lat: -6.2, lon: 106.85 },
  { id: 'dublin', lat: 53.35, lon: -6.26 }, { id: 'rio', lat: -22.91, lon: -43.17 }, { id: 'sydney', lat: -33.87, lon: 151.21 },
  { id: 'nairobi', lat: -1.29, lon: 36.82 }, { id: 'tokyo', lat: 35.68, lon: 139.69 }
]

const apiConfig = (id: string): ServiceConfig => ({ name: 'api', prefix: API.prefix, check: { kind: 'tcp', host: `api.${id}`, port: 80 }, preference: 100 })

async function startWorld (): Promise<SimWorld> {
  const world = new SimWorld({
    seed: 11,
    nodes: NODES.length,
    ids: NODES.map((node) => node.id),
    degree: NODES.length - 1,
    latency: () => 20,
    services: (_, id) => API.origins.includes(id) ? [apiConfig(id)] : [],
    location: (index) => ({ lat: NODES[index]!.lat, lon: NODES[index]!.lon, region: NODES[index]!.region! })
  })
  await world.start()
  await world.run(8000)
  return world
}

function viewOf (world: SimWorld): DnsWorldView {
  return {
    atMs: world.clock.now(),
    live: new Map([...world.hosts].filter(([id]) => !world.isCrashed(id))),
    healthyOrigins: (service) => service.origins.filter((origin) => !world.downServices.has(`${origin}/${service.name}`) && !world.isCrashed(origin))
  }
}

/** Every client placed at its antipode: the production zone then ranks the farthest origin first. */
function antipodes (geoip: GeoIp): GeoIp {
  return { ...geoip, lookup: (ip) => { const place = geoip.lookup(ip); return place === undefined ? undefined : { lat: -place.lat, lon: place.lon > 0 ? place.lon - 180 : place.lon + 180 } } }
}

test('dns accuracy: the node agent\'s zone answers every client its nearest healthy origin, follows a service failure, and a farthest-origin zone fails, seed 11', async () => {
  const world = await startWorld()
  try {
    const meter = new DnsAccuracyMeter({ clients: CLIENTS, nodes: NODES, services: [API], model: defaultLatencyModel })
    assert.is(meter.resolverOf(CLIENTS[2]!, viewOf(world).live), 'sin', 'Jakarta resolves through Singapore')
    assert.is(meter.resolverOf(CLIENTS[3]!, viewOf(world).live), 'lon', 'Dublin resolves through London, which serves nothing')
    const steady = meter.sample(viewOf(world), 'steady')
    assert.equal({ samples: steady.samples, correct: steady.correct }, { samples: CLIENTS.length, correct: CLIENTS.length }, meter.result().misses.join('\n'))

    // Frankfurt's api fails: within 2 s of virtual time nobody is answered Frankfurt any more, and Paris and Dublin get New York.
    world.downServices.add('fra/api')
    meter.failureApplied(world.clock.now())
    for (let step = 0; step < 10 && meter.result().failedOriginAnswers[0]!.lastedMs === null; step++) {
      await world.run(500)
      meter.atCheck(viewOf(world), false)
    }
    const lasted = meter.result().failedOriginAnswers[0]!.lastedMs
    assert.ok(lasted !== null && lasted > 0 && lasted <= 2000, `clients were answered the failed origin for ${lasted} ms`)
    const after = meter.sample(viewOf(world), 'converged')
    assert.is(after.correct, CLIENTS.length, meter.result().misses.join('\n'))

    const report = meter.result()
    assert.is(report.accuracy, 1)
    assert.is(report.samples, 2 * CLIENTS.length)
    assert.equal(report.byPhase.steady, { samples: CLIENTS.length, accuracy: 1 })
    assert.ok(dnsAccuracyCheck(report, { steady: 0.95, converged: 0.95 }).passed)

    // The must-fail case: the same production zone, but every client located at its antipode.
    const farthest = new DnsAccuracyMeter({
      clients: CLIENTS, nodes: NODES, services: [API], model: defaultLatencyModel,
      zoneFactory: (parts) => nodeZoneFactory({ ...parts, geoip: antipodes(parts.geoip) })
    })
    farthest.sample(viewOf(world), 'steady')
    const bad = farthest.result()
    assert.is(bad.samples, CLIENTS.length)
    assert.ok(bad.accuracy! <= 0.25, `a farthest-origin zone scored ${bad.accuracy}`)
    assert.ok(bad.misses.length > 0 && /first answer (nyc|sin|fra), oracle/.test(bad.misses[0]!), bad.misses[0])
    const check = dnsAccuracyCheck(bad, { steady: 0.95, converged: 0 })
    assert.not.ok(check.passed)
    assert.match(check.examples[0]!, /^steady accuracy 0(\.\d+)? < 0\.95$/)
  } finally {
    await world.stop()
  }
})

test('dns accuracy: no steady sample fails the check; a phase bound of 0 is not judged', () => {
  const empty = { accuracy: null, samples: 0, correct: 0, geoAccuracy: null, byPhase: { steady: { samples: 0, accuracy: null }, converged: { samples: 0, accuracy: null }, end: { samples: 0, accuracy: null } }, instants: [], failedOriginAnswers: [], misses: [], clients: 1, resolver: '' }
  assert.not.ok(dnsAccuracyCheck(empty, { steady: 0, converged: 0 }).passed)
  const lowAfterConvergence = { ...empty, accuracy: 0.9, samples: 20, correct: 18, byPhase: { ...empty.byPhase, steady: { samples: 10, accuracy: 1 }, converged: { samples: 10, accuracy: 0.8 } } }
  assert.ok(dnsAccuracyCheck(lowAfterConvergence, { steady: 0.95, converged: 0 }).passed)
  assert.not.ok(dnsAccuracyCheck(lowAfterConvergence, { steady: 0.95, converged: 0.9 }).passed)
})

test('dns accuracy: a scenario with clients gets a dnsAccuracy check and dns figures in its run; without clients neither, seed 3', async () => {
  const withClients = await runScenario(parseScenario({ ...MINI_SCENARIO, clients: { count: 40, regions: ['eu', 'na'] } }, 'mini.json'), 3)
  assert.ok(withClients.checks.dnsAccuracy !== undefined)
  assert.ok(withClients.checks.dnsAccuracy.passed, withClients.checks.dnsAccuracy.examples.join('\n'))
  const dns = withClients.dns!
  assert.is(dns.clients, 40)
  // Steady at 2, 7 and 10 s (2 s after the previous event: expect.steadyAfterMs), and right after the failures converged.
  assert.equal(dns.instants.filter((instant) => instant.phase === 'steady').map((instant) => instant.atMs), [2000, 7000, 10_000])
  assert.ok(dns.instants.some((instant) => instant.phase === 'converged' && instant.atMs > 3000 && instant.atMs < 7000), JSON.stringify(dns.instants))
  for (const instant of dns.instants) assert.is(instant.samples, 40 * 2, `${instant.phase} at ${instant.atMs}: 40 clients × 2 services`)
  // lon-0's crash at 2 s and fra-0's api failure at 3 s: each stops being answered within the run.
  assert.equal(dns.failedOriginAnswers.map((lag) => lag.atMs), [2000, 3000])
  for (const lag of dns.failedOriginAnswers) assert.ok(lag.lastedMs !== null && lag.lastedMs > 0 && lag.lastedMs <= 7000 - lag.atMs, JSON.stringify(lag))
  assert.is(dns.byPhase.steady.accuracy, 1, dns.misses.join('; '))
  assert.ok(dns.accuracy !== null && dns.accuracy > 0.5 && dns.samples === dns.instants.length * 80)
  const without = await runScenario(parseScenario(MINI_SCENARIO, 'mini.json'), 3)
  assert.is(without.checks.dnsAccuracy, undefined)
  assert.is(without.dns, undefined)
  assert.is(without.traceHash, withClients.traceHash, 'asking the zones changes nothing in the run')
})

test.run()
