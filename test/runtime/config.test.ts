import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError, loadNodeConfig, parseNodeConfig } from '../../src/runtime/config.ts'

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
  ['hold below minimum', { ...base, session: { holdTimeMs: 100 } }, /session\.holdTimeMs: must be between 300/],
  ['hold type', { ...base, session: { holdTimeMs: 'soon' } }, /session\.holdTimeMs: must be a number, got the string "soon"/],
  ['backoff order', { ...base, session: { backoff: { minMs: 500, maxMs: 100 } } }, /session\.backoff\.maxMs: must be at least minMs/],
  ['nested unknown key', { ...base, session: { holdTime: 3 } }, /session\.holdTime: unknown key/],
  ['log level', { ...base, logLevel: 'loud' }, /logLevel: must be one of debug, info, warn, error, silent/],
  ['service prefix', { ...base, services: [{ name: 'api', prefix: '10.42.255.300/32', check: { kind: 'tcp', host: 'x', port: 1 } }] }, /services\[0\]\.prefix: not a valid IPv4 CIDR/],
  ['service check kind', { ...base, services: [{ name: 'api', prefix: '10.42.255.1/32', check: { kind: 'icmp' } }] }, /services\[0\]\.check\.kind: must be "tcp" or "http"/],
  ['duplicate service', { ...base, services: [1, 2].map(() => ({ name: 'api', prefix: '10.42.255.1/32', check: { kind: 'http', url: 'http://127.0.0.1/' } })) }, /services\[1\]\.name: duplicate service "api"/],
  ['probe timeout above interval', { ...base, probe: { intervalMs: 500, timeoutMs: 900 } }, /probe\.timeoutMs: must not exceed probe\.intervalMs/]
]

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

test.run()
