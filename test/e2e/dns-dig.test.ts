// End to end with a real `dig` (Debian dnsutils; .ci/run installs it) against GeoDNS servers of
// real node processes started by `form-anycast up --cluster FILE --geoip FILE --dns-port 0`: nodes
// in Frankfurt, New York and Singapore all serve `api`; the GeoIP database is a fixture generated
// here that places the example client subnets `up` suggests where the default database does.
// The printed dig line answers the nearest healthy node first with the ECS option echoed; +tcp works;
// a name outside the zone is REFUSED; a service marked down on its node's status API is gone from
// the next answer within 1 s; with every origin down all of them are answered.
// Without dig this test fails: it never skips.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { pollUntil, startCli } from '../support/processes.ts'
import { writeMmdb } from '../../src/runtime/mmdb-writer.ts'
import { EXAMPLE_CLIENT_SUBNETS } from '../../src/runtime/up.ts'
import { haversineKm } from '../../src/protocols/geo.ts'
import { flatCityRecord } from '../support/geo-fixtures.ts'

const run = promisify(execFile)

const CLUSTER = [
  { name: 'fra', location: { lat: 50.11, lon: 8.68, city: 'Frankfurt' }, address: '192.0.2.10', services: ['api'] },
  { name: 'nyc', location: { lat: 40.71, lon: -74.01, city: 'New York' }, address: '192.0.2.20', services: ['api'] },
  { name: 'sin', location: { lat: 1.35, lon: 103.82, city: 'Singapore' }, address: '192.0.2.30', services: ['api'] }
]
const NAME_OF = new Map(CLUSTER.map((node) => [node.address, node.name]))

interface DigResult { output: string, status: string, answers: Array<{ ttl: number, type: string, data: string }>, names: string[] }

async function dig (args: string[]): Promise<DigResult> {
  let output: string
  try {
    output = (await run('dig', [...args, '+tries=1', '+time=2'], { timeout: 5000 })).stdout
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw new Error('dig is not installed: apt-get install -y dnsutils (.ci/run does this)')
    throw error
  }
  const status = /status: (\w+)/.exec(output)?.[1] ?? 'none'
  const answers = [...output.matchAll(/^\S+\s+(\d+)\s+IN\s+(A|AAAA|TXT)\s+(.+)$/gm)].map((match) => ({ ttl: Number(match[1]), type: match[2]!, data: match[3]! }))
  return { output, status, answers, names: answers.filter((answer) => answer.type === 'A').map((answer) => NAME_OF.get(answer.data) ?? answer.data) }
}

function nearestOrigin (example: { lat: number, lon: number }): string {
  return CLUSTER.map((node) => ({ name: node.name, km: haversineKm(example, node.location) })).sort((a, b) => a.km - b.km)[0]!.name
}

