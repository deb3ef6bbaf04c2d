// The node agent's GeoDNS start-up in one real node (libp2p on loopback, status API, DNS server):
// GeoIP problems are a ConfigError naming dns.geoip.path unless the operator made GeoIP optional;
// a busy DNS port names dns.port; the node's location comes from GeoIP of its address when the
// config has none; malformed packets are counted in the status API's /metrics.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createSocket } from 'node:dgram'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import dnsPacket from 'dns-packet'
import { ConfigError, parseNodeConfig } from '../../src/runtime/config.ts'
import { startNode, type RunningNode } from '../../src/runtime/node-process.ts'
import { writeMmdb } from '../../src/runtime/mmdb-writer.ts'
import { flatCityRecord, FIXTURE_CITIES } from '../support/geo-fixtures.ts'
import { pollUntil } from '../support/processes.ts'

const dir = mkdtempSync(join(tmpdir(), 'form-anycast-dns-node-'))
const fixture = join(dir, 'fixture.mmdb')
writeFileSync(fixture, writeMmdb({
  databaseType: 'ip-location-db-city',
  ipVersion: 4,
  records: [{ network: '192.0.2.0/24', data: flatCityRecord(FIXTURE_CITIES.singapore) }, { network: '127.0.0.0/8', data: flatCityRecord(FIXTURE_CITIES.sydney) }]
}))
const corrupt = join(dir, 'corrupt.mmdb')
writeFileSync(corrupt, Buffer.from('this is not a MaxMind database'))

const config = (name: string, dns: Record<string, unknown>): ReturnType<typeof parseNodeConfig> =>
  parseNodeConfig({ name, dataDir: join(dir, name), logLevel: 'silent', dns: { port: 0, ...dns } }, `${name}.json`)

async function startExpectingConfigError (name: string, dns: Record<string, unknown>): Promise<ConfigError> {
  try {
    const node = await startNode(config(name, dns), `${name}.json`)
    await node.stop()
  } catch (error) {
    if (error instanceof ConfigError) return error
    throw error
  }
  return assert.unreachable('start-up should have failed') as never
}

test('dns node: a missing GeoIP file is a ConfigError naming dns.geoip.path and the file', async () => {
  const error = await startExpectingConfigError('missing', { geoip: { path: join(dir, 'nope.mmdb') } })
  assert.is(error.field, 'dns.geoip.path')
  assert.match(error.message, /missing\.json: dns\.geoip\.path: GeoIP database .*nope\.mmdb: file not found/)
})

test('dns node: a corrupt GeoIP file is a ConfigError naming dns.geoip.path', async () => {
  const error = await startExpectingConfigError('corrupt', { geoip: { path: corrupt } })
  assert.match(error.message, /corrupt\.json: dns\.geoip\.path: GeoIP database .*corrupt\.mmdb: no MaxMind DB metadata marker/)
})

test('dns node: a DNS port already in use is a ConfigError naming dns.port', async () => {
  const blocker = createSocket('udp4')
  await new Promise<void>((resolve) => blocker.bind(0, '127.0.0.1', resolve))
  try {
    const error = await startExpectingConfigError('busy', { port: blocker.address().port, geoip: { mode: 'off' } })
    assert.is(error.field, 'dns.port')
    assert.match(error.message, /cannot listen on 127\.0\.0\.1:\d+ \(UDP and TCP\): address already in use/)
  } finally {
    blocker.close()
  }
})

async function ask (port: number, bytes: Uint8Array): Promise<Buffer> {
  const socket = createSocket('udp4')
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no DNS reply within 2 s')), 2000)
      socket.once('message', (message) => { clearTimeout(timer); resolve(message) })
      socket.send(bytes, port, '127.0.0.1')
    })
  } finally {
    socket.close()
  }
}

const query = (name: string, type: 'A' | 'TXT'): Buffer => dnsPacket.encode({ type: 'query', id: 9, questions: [{ type, name, class: 'IN' }] })

test('dns node: optional GeoIP that is corrupt still starts with geo off; with a database the node is located by GeoIP of dns.address', async () => {
  let node: RunningNode | undefined
  try {
    node = await startNode(config('optional', { geoip: { path: corrupt, mode: 'optional' }, address: '192.0.2.5' }), 'optional.json')
    assert.ok(node.dns !== undefined)
    assert.is(node.host.config.location, undefined, 'no GeoIP: no location guessed')
    await node.stop()
    node = await startNode(config('located', { geoip: { path: fixture }, address: '192.0.2.5' }), 'located.json')
    assert.ok(Math.abs(node.host.config.location!.lat - FIXTURE_CITIES.singapore.lat) < 1e-4, 'from GeoIP of dns.address')
    const port = node.dns!.server.port!
    const reply = dnsPacket.decode(await ask(port, query('bootstrap.anycast.form', 'A')))
    assert.equal((reply.answers ?? []).map((record) => (record as { data: unknown }).data), ['192.0.2.5'], 'bootstrap lists the node itself')
    // Garbage, then a header-only message: counted in the status API's /metrics.
    await ask(port, Buffer.concat([query('x.anycast.form', 'A').subarray(0, 12), Buffer.from([0xff, 0xff])]))
    await pollUntil(async () => {
      const metrics = await (await fetch(`${node!.api.url}/metrics`)).text()
      return /^form_anycast_dns_malformed_total\{transport="udp",outcome="formerr"\} 1$/m.test(metrics)
    }, { timeoutMs: 2000, label: 'dns_malformed_total in /metrics' })
  } finally {
    await node?.stop()
  }
})

test.after(() => { rmSync(dir, { recursive: true, force: true }) })

test.run()
