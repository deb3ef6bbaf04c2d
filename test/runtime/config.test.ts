import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError, loadNodeConfig, parseNodeConfig } from '../../src/runtime/config.ts'
import { defaultCluster, digExample, parseCluster } from '../../src/runtime/up.ts'

const base = { name: 'fra', dataDir: '/tmp/fra' }

test('config: minimal config gets defaults', () => {
  const config = parseNodeConfig(base, 'node.json')
  assert.is(config.networkId, 'default')
  assert.equal(config.listen, ['/ip4/127.0.0.1/tcp/0'])
  assert.equal(config.statusApi, { host: '127.0.0.1', port: 0 })
  assert.is(config.session.holdTimeMs, 3000)
  assert.is(config.logLevel, 'info')
})

const rejected: Array<[string, unknown, RegExp]> = [
  ['not an object', [], /node\.json: must be an object, got an array/],
  ['unknown key', { ...base, colour: 'red' }, /node\.json: colour: unknown key/],
  ['missing name', { dataDir: '/x' }, /name: is required/],
  ['missing dataDir', { name: 'x' }, /dataDir: is required/],
  ['bad name', { ...base, name: 'Frankfurt!' }, /name: must be lowercase letters/],
  ['port type', { ...base, statusApi: { port: '80' } }, /statusApi\.port: must be a number, got the string "80"/],
  ['port range', { ...base, statusApi: { port: 70000 } }, /statusApi\.port: must be between 0 and 65535, got 70000/],
  ['latitude', { ...base, location: { lat: 91, lon: 0 } }, /location\.lat: must be between -90 and 90/],
  ['listen multiaddr', { ...base, listen: ['127.0.0.1:4001'] }, /listen\[0\]: must be a multiaddr/],
  ['bootstrap without peer id', { ...base, bootstrap: ['/ip4/127.0.0.1/tcp/4001'] }, /bootstrap\[0\]: must be a multiaddr ending in \/p2p\//],
 ['proxy name', { ...base, proxies: [{ service: 'web', port: 9000, targetPort: 80, names: { 'Bad_Name': 'web' } }] }, /proxies\[0\]\.names\.Bad_Name: must be a lower-case host name/],
  ['proxy names type', { ...base, proxies: [{ service: 'web', port: 9000, targetPort: 80, names: ['web'] }] }, /proxies\[0\]\.names: must be an object of host name → service, got an array/],
 ['relay flag', { ...base, relay: { server: 'yes' } }, /relay\.server: must be true or false, got the string "yes"/],
  ['dataplane kind', { ...base, dataplane: { kind: 'bgp' } }, /dataplane\.kind: must be one of none, memory, wireguard, got "bgp"/],
  ['dataplane interface name', { ...base, dataplane: { kind: 'wireguard', interface: 'a-very-long-interface' } }, /dataplane\.interface: must be an interface name of 1 to 15/],
  ['dataplane endpoint', { ...base, dataplane: { kind: 'wireguard', endpoint: 'host' } }, /dataplane\.endpoint: must be an address and port/],
  ['dataplane without state', { ...base, state: { enabled: false }, dataplane: { kind: 'memory' } }, /dataplane\.kind: needs the replicated state/],
  ['hold below minimum', { ...base, session: { holdTimeMs: 100 } }, /session\.holdTimeMs: must be between 300/],
  ['hold type', { ...base, session: { holdTimeMs: 'soon' } }, /session\.holdTimeMs: must be a number, got the string "soon"/],
  ['backoff order', { ...base, session: { backoff: { minMs: 500, maxMs: 100 } } }, /session\.backoff\.maxMs: must be at least minMs/],
  ['nested unknown key', { ...base, session: { holdTime: 3 } }, /session\.holdTime: unknown key/],
  ['log level', { ...base, logLevel: 'loud' }, /logLevel: must be one of debug, info, warn, error, silent/],
  ['network key file type', { ...base, networkKeyFile: 5 }, /networkKeyFile: must be a string/],
  ['service prefix', { ...base, services: [{ name: 'api', prefix: '10.42.255.300/32', check: { kind: 'tcp', host: 'x', port: 1 } }] }, /services\[0\]\.prefix: not a valid IPv4 CIDR/],
  ['service check kind', { ...base, services: [{ name: 'api', prefix: '10.42.255.1/32', check: { kind: 'icmp' } }] }, /services\[0\]\.check\.kind: must be "tcp" or "http"/],
  ['duplicate service', { ...base, services: [1, 2].map(() => ({ name: 'api', prefix: '10.42.255.1/32', check: { kind: 'http', url: 'http://127.0.0.1/' } })) }, /services\[1\]\.name: duplicate service "api"/],
  ['probe timeout above interval', { ...base, probe: { intervalMs: 500, timeoutMs: 900 } }, /probe\.timeoutMs: must not exceed probe\.intervalMs/],
  ['dns not an object', { ...base, dns: true }, /dns: must be an object, got boolean true/],
  ['dns unknown key', { ...base, dns: { ttl: 30 } }, /dns\.ttl: unknown key/],
  ['dns enabled type', { ...base, dns: { enabled: 'yes' } }, /dns\.enabled: must be true or false, got the string "yes"/],
  ['dns zone', { ...base, dns: { zone: 'any cast.form' } }, /dns\.zone: must be a domain name/],
  ['dns zone label', { ...base, dns: { zone: '-bad.form' } }, /dns\.zone: must be a domain name/],
  ['dns port', { ...base, dns: { port: 65536 } }, /dns\.port: must be between 0 and 65535, got 65536/],
  ['dns host', { ...base, dns: { host: 'localhost' } }, /dns\.host: must be an IPv4 or IPv6 address, got "localhost"/],
  ['dns host6 family', { ...base, dns: { host6: '127.0.0.1' } }, /dns\.host6: must be an IPv6 address/],
  ['dns ttl', { ...base, dns: { ttlS: 0 } }, /dns\.ttlS: must be between 1 and 86400, got 0/],
  ['dns failover ttl above ttl', { ...base, dns: { ttlS: 10, failoverTtlS: 20 } }, /dns\.failoverTtlS: must be between 0 and 10, got 20/],
  ['dns maxAnswers', { ...base, dns: { maxAnswers: 0 } }, /dns\.maxAnswers: must be between 1 and 32, got 0/],
  ['dns maxAnswers type', { ...base, dns: { maxAnswers: 2.5 } }, /dns\.maxAnswers: must be an integer, got 2\.5/],
  ['dns address', { ...base, dns: { address: '192.0.2' } }, /dns\.address: must be an IPv4 or IPv6 address, got "192\.0\.2"/],
  ['dns overlay prefix', { ...base, dns: { overlayPrefixes: ['10.42.0.0/33'] } }, /dns\.overlayPrefixes\[0\]: /],
  ['dns strategy', { ...base, dns: { strategy: 'closest' } }, /dns\.strategy: must be one of linear, quadratic, logarithmic, stepped/],
  ['dns geoip mode', { ...base, dns: { geoip: { mode: 'maybe' } } }, /dns\.geoip\.mode: must be one of required, optional, off, got "maybe"/],
  ['dns geoip path type', { ...base, dns: { geoip: { path: 5 } } }, /dns\.geoip\.path: must be an array of strings, got number 5/],
  ['dns geoip path empty', { ...base, dns: { geoip: { path: [] } } }, /dns\.geoip\.path: must name at least one \.mmdb file/],
  ['dns geoip unknown key', { ...base, dns: { geoip: { file: 'x' } } }, /dns\.geoip\.file: unknown key/],
  ['dns fallback address', { ...base, dns: { fallback: { api: ['192.0.2.1', 'nope'] } } }, /dns\.fallback\.api\[1\]: must be an IPv4 or IPv6 address/],
  ['dns fallback service', { ...base, dns: { fallback: { 'API!': [] } } }, /dns\.fallback\.API!: service name must be/],
  ['state not an object', { ...base, state: 'on' }, /state: must be an object, got the string "on"/],
  ['state unknown key', { ...base, state: { leaseTtl: 5 } }, /state\.leaseTtl: unknown key/],
  ['state enabled type', { ...base, state: { enabled: 1 } }, /state\.enabled: must be true or false, got number 1/],
  ['state overlay public', { ...base, state: { overlayCidr: '8.8.0.0/16' } }, /state\.overlayCidr: 8\.8\.0\.0\/16 is not a private range/],
  ['state overlay malformed', { ...base, state: { overlayCidr: '10.42.0.0/40' } }, /state\.overlayCidr: .*got "10\.42\.0\.0\/40"/],
  ['state anycast outside overlay', { ...base, state: { anycastCidr: '10.43.255.0/24' } }, /state\.anycastCidr: 10\.43\.255\.0\/24 must lie strictly inside the overlay 10\.42\.0\.0\/16/],
  ['state anycast family', { ...base, state: { anycastCidr: 'fd00::/64' } }, /state\.anycastCidr: fd00::\/64 is IPv6 but the overlay 10\.42\.0\.0\/16 is IPv4/],
  ['state lease too short', { ...base, state: { leaseMs: 1000 } }, /state\.leaseMs: must be between 5000 and 86400000, got 1000/],
  ['state anti-entropy type', { ...base, state: { antiEntropyIntervalMs: '5s' } }, /state\.antiEntropyIntervalMs: must be a number, got the string "5s"/]
]

test('config: dns defaults (zone, port 5353, TTL 30/5, 3 answers, GeoIP required) and the address from listen', () => {
  assert.is(parseNodeConfig(base, 'node.json').dns, undefined, 'no dns section: no DNS server')
  const dns = parseNodeConfig({ ...base, listen: ['/ip4/0.0.0.0/tcp/4001', '/ip4/10.42.0.7/tcp/4001'], dns: {} }, 'node.json').dns
  assert.equal(dns, {
    enabled: true, zone: 'anycast.form', host: '127.0.0.1', port: 5353, ttlS: 30, failoverTtlS: 5, failoverWindowS: 30, maxAnswers: 3,
    overlayPrefixes: ['10.42.0.0/16'], strategy: 'linear', geoip: { mode: 'required' }, fallback: {}, address: '10.42.0.7'
  })
  const custom = parseNodeConfig({
    ...base,
    dns: { zone: 'Edge.Example.', port: 0, ttlS: 3, address: '2001:DB8::1', geoip: { path: 'a.mmdb', mode: 'optional' }, fallback: { api: ['192.0.2.1'] } }
  }, 'node.json').dns!
  assert.is(custom.zone, 'edge.example')
  assert.is(custom.failoverTtlS, 3, 'never above ttlS')
  assert.is(custom.address, '2001:db8::1')
  assert.equal(custom.geoip, { paths: ['a.mmdb'], mode: 'optional' })
  assert.equal(custom.fallback, { api: ['192.0.2.1'] })
})

test('config: state defaults (on, 10.42.0.0/16 with pool 10.42.255.0/24, 60 s leases); a custom overlay gets its last /24 as pool', () => {
  assert.equal(parseNodeConfig(base, 'node.json').state, {
    enabled: true, overlayCidr: '10.42.0.0/16', anycastCidr: '10.42.255.0/24', leaseMs: 60_000, antiEntropyIntervalMs: 5000
  })
  const custom = parseNodeConfig({ ...base, state: { overlayCidr: '10.50.0.0/16', leaseMs: 20_000 } }, 'node.json').state
  assert.is(custom.anycastCidr, '10.50.255.0/24')
  assert.is(custom.leaseMs, 20_000)
  const v6 = parseNodeConfig({ ...base, state: { overlayCidr: 'FD00:42::/48', anycastCidr: 'fd00:42:0:1::/64' } }, 'node.json').state
  assert.equal([v6.overlayCidr, v6.anycastCidr], ['fd00:42::/48', 'fd00:42:0:1::/64'], 'canonical text')
  assert.is(parseNodeConfig({ ...base, state: { enabled: false } }, 'node.json').state.enabled, false)
})

test('config: proxies with defaults and name routing', () => {
  assert.equal(parseNodeConfig({ ...base, proxies: [{ service: 'web', port: 9000, targetPort: 80, names: { 'api.anycast.form': 'api' } }] }, 'node.json').proxies,
    [{ service: 'web', host: '127.0.0.1', port: 9000, targetPort: 80, connectTimeoutMs: 1000, maxAttempts: 3, names: { 'api.anycast.form': 'api' } }])
})

test('config: relay is off unless asked for', () => {
  assert.equal(parseNodeConfig(base, 'node.json').relay, { client: false, server: false })
  assert.equal(parseNodeConfig({ ...base, relay: { client: true } }, 'node.json').relay, { client: true, server: false })
  assert.equal(parseNodeConfig({ ...base, relay: { server: true, durationLimitMs: 30_000, dataLimitBytes: 65_536 } }, 'node.json').relay,
    { client: false, server: true, durationLimitMs: 30_000, dataLimitBytes: 65_536 }, 'a relay may be stricter than libp2p\'s defaults')
})

test('config: dataplane defaults to none; wireguard gets fa0, port 51820 and an endpoint from listen', () => {
  assert.is(parseNodeConfig(base, 'node.json').dataplane.kind, 'none')
  assert.equal(parseNodeConfig({ ...base, listen: ['/ip4/0.0.0.0/tcp/4001', '/ip4/10.99.0.2/tcp/4001'], dataplane: { kind: 'wireguard' } }, 'node.json').dataplane,
    { kind: 'wireguard', interface: 'fa0', listenPort: 51820, reconcileIntervalMs: 5000, masquerade: false, endpoint: '10.99.0.2:51820' })
  assert.equal(parseNodeConfig({ ...base, dataplane: { kind: 'wireguard', interface: 'wg1', listenPort: 51900, endpoint: '203.0.113.7:4500' } }, 'node.json').dataplane,
    { kind: 'wireguard', interface: 'wg1', listenPort: 51900, reconcileIntervalMs: 5000, masquerade: false, endpoint: '203.0.113.7:4500' })
})

for (const [label, value, pattern] of rejected) {
  test(`config: rejects ${label}`, () => {
    try {
      parseNodeConfig(value, 'node.json')
      assert.unreachable('should have thrown')
    } catch (error) {
      assert.instance(error, ConfigError)
      assert.match((error as Error).message, pattern)
      assert.not.match((error as Error).message, /\n/, 'one line')
    }
  })
}

test('config: file errors name the file: missing, directory, bad JSON', () => {
  const dir = mkdtempSync(join(tmpdir(), 'form-anycast-config-'))
  try {
    assert.throws(() => loadNodeConfig(join(dir, 'nope.json')), /nope\.json: config file not found/)
    mkdirSync(join(dir, 'sub.json'))
    assert.throws(() => loadNodeConfig(join(dir, 'sub.json')), /sub\.json: is a directory/)
    writeFileSync(join(dir, 'bad.json'), '{"name": ')
    assert.throws(() => loadNodeConfig(join(dir, 'bad.json')), /bad\.json: not valid JSON/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})


// ---- `up --cluster FILE` ------------------------------------------------------------------------

const node = { name: 'fra', location: { lat: 50.11, lon: 8.68 }, address: '192.0.2.10', services: ['api'] }

test('cluster: the issue\'s shape parses; addresses canonical; services optional', () => {
  const nodes = parseCluster({ nodes: [node, { name: 'nyc', location: { lat: 40.71, lon: -74.01, region: 'us-east', city: 'New York' }, address: '2001:DB8::10' }] }, 'c.json')
  assert.equal(nodes, [
    { name: 'fra', location: { lat: 50.11, lon: 8.68 }, address: '192.0.2.10', services: ['api'] },
    { name: 'nyc', location: { lat: 40.71, lon: -74.01, region: 'us-east', city: 'New York' }, address: '2001:db8::10', services: [] }
  ])
})

const badClusters: Array<[string, unknown, RegExp]> = [
  ['no nodes', {}, /c\.json: nodes: is required/],
  ['empty nodes', { nodes: [] }, /nodes: must have at least 1 entry/],
  ['too many nodes', { nodes: Array.from({ length: 65 }, (_, index) => ({ ...node, name: `n${index}` })) }, /nodes: more than 64 entries/],
  ['unknown top key', { nodes: [node], colour: 1 }, /c\.json: colour: unknown key/],
  ['unknown node key', { nodes: [{ ...node, port: 1 }] }, /nodes\[0\]\.port: unknown key/],
  ['bad name', { nodes: [{ ...node, name: 'FRA' }] }, /nodes\[0\]\.name: must be lowercase letters/],
  ['duplicate name', { nodes: [node, node] }, /nodes\[1\]\.name: duplicate node name "fra"/],
  ['missing location', { nodes: [{ ...node, location: undefined }] }, /nodes\[0\]\.location: is required/],
  ['latitude', { nodes: [{ ...node, location: { lat: 91, lon: 0 } }] }, /nodes\[0\]\.location\.lat: must be between -90 and 90, got 91/],
  ['longitude type', { nodes: [{ ...node, location: { lat: 0, lon: '8' } }] }, /nodes\[0\]\.location\.lon: must be a number, got the string "8"/],
  ['missing address', { nodes: [{ ...node, address: undefined }] }, /nodes\[0\]\.address: is required/],
  ['bad address', { nodes: [{ ...node, address: '192.0.2.300' }] }, /nodes\[0\]\.address: must be an IPv4 or IPv6 address, got "192\.0\.2\.300"/],
  ['services type', { nodes: [{ ...node, services: 'api' }] }, /nodes\[0\]\.services: must be an array/],
  ['service name', { nodes: [{ ...node, services: ['API'] }] }, /nodes\[0\]\.services\[0\]: must be a service name/],
  ['duplicate service', { nodes: [{ ...node, services: ['api', 'api'] }] }, /nodes\[0\]\.services: lists "api" twice/]
]

for (const [label, value, pattern] of badClusters) {
  test(`cluster: rejects ${label}`, () => {
    try {
      parseCluster(value, 'c.json')
      assert.unreachable('should have thrown')
    } catch (error) {
      assert.instance(error, ConfigError)
      assert.match((error as Error).message, pattern)
    }
  })
}

test('up: the dig example asks the first node for a client nearest another origin', () => {
  const at = (name: string, lat: number, lon: number, services: string[]) => ({ name, location: { lat, lon }, dnsPort: 5353, services })
  const dig = digExample([at('fra', 50.11, 8.68, ['api']), at('nyc', 40.71, -74.01, ['api']), at('sin', 1.35, 103.82, ['api'])])
  assert.is(dig.line, 'dig @127.0.0.1 -p 5353 api.anycast.form A +subnet=165.21.0.0/24')
  assert.is(dig.nearest, 'sin')
  assert.is(defaultCluster(5).filter((site) => site.services.includes('api')).length, 5, 'every default node serves api')
  assert.is(defaultCluster(5).filter((site) => site.services.includes('web')).length, 3, 'three of five serve web')
})

test.run()
