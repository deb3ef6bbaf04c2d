// GeoDNS known answers over real node state: four production NodeHosts (control plane, probes,
// gossip) on the simulated overlay and a virtual clock — origins of `api` in Frankfurt, New York and
// Singapore, and a London node without the service whose zone is asked — and the real answerer and
// DNS server on a loopback socket, with a GeoIP fixture database generated here. Clients located by
// ECS subnet and by source address get their nearest healthy origin first; an origin whose service
// goes down is gone from the next answer within 1 s of virtual time; all down answers all.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createSocket } from 'node:dgram'
import dnsPacket, { type DecodedPacket, type PacketOpt } from 'dns-packet'
import { SimWorld } from '../../simulations/world.ts'
import { createNodeZone, zoneHealth, zoneSourceFromNode, type NodeZone, type ZoneSource } from '../../src/runtime/zone-view.ts'
import { createAnswerer } from '../../src/protocols/dns-answer.ts'
import { decodeQuery } from '../../src/protocols/dns-codec.ts'
import { createDnsServer, type DnsServer } from '../../src/runtime/dns-server.ts'
import { geoIpFromBuffer, type GeoIp } from '../../src/runtime/geoip.ts'
import { writeMmdb } from '../../src/runtime/mmdb-writer.ts'
import { createMemoryLogger } from '../../src/runtime/logger.ts'
import { createMemoryMetrics } from '../../src/runtime/metrics.ts'
import { flatCityRecord, type FixtureCity } from '../support/geo-fixtures.ts'
import type { NodeLocation, ServiceConfig } from '../../src/runtime/config.ts'

const city = (name: string, lat: number, lon: number, country: string): FixtureCity =>
  ({ name, lat, lon, country, subdivisionCode: '', subdivisionName: name, timeZone: 'UTC' })

/** Client networks: the subnets `form-anycast up` suggests for dig, and a few more. */
const CLIENTS = {
  frankfurt: { network: '84.128.0.0/24', probe: '84.128.0.7', city: city('Frankfurt am Main', 50.11, 8.68, 'DE') },
  london: { network: '81.2.69.0/24', probe: '81.2.69.160', city: city('London', 51.51, -0.13, 'GB') },
  newYork: { network: '72.229.0.0/24', probe: '72.229.0.9', city: city('New York', 40.8, -73.97, 'US') },
  rio: { network: '200.147.0.0/24', probe: '200.147.0.3', city: city('Rio de Janeiro', -22.91, -43.17, 'BR') },
  singapore: { network: '165.21.0.0/24', probe: '165.21.0.5', city: city('Singapore', 1.29, 103.81, 'SG') },
  sydney: { network: '1.1.1.0/24', probe: '1.1.1.1', city: city('Sydney', -33.87, 151.21, 'AU') },
  tokyo: { network: '2001:db8:81::/48', probe: '2001:db8:81::1', city: city('Tokyo', 35.68, 139.69, 'JP') },
  // Loopback placed in Singapore, so a query without ECS over the real socket is located by source.
  loopback: { network: '127.0.0.0/8', probe: '127.0.0.1', city: city('Singapore', 1.35, 103.82, 'SG') }
} as const

function fixtureGeoIp (): GeoIp {
  const bytes = writeMmdb({
    databaseType: 'ip-location-db-city',
    ipVersion: 6,
    records: Object.values(CLIENTS).map(({ network, city }) => ({ network, data: flatCityRecord(city) }))
  })
  return geoIpFromBuffer(bytes, 'fixture.mmdb')
}

const SITES: Record<string, { location: NodeLocation, address: string, api: boolean }> = {
  fra: { location: { lat: 50.11, lon: 8.68, region: 'eu-central' }, address: '192.0.2.10', api: true },
  nyc: { location: { lat: 40.71, lon: -74.01, region: 'us-east' }, address: '192.0.2.20', api: true },
  sin: { location: { lat: 1.35, lon: 103.82, region: 'ap-southeast' }, address: '192.0.2.30', api: true },
  lon: { location: { lat: 51.51, lon: -0.13, region: 'eu-west' }, address: '2001:db8:99::40', api: false }
}
const IDS = Object.keys(SITES)
const ADDRESS_NAME = new Map(Object.entries(SITES).map(([name, site]) => [site.address, name]))
const API = (id: string): ServiceConfig => ({ name: 'api', prefix: '10.42.255.1/32', check: { kind: 'tcp', host: `api.${id}`, port: 80 }, preference: 100 })

interface Harness {
  world: SimWorld
  zone: NodeZone
  server: DnsServer
  port: number
  stop(): Promise<void>
}

