import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { SimWorld } from '../../simulations/world.ts'
import { StatusApi, PortInUseError } from '../../src/runtime/status-api.ts'
import { createPromMetrics } from '../../src/runtime/metrics.ts'
import { runStatusCommand } from '../../src/runtime/status-command.ts'
import { allocateAnycast, parseIpamConfig } from '../../src/protocols/ipam.ts'
import { main } from '../../src/runtime/cli.ts'

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function json (url: string): Promise<any> { return await (await fetch(url)).json() }

async function world3 (): Promise<SimWorld> {
  const world = new SimWorld({ seed: 11, nodes: 3, degree: 2 })
  await world.start()
  await world.run(3000)
  return world
}

test('status API: status, peers, members, actors, metrics; 404 and 405 explain themselves', async () => {
  const world = await world3()
  const host = world.hosts.get('n00000')!
  const metrics = createPromMetrics()
  metrics.counter('example_total', 'example').inc()
  const api = new StatusApi({ node: host, metrics, inspector: world.bus, host: '127.0.0.1', port: 0 })
  await api.start()
  try {
    const status = await json(`${api.url}/v1/status`)
    assert.is(status.name, 'n00000')
    assert.is(status.sessions.established, 2)
    const peers = (await json(`${api.url}/v1/peers`)).peers
    assert.equal(peers.map((p: { state: string }) => p.state), ['established', 'established'])
    const members = (await json(`${api.url}/v1/members`)).members
    assert.equal(members.map((m: { name: string }) => m.name), ['n00001', 'n00002'])
    const tree = await json(`${api.url}/v1/actors`)
    assert.is(tree.id, 'root')
    assert.ok(JSON.stringify(tree).includes('peer-session:n00001'))
    const text = await (await fetch(`${api.url}/metrics`)).text()
    assert.match(text, /form_anycast_example_total 1/)
    const missing = await fetch(`${api.url}/v1/nothing`)
    assert.is(missing.status, 404)
    const missingBody = (await missing.json()) as { error: string, endpoints: string[] }
    assert.match(missingBody.error, /no such endpoint \/v1\/nothing \(endpoints: .*\/v1\/leases, \/v1\/state.*POST \/v1\/services,/)
    assert.ok(missingBody.endpoints.includes('/v1/leases') && missingBody.endpoints.includes('/v1/state'))
    const noState = await fetch(`${api.url}/v1/leases`)
    assert.is(noState.status, 404, 'a node without replicated state has no leases')
    assert.match(((await noState.json()) as { error: string }).error, /state\.enabled/)
    const post = await fetch(`${api.url}/v1/status`, { method: 'POST' })
    assert.is(post.status, 405)
    const lines: string[] = []
    assert.is(await runStatusCommand({ api: api.url, json: false, write: (line) => lines.push(line) }), 0)
    assert.match(lines.join('\n'), /sessions 2\/2 established/)
    assert.match(lines.join('\n'), /n00001\s+established/)
  } finally {
    await api.stop()
    await world.stop()
  }
})

test('status API: a port in use is a PortInUseError naming host and port', async () => {
  const world = await world3()
  const host = world.hosts.get('n00000')!
  const first = new StatusApi({ node: host, metrics: createPromMetrics(), inspector: world.bus, host: '127.0.0.1', port: 0 })
  await first.start()
  const port = Number(new URL(first.url).port)
  const second = new StatusApi({ node: host, metrics: createPromMetrics(), inspector: world.bus, host: '127.0.0.1', port })
  try {
    await second.start()
    assert.unreachable('second listen should fail')
  } catch (error) {
    assert.instance(error, PortInUseError)
    assert.match((error as Error).message, new RegExp(`127\\.0\\.0\\.1:${port}: address already in use`))
  } finally {
    await first.stop()
    await world.stop()
  }
})

test('status API: /v1/inspect streams inspection events as server-sent events', async () => {
  const world = await world3()
  const host = world.hosts.get('n00000')!
  const api = new StatusApi({ node: host, metrics: createPromMetrics(), inspector: world.bus, host: '127.0.0.1', port: 0 })
  await api.start()
  try {
    const controller = new AbortController()
    const response = await fetch(`${api.url}/v1/inspect`, { signal: controller.signal })
    assert.is(response.headers.get('content-type'), 'text/event-stream')
    const reader = response.body!.getReader()
    await world.run(1500)
    let text = ''
    for (let i = 0; i < 20 && !text.includes('data: {'); i++) {
      const { value } = await reader.read()
      text += new TextDecoder().decode(value)
    }
    const line = text.split('\n').find((l) => l.startsWith('data: '))
    assert.ok(line !== undefined, 'an event arrived')
    assert.type(JSON.parse(line.slice(6)).systemId, 'string')
    controller.abort()
  } finally {
    await api.stop()
    await world.stop()
  }
})

// ---- replicated state: /v1/leases, /v1/state, POST /v1/services ------------------------------

const API_PREFIX = '10.42.255.1/32'

async function stateWorld (): Promise<SimWorld> {
  const world = new SimWorld({
    seed: 12,
    nodes: 3,
    degree: 2,
    state: { antiEntropyIntervalMs: 1000, leaseMs: 20_000 },
    services: (index) => index === 0 ? [{ name: 'api', prefix: API_PREFIX, check: { kind: 'tcp', host: 'svc', port: 80 }, preference: 100 }] : []
  })
  await world.start()
  await world.run(8000)
  return world
}

async function post (url: string, body: string, headers: Record<string, string> = { 'content-type': 'application/json' }): Promise<{ status: number, body: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const response = await fetch(url, { method: 'POST', body, headers })
  return { status: response.status, body: await response.json() }
}

test('status API: /v1/leases lists our bound unicast and anycast leases; /v1/state digests and counts agree across replicas, seed 12', async () => {
  const world = await stateWorld()
  const host = world.hosts.get('n00000')!
  const api = new StatusApi({ node: host, metrics: createPromMetrics(), inspector: world.bus, host: '127.0.0.1', port: 0 })
  await api.start()
  try {
    const leases = await json(`${api.url}/v1/leases`)
    assert.is(leases.nodeId, 'n00000')
    assert.match(leases.unicast, /^10\.42\.\d+\.\d+$/)
    const ownUnicast = leases.leases.find((lease: { kind: string, holder: string }) => lease.kind === 'unicast' && lease.holder === 'n00000')
    assert.is(ownUnicast.address, leases.unicast)
    assert.is(ownUnicast.state, 'bound')
    assert.ok(ownUnicast.live && ownUnicast.expiresAtMs > leases.nowMs)
    const anycast = leases.leases.filter((lease: { kind: string }) => lease.kind === 'anycast')
    assert.equal(anycast.map((lease: { address: string, holder: string, service: string, state: string }) => [lease.address, lease.holder, lease.service, lease.state]), [['10.42.255.1', 'n00000', 'api', 'bound']])
    assert.is(leases.leases.filter((lease: { kind: string }) => lease.kind === 'unicast').length, 3, 'every node\'s unicast lease has replicated here')

    const state = await json(`${api.url}/v1/state`)
    assert.match(state.digest, /^[0-9a-f]{64}$/)
    assert.equal(Object.keys(state.collections), ['nodes', 'services', 'leases', 'settings'])
    assert.equal(state.collections.leases.live, 4, 'three unicast leases and one anycast lease')
    assert.is(state.collections.services.live, 0)
    assert.is(state.digest, world.hosts.get('n00002')!.replicator!.state.digest(), 'equal to another replica\'s digest')

    const lines: string[] = []
    assert.is(await runStatusCommand({ api: api.url, json: false, write: (line) => lines.push(line) }), 0)
    const text = lines.join('\n')
    assert.match(text, /ADDRESS\s+KIND\s+HOLDER\s+SERVICE\s+EXPIRES IN\s+STATE/)
    assert.match(text, new RegExp(`${leases.unicast.replace(/\./g, '\\.')}\\s+unicast\\s+n00000 \\(self\\)\\s+-\\s+\\d+ s\\s+bound`))
    assert.match(text, /10\.42\.255\.1\s+anycast\s+n00000 \(self\)\s+api\s+\d+ s\s+bound/)
  } finally {
    await api.stop()
    await world.stop()
  }
})

test('status API: POST /v1/services registers a service with a fresh anycast address (201), durably; 409 twice; 400/413 name the problem', async () => {
  const world = await stateWorld()
  const host = world.hosts.get('n00000')!
  const api = new StatusApi({ node: host, metrics: createPromMetrics(), inspector: world.bus, host: '127.0.0.1', port: 0 })
  await api.start()
  try {
    const created = await post(`${api.url}/v1/services`, JSON.stringify({ name: 'shop' }))
    assert.is(created.status, 201)
    const ipam = parseIpamConfig({})
    const expected = allocateAnycast(ipam, 'shop', ['10.42.255.1']).address
    assert.equal(created.body, { name: 'shop', anycast: [expected] })
    assert.is.not(expected, '10.42.255.1', 'never the address api\'s lease holds')
    assert.equal(host.replicator!.get('services', 'shop'), { anycast: [expected] })
    assert.ok(host.replicator!.state.getOp('services', 'shop') !== undefined)

    const again = await post(`${api.url}/v1/services`, JSON.stringify({ name: 'shop' }))
    assert.is(again.status, 409)
    assert.match(again.body.error, /service "shop" is already registered \(anycast 10\.42\.255\.\d+\)/)
    // A second service never gets the first one's address, even from the same probe position.
    const second = await post(`${api.url}/v1/services`, JSON.stringify({ name: 'cart' }))
    assert.is(second.status, 201)
    assert.is.not(second.body.anycast[0], expected)

    await world.run(3000)
    assert.equal(world.hosts.get('n00002')!.replicator!.get('services', 'shop'), { anycast: [expected] }, 'the record replicates')
    const state = await json(`${api.url}/v1/state`)
    assert.is(state.collections.services.live, 2)

    const bad: Array<[string, string, number, RegExp]> = [
      ['bad name', JSON.stringify({ name: 'Shop!' }), 400, /^name: must be lowercase letters/],
      ['missing name', '{}', 400, /^name: must be/],
      ['unknown field', JSON.stringify({ name: 'x', prefix: '10.42.255.9/32' }), 400, /^prefix: unknown field/],
      ['not an object', '["shop"]', 400, /^body: must be a JSON object/],
      ['not JSON', '{"name": ', 400, /^body: not valid JSON/],
      ['too large', JSON.stringify({ name: 'x'.repeat(5000) }), 413, /^body: larger than 4096 bytes/]
    ]
    for (const [label, body, status, pattern] of bad) {
      const answer = await post(`${api.url}/v1/services`, body)
      assert.is(answer.status, status, label)
      assert.match(answer.body.error, pattern, label)
    }
    const chunked = await fetch(`${api.url}/v1/services`, {
      method: 'POST',
      body: new ReadableStream({ start (controller) { for (let i = 0; i < 8; i++) controller.enqueue(new TextEncoder().encode('x'.repeat(1024))); controller.close() } }),
      duplex: 'half'
    } as RequestInit)
    assert.is(chunked.status, 413, 'a body without a length is cut off at the bound too')
    assert.is((await fetch(`${api.url}/v1/services`)).status, 405)
    assert.is(host.replicator!.state.counts().services.live, 2, 'nothing else was written')

    // The CLI: registered (0), exists (1), bad name (2), each with one line that says so.
    const out: string[] = []
    const err: string[] = []
    const io = { out: (line: string) => out.push(line), err: (line: string) => err.push(line) }
    assert.is(await main(['node', 'form-anycast', 'service', 'register', 'mail', '--api', api.url], io), 0)
    assert.match(out[0]!, /^service mail registered: anycast 10\.42\.255\.\d+$/)
    assert.equal(host.replicator!.get('services', 'mail'), { anycast: [out[0]!.split(' ').at(-1)!] })
    assert.is(await main(['node', 'form-anycast', 'service', 'register', 'mail', '--api', api.url], io), 1)
    assert.match(err.at(-1)!, /answered 409: service "mail" is already registered/)
    assert.is(await main(['node', 'form-anycast', 'service', 'register', 'Mail!', '--api', api.url], io), 2)
    assert.match(err.at(-1)!, /service register: NAME: name: must be lowercase letters/)
  } finally {
    await api.stop()
    await world.stop()
  }
})

test.run()