test('e2e dns: real dig against `up --cluster` nodes: nearest healthy first, ECS echoed, TCP, REFUSED, failover within 1 s', async () => {
  await dig(['-v']).catch((error: Error) => { if (/not installed/.test(error.message)) throw error })
  const dir = mkdtempSync(join(tmpdir(), 'form-anycast-dig-'))
  const clusterPath = join(dir, 'cluster.json')
  const geoipPath = join(dir, 'fixture.mmdb')
  writeFileSync(clusterPath, JSON.stringify({ nodes: CLUSTER }))
  writeFileSync(geoipPath, writeMmdb({
    databaseType: 'ip-location-db-city',
    ipVersion: 4,
    records: EXAMPLE_CLIENT_SUBNETS.map((example) => ({
      network: example.subnet,
      data: flatCityRecord({ name: example.city, lat: example.lat, lon: example.lon, country: 'ZZ', subdivisionCode: '', subdivisionName: example.city, timeZone: 'UTC' })
    }))
  }))
  const up = startCli(['up', '--cluster', clusterPath, '--geoip', geoipPath, '--dns-port', '0', '--data-dir', join(dir, 'up'), '--api-port-base', '0', '--log-level', 'error'])
  try {
    await up.waitForLine(/^all 3 nodes ready; service api at 10\.42\.255\.1\/32 served by/, 30_000)
    const apis = new Map(up.lines.flatMap((line) => {
      const match = /^node (\S+): status API (\S+) /.exec(line)
      return match === null ? [] : [[match[1]!, match[2]!] as const]
    }))
    const dnsPorts = new Map(up.lines.flatMap((line) => {
      const match = /^node (\S+): dns 127\.0\.0\.1:(\d+) zone anycast\.form answers (\S+)$/.exec(line)
      return match === null ? [] : [[match[1]!, match[2]!] as const]
    }))
    assert.is(dnsPorts.size, 3, up.lines.join('\n'))
    const digLine = (await up.waitForLine(/^try: (dig @127\.0\.0\.1 -p (\d+) api\.anycast\.form A \+subnet=(\S+))$/, 1000))
    assert.is(digLine[2], dnsPorts.get('fra'), 'the dig line asks the first node')
    const port = digLine[2]!

    // Every node has heard every origin, healthy, with its address.
    await pollUntil(async () => {
      for (const nodePort of dnsPorts.values()) {
        const txt = await dig(['@127.0.0.1', '-p', nodePort, 'api.anycast.form', 'TXT'])
        if (txt.answers.filter((answer) => answer.data.includes('health=healthy')).length !== 3) return false
      }
      return true
    }, { timeoutMs: 20_000, intervalMs: 200, label: 'three healthy origins at every node' })

    // The printed line, as a user would paste it.
    const printed = await dig(digLine[1]!.split(' ').slice(1))
    const example = EXAMPLE_CLIENT_SUBNETS.find((candidate) => candidate.subnet === digLine[3])!
    assert.is(printed.status, 'NOERROR')
    assert.is(printed.names[0], nearestOrigin(example), printed.output)
    assert.is(printed.names.length, 3)
    assert.match(printed.output, new RegExp(`; CLIENT-SUBNET: ${example.subnet.replace(/\./g, '\\.')}/24`), 'ECS echoed with scope /24')
    assert.match(printed.output, /flags: qr aa/, 'authoritative')

    for (const candidate of EXAMPLE_CLIENT_SUBNETS) {
      const answer = await dig(['@127.0.0.1', '-p', dnsPorts.get('nyc')!, 'api.anycast.form', 'A', `+subnet=${candidate.subnet}`])
      assert.is(answer.names[0], nearestOrigin(candidate), `${candidate.city}: ${answer.names.join(', ')}`)
    }

    const tcp = await dig(['@127.0.0.1', '-p', port, 'api.anycast.form', 'A', `+subnet=${example.subnet}`, '+tcp'])
    assert.match(tcp.output, /\(TCP\)/)
    assert.equal(tcp.names, printed.names)

    const outside = await dig(['@127.0.0.1', '-p', port, 'example.com', 'A'])
    assert.is(outside.status, 'REFUSED')
    assert.is(outside.answers.length, 0)

    // Failover: the nearest origin's service goes down on its own status API.
    const victim = printed.names[0]!
    const response = await fetch(`${apis.get(victim)}/v1/services/api/down`, { method: 'POST', signal: AbortSignal.timeout(3000) })
    assert.is(response.status, 200)
    const elapsed = await pollUntil(async () => !(await dig(['@127.0.0.1', '-p', port, 'api.anycast.form', 'A', `+subnet=${example.subnet}`])).names.includes(victim),
      { timeoutMs: 3000, intervalMs: 20, label: `${victim} gone from the answer` })
    assert.ok(elapsed <= 1000, `${victim} left the answer ${elapsed} ms after the POST`)
    const after = await dig(['@127.0.0.1', '-p', port, 'api.anycast.form', 'A', `+subnet=${example.subnet}`])
    assert.is(after.names.length, 2)
    assert.is(after.answers[0]!.ttl, 5, 'failover TTL')

    // Every origin down: all of them answered rather than nothing.
    for (const node of CLUSTER.filter((candidate) => candidate.name !== victim)) {
      assert.is((await fetch(`${apis.get(node.name)}/v1/services/api/down`, { method: 'POST', signal: AbortSignal.timeout(3000) })).status, 200)
    }
    await pollUntil(async () => {
      const txt = await dig(['@127.0.0.1', '-p', port, 'api.anycast.form', 'TXT'])
      return txt.answers.length === 3 && txt.answers.every((answer) => answer.data.includes('health=failed'))
    }, { timeoutMs: 3000, intervalMs: 50, label: 'every origin failed' })
    const all = await dig(['@127.0.0.1', '-p', port, 'api.anycast.form', 'A', `+subnet=${example.subnet}`])
    assert.equal(all.names.slice().sort(), ['fra', 'nyc', 'sin'])

    up.kill('SIGTERM')
    assert.is(await up.exited(20_000), 0)
  } finally {
    up.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  }
})

test('e2e dns: a bad cluster file exits 2 with one line naming the field', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'form-anycast-cluster-'))
  try {
    const path = join(dir, 'bad.json')
    writeFileSync(path, JSON.stringify({ nodes: [{ ...CLUSTER[0], location: { lat: 91, lon: 0 } }] }))
    const bad = startCli(['up', '--cluster', path, '--data-dir', join(dir, 'up')])
    assert.is(await bad.exited(10_000), 2)
    assert.equal(bad.lines, [`form-anycast: ${path}: nodes[0].location.lat: must be between -90 and 90, got 91`])
    const missing = startCli(['up', '--cluster', path, '--geoip', join(dir, 'none.mmdb'), '--data-dir', join(dir, 'up')])
    assert.is(await missing.exited(10_000), 2)
    assert.match(missing.lines.join('\n'), /--geoip: .*none\.mmdb: file not found/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