async function startHarness (): Promise<Harness> {
  const world = new SimWorld({
    seed: 5,
    nodes: IDS.length,
    ids: IDS,
    degree: IDS.length - 1,
    latency: () => 20,
    services: (_, id) => SITES[id]!.api ? [API(id)] : [],
    location: (_, id) => SITES[id]!.location
  })
  await world.start()
  await world.run(8000)
  const host = world.hosts.get('lon')!
  const addresses = new Map(Object.entries(SITES).map(([id, site]) => [id, site.address]))
  const zone = createNodeZone({
    source: zoneSourceFromNode(host, { address: SITES.lon!.address, addresses }),
    now: () => world.clock.now(),
    geoip: fixtureGeoIp(),
    zone: 'anycast.form',
    ttlS: 30,
    failoverTtlS: 5,
    failoverWindowMs: 30_000,
    maxAnswers: 3
  })
  const server = createDnsServer({ zone, logger: createMemoryLogger(), metrics: createMemoryMetrics(), port: 0 })
  await server.start()
  return { world, zone, server, port: server.port!, stop: async () => { await server.stop(); await world.stop() } }
}

interface Answer { rcode: string, names: string[], ttl: number | undefined, ecsScope: number | undefined, raw: DecodedPacket }

/** One query over UDP to the real server; optional ECS subnet. */
async function ask (port: number, name: string, type: 'A' | 'AAAA' | 'TXT', subnet?: string): Promise<Answer> {
  const [address, bits] = subnet === undefined ? [] : subnet.split('/')
  const options: PacketOpt[] = subnet === undefined
    ? []
    : [{ code: 8, family: address!.includes(':') ? 2 : 1, sourcePrefixLength: Number(bits), scopePrefixLength: 0, ip: address! }]
  const query = dnsPacket.encode({
    type: 'query',
    id: 4242,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type, name, class: 'IN' }],
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options }]
  })
  const socket = createSocket('udp4')
  try {
    const reply = await new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no DNS reply for ${name} within 2 s`)), 2000)
      socket.once('message', (message) => { clearTimeout(timer); resolve(message) })
      socket.send(query, port, '127.0.0.1')
    })
    return summarise(dnsPacket.decode(reply))
  } finally {
    socket.close()
  }
}

function summarise (packet: DecodedPacket): Answer {
  const answers = (packet.answers ?? []) as Array<{ type: string, ttl?: number, data: unknown }>
  const opt = (packet.additionals ?? []).find((record) => record.type === 'OPT') as { options?: Array<{ code: number, scopePrefixLength?: number }> } | undefined
  const ecs = opt?.options?.find((option) => option.code === 8)
  return {
    rcode: (packet as DecodedPacket & { rcode: string }).rcode,
    names: answers.map((record) => record.type === 'TXT' ? String(record.data) : ADDRESS_NAME.get(String(record.data)) ?? String(record.data)),
    ttl: answers[0]?.ttl,
    ecsScope: ecs?.scopePrefixLength,
    raw: packet
  }
}

/** The real answerer for a client at `source` (no ECS): the path a packet from that address takes. */
function askFrom (zone: NodeZone, source: string, name: string): Answer {
  const bytes = dnsPacket.encode({ type: 'query', id: 7, questions: [{ type: 'A', name, class: 'IN' }] })
  const response = createAnswerer(zone).answer(decodeQuery(bytes), { address: source, family: source.includes(':') ? 6 : 4, overlay: false }, 'udp')
  return summarise(dnsPacket.decode(Buffer.from(response.bytes)))
}

/** Advance virtual time in 50 ms steps until `check` holds; the virtual ms it took, or throws after maxMs. */
async function untilVirtual (world: SimWorld, maxMs: number, check: () => Promise<boolean>): Promise<number> {
  for (let elapsed = 0; elapsed <= maxMs; elapsed += 50) {
    if (await check()) return elapsed
    await world.run(50)
  }
  throw new Error(`condition not met within ${maxMs} virtual ms`)
}

const h = await startHarness()

const ECS_CASES: Array<[keyof typeof CLIENTS, string[]]> = [
  ['frankfurt', ['fra', 'nyc', 'sin']],
  ['london', ['fra', 'nyc', 'sin']],
  ['newYork', ['nyc', 'fra', 'sin']],
  ['rio', ['nyc', 'fra', 'sin']],
  ['singapore', ['sin', 'fra', 'nyc']],
  ['sydney', ['sin', 'nyc', 'fra']],
  ['tokyo', ['sin', 'fra', 'nyc']]
]

for (const [client, expected] of ECS_CASES) {
  test(`zone: ECS ${CLIENTS[client].network} (${CLIENTS[client].city.name}) gets ${expected.join(' > ')}, TTL 30, scope echoed`, async () => {
    const answer = await ask(h.port, 'api.anycast.form', 'A', CLIENTS[client].network)
    assert.is(answer.rcode, 'NOERROR')
    assert.equal(answer.names, expected)
    assert.is(answer.ttl, 30)
    assert.is(answer.ecsScope, CLIENTS[client].network.includes(':') ? 48 : 24, 'scope = min(source, 24|56)')
  })
}

test('zone: no ECS over the socket is located by source 127.0.0.1 (placed in Singapore by the fixture)', async () => {
  const answer = await ask(h.port, 'api.anycast.form', 'A')
  assert.equal(answer.names, ['sin', 'fra', 'nyc'])
})

for (const [client, first] of [['frankfurt', 'fra'], ['newYork', 'nyc'], ['rio', 'nyc'], ['sydney', 'sin'], ['london', 'fra']] as const) {
  test(`zone: source address ${CLIENTS[client].probe} (${CLIENTS[client].city.country}) gets ${first} first`, () => {
    const answer = askFrom(h.zone, CLIENTS[client].probe, 'api.anycast.form')
    assert.is(answer.names[0], first)
    assert.is(answer.names.length, 3)
  })
}

test('zone: a client the database does not know still gets every healthy origin (order by id), never empty', () => {
  const answer = askFrom(h.zone, '192.0.2.200', 'api.anycast.form')
  assert.equal(answer.names.slice().sort(), ['fra', 'nyc', 'sin'])
})

test('zone: TXT names the chosen origins with health and distance; AAAA of a v4-only service is NODATA', async () => {
  const txt = await ask(h.port, 'api.anycast.form', 'TXT', CLIENTS.sydney.network)
  assert.is(txt.names.length, 3)
  assert.match(txt.names[0]!, /^origin=sin address=192\.0\.2\.30 health=healthy km=\d+ reason=nearest$/)
  const aaaa = await ask(h.port, 'api.anycast.form', 'AAAA', CLIENTS.sydney.network)
  assert.is(aaaa.rcode, 'NOERROR')
  assert.is(aaaa.names.length, 0)
})

test('zone: bootstrap.<zone> lists live members with addresses by family, nearest first; unknown names NXDOMAIN', async () => {
  const v4 = await ask(h.port, 'bootstrap.anycast.form', 'A', CLIENTS.newYork.network)
  assert.equal(v4.names, ['nyc', 'fra', 'sin'])
  const v6 = await ask(h.port, 'bootstrap.anycast.form', 'AAAA', CLIENTS.newYork.network)
  assert.equal(v6.names, ['lon'])
  assert.is((await ask(h.port, 'www.anycast.form', 'A')).rcode, 'NXDOMAIN')
  assert.is((await ask(h.port, 'a.api.anycast.form', 'A')).rcode, 'NXDOMAIN')
})

test('zone: fra marked down → the Frankfurt client\'s next answer omits it within 1 s, with the failover TTL', async () => {
  h.world.hosts.get('fra')!.controlPlane.setAdminDown('api', true)
  const elapsed = await untilVirtual(h.world, 1000, async () => !(await ask(h.port, 'api.anycast.form', 'A', CLIENTS.frankfurt.network)).names.includes('fra'))
  const answer = await ask(h.port, 'api.anycast.form', 'A', CLIENTS.frankfurt.network)
  assert.equal(answer.names, ['nyc', 'sin'])
  assert.is(answer.ttl, 5, 'short TTL while the failover is in progress')
  assert.ok(elapsed <= 1000, `took ${elapsed} virtual ms`)
  const txt = await ask(h.port, 'api.anycast.form', 'TXT', CLIENTS.frankfurt.network)
  assert.ok(txt.names.every((line) => line.endsWith('failover=1')), txt.names.join('\n'))
})

test('zone: all three down → all three answered (nearest first), failover TTL; back up → healthy answer again', async () => {
  h.world.hosts.get('nyc')!.controlPlane.setAdminDown('api', true)
  h.world.hosts.get('sin')!.controlPlane.setAdminDown('api', true)
  await untilVirtual(h.world, 1000, async () => {
    const txt = await ask(h.port, 'api.anycast.form', 'TXT', CLIENTS.sydney.network)
    return txt.names.every((line) => line.includes('health=failed'))
  })
  const all = await ask(h.port, 'api.anycast.form', 'A', CLIENTS.sydney.network)
  assert.equal(all.names, ['sin', 'nyc', 'fra'])
  assert.is(all.ttl, 5)
  for (const id of ['fra', 'nyc', 'sin']) h.world.hosts.get(id)!.controlPlane.setAdminDown('api', false)
  // Rise takes a few probe intervals; then the origins announce again.
  const elapsed = await untilVirtual(h.world, 5000, async () => (await ask(h.port, 'api.anycast.form', 'A', CLIENTS.sydney.network)).names.length === 3 &&
    (await ask(h.port, 'api.anycast.form', 'TXT', CLIENTS.sydney.network)).names.every((line) => line.includes('health=healthy')))
  assert.ok(elapsed < 5000)
  assert.equal((await ask(h.port, 'api.anycast.form', 'A', CLIENTS.sydney.network)).names, ['sin', 'nyc', 'fra'])
})

test('zone: after the failover window the TTL is the configured one again', async () => {
  await h.world.run(31_000)
  assert.is((await ask(h.port, 'api.anycast.form', 'A', CLIENTS.frankfurt.network)).ttl, 30)
})

// ---- cold start -------------------------------------------------------------------------------

const nothingKnown: ZoneSource = { origins: () => [], members: () => [] }
const coldZone = (fallback?: Record<string, string[]>): NodeZone => createNodeZone({
  source: nothingKnown, now: () => 0, zone: 'anycast.form', ttlS: 30, failoverTtlS: 5, failoverWindowMs: 30_000, maxAnswers: 3, ...(fallback === undefined ? {} : { fallback })
})

test('zone: cold start answers the configured set (short TTL, both families) and NXDOMAIN only for unknown services', () => {
  const zone = coldZone({ api: ['192.0.2.10', '192.0.2.20', '2001:db8::1'] })
  const client = { address: '198.51.100.1', family: 4 as const, overlay: false }
  const a = zone.resolve('api.anycast.form', 1, client)
  assert.ok(typeof a === 'object')
  assert.is(a.records.length, 2)
  assert.is(a.ttlS, 5)
  const aaaa = zone.resolve('api.anycast.form', 28, client)
  assert.ok(typeof aaaa === 'object' && aaaa.records.length === 1)
  assert.is(zone.resolve('web.anycast.form', 1, client), 'nxdomain')
  assert.is(coldZone().resolve('api.anycast.form', 1, client), 'nxdomain')
})

test('zone: an origin that leaves the table is remembered as failed; nothing live → all remembered answered', () => {
  let live = true
  let now = 0
  const source: ZoneSource = {
    origins: () => live ? [{ id: 'a', service: 'api', health: 'healthy', load: 0 }, { id: 'b', service: 'api', health: 'degraded', load: 0 }] : [],
    members: () => [{ id: 'a', name: 'a', address: '192.0.2.1' }, { id: 'b', name: 'b', address: '192.0.2.2' }]
  }
  const zone = createNodeZone({ source, now: () => now, zone: 'anycast.form', ttlS: 30, failoverTtlS: 5, failoverWindowMs: 10_000, maxAnswers: 3 })
  const client = { address: '198.51.100.1', family: 4 as const, overlay: false }
  const first = zone.resolve('api.anycast.form', 1, client)
  assert.ok(typeof first === 'object')
  assert.is(first.records.length, 2)
  assert.is(first.ttlS, 30)
  live = false
  now = 100
  const cached = zone.resolve('api.anycast.form', 1, client)
  assert.ok(typeof cached === 'object' && cached.ttlS === 30, 'within refreshMs the snapshot stands')
  now = 300
  const after = zone.resolve('api.anycast.form', 1, client)
  assert.ok(typeof after === 'object')
  assert.is(after.records.length, 2, 'all failed: all answered')
  assert.is(after.ttlS, 5)
  assert.equal(zone.describe()[0]!.origins.map((origin) => origin.health), ['failed', 'failed'])
})

test.after(async () => { await h.stop() })

test('zone: an origin with no overlay path is failed once our probe says failed and degraded while it is only suspected; with a path the announcement stands', () => {
  assert.is(zoneHealth('healthy', true, 'failed'), 'healthy')
  assert.is(zoneHealth('healthy', false, 'failed'), 'failed')
  assert.is(zoneHealth('healthy', false, 'degraded'), 'degraded')
  assert.is(zoneHealth('degraded', false, 'degraded'), 'degraded')
  assert.is(zoneHealth('failed', false, 'degraded'), 'failed')
  assert.is(zoneHealth('healthy', false, 'healthy'), 'healthy')
  // Not probed (this node is the origin, or its prober is starting): the announcement stands.
  assert.is(zoneHealth('healthy', false, undefined), 'healthy')
  assert.is(zoneHealth('degraded', false, 'unknown'), 'degraded')
})

test.run()
