// The inspection stream's token and its WebSocket form, on a real StatusApi bound to loopback over
// a simulated three-node world (the world's virtual clock drives the events), and the config rule
// that refuses a status API off loopback without a token, checked through the real CLI.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { WebSocket } from 'ws'
import { SimWorld } from '../../simulations/world.ts'
import { InspectTokenRequiredError, StatusApi } from '../../src/runtime/status-api.ts'
import { createPromMetrics } from '../../src/runtime/metrics.ts'
import { ConfigError, parseNodeConfig } from '../../src/runtime/config.ts'
import { startInspector } from '../../src/runtime/inspect-command.ts'
import { bearerMatches, isLoopbackHost } from '../../src/runtime/inspect-token.ts'
import { startCli } from '../support/processes.ts'

const TOKEN = 'c0ffee-4b1d-7e57-70k3n-0123456789'

async function withApi (run: (api: StatusApi, world: SimWorld) => Promise<void>, inspectToken: string | undefined = TOKEN): Promise<void> {
  const world = new SimWorld({ seed: 21, nodes: 3, degree: 2 })
  await world.start()
  await world.run(1000)
  const api = new StatusApi({ node: world.hosts.get('n00000')!, metrics: createPromMetrics(), inspector: world.bus, host: '127.0.0.1', port: 0, ...(inspectToken === undefined ? {} : { inspectToken }) })
  await api.start()
  try { await run(api, world) } finally {
    await api.stop()
    await world.stop()
  }
}

/** Status of a WebSocket handshake on /v1/inspect: 101 when opened, else the HTTP status. */
async function handshake (url: string, headers: Record<string, string>): Promise<number> {
  const socket = new WebSocket(url, { headers, handshakeTimeout: 5000 })
  try {
    return await new Promise<number>((resolve, reject) => {
      socket.once('open', () => resolve(101))
      socket.once('unexpected-response', (request, response) => { request.destroy(); resolve(response.statusCode ?? 0) })
      socket.once('error', reject)
    })
  } finally { socket.terminate() }
}

test('inspect token: loopback hosts and constant-time bearer comparison', () => {
  for (const host of ['127.0.0.1', '127.8.9.10', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1']) assert.ok(isLoopbackHost(host), host)
  for (const host of ['0.0.0.0', '::', '10.0.0.5', '192.168.1.2', 'example.org', '128.0.0.1']) assert.not.ok(isLoopbackHost(host), host)
  assert.ok(bearerMatches(`Bearer ${TOKEN}`, TOKEN))
  assert.ok(bearerMatches(`bearer ${TOKEN}`, TOKEN))
  for (const header of [undefined, '', TOKEN, `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, `Basic ${TOKEN}`]) assert.not.ok(bearerMatches(header, TOKEN), String(header))
})

test('inspect token: /v1/inspect answers 401 without the token or with a wrong one, streams with it (SSE and WebSocket)', async () => {
  await withApi(async (api) => {
    const none = await fetch(`${api.url}/v1/inspect`, { signal: AbortSignal.timeout(5000) })
    assert.is(none.status, 401)
    assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/)
    assert.match(((await none.json()) as { error: string }).error, /statusApi\.inspectToken/)
    const wrong = await fetch(`${api.url}/v1/inspect`, { headers: { authorization: 'Bearer not-the-token-at-all' }, signal: AbortSignal.timeout(5000) })
    assert.is(wrong.status, 401)
    await wrong.body?.cancel()
    const controller = new AbortController()
    const right = await fetch(`${api.url}/v1/inspect`, { headers: { authorization: `Bearer ${TOKEN}` }, signal: controller.signal })
    assert.is(right.status, 200)
    assert.is(right.headers.get('content-type'), 'text/event-stream')
    controller.abort()
    // The rest of the API stays open: the token guards the stream of every actor's state.
    assert.is((await fetch(`${api.url}/v1/status`, { signal: AbortSignal.timeout(5000) })).status, 200)

    const ws = api.url.replace(/^http/, 'ws') + '/v1/inspect'
    assert.is(await handshake(ws, {}), 401)
    assert.is(await handshake(ws, { authorization: 'Bearer not-the-token-at-all' }), 401)
    assert.is(await handshake(ws, { authorization: `Bearer ${TOKEN}` }), 101)
    assert.is(await handshake(api.url.replace(/^http/, 'ws') + '/v1/status', { authorization: `Bearer ${TOKEN}` }), 404)
  })
})

test('inspect --connect ws://: the relay reads the WebSocket stream with --token; the records are the world\'s own', async () => {
  await withApi(async (api, world) => {
    const seen: string[] = []
    const unsubscribe = world.bus.addSink({ write: (event) => { if (event.kind === 'actor.event') seen.push(`${event.node} ${event.systemId} ${event.event ?? ''}`) } })
    const errors: string[] = []
    const running = await startInspector({ port: 0, connect: [api.url.replace(/^http/, 'ws')], maxRecords: 100_000, token: TOKEN }, { out: () => {}, err: (line) => errors.push(line) })
    try {
      const { store } = running
      // Seeded from /v1/actors, then the stream: wait (bounded) for the seed, then drive the world.
      for (let i = 0; i < 100 && store.end === 0; i++) await new Promise((resolve) => setTimeout(resolve, 50))
      assert.ok(store.end > 0, `seeded (${errors.join('; ')})`)
      const seeded = store.end
      await world.run(2000)
      for (let i = 0; i < 100 && store.end - seeded < seen.length; i++) await new Promise((resolve) => setTimeout(resolve, 50))
      const streamed: string[] = []
      for (let index = seeded; index < store.end; index++) {
        const record = store.record(index)!
        if (record.kind === 'actor.event') streamed.push(`${record.node} ${record.systemId} ${record.event ?? ''}`)
      }
      assert.ok(seen.length > 20, `the world emitted events (${seen.length})`)
      assert.equal(streamed, seen, 'every event the bus emitted arrived, in order')
      const meta = await (await fetch(`${running.server.url}/api/meta`)).json() as { nodes: Array<{ name: string, peerId?: string }> }
      assert.ok(meta.nodes.some((node) => node.name === 'n00000' && node.peerId === 'n00000'), 'status named the node and its peer id')
      assert.equal(errors, [])
    } finally {
      unsubscribe()
      await running.stop()
    }
  })
})

test('inspect --connect without the token: the relay is refused (401) and says so', async () => {
  await withApi(async (api) => {
    const errors: string[] = []
    const running = await startInspector({ port: 0, connect: [api.url.replace(/^http/, 'ws')], maxRecords: 10_000 }, { out: () => {}, err: (line) => errors.push(line) })
    try {
      for (let i = 0; i < 100 && errors.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 50))
      assert.match(errors[0] ?? '', /HTTP 401/)
    } finally { await running.stop() }
  })
})

test('inspect token: a status API off loopback without a token is refused by config (exit 2 naming the field) and by StatusApi', async () => {
  const base = { name: 'a', dataDir: '/tmp/none' }
  try {
    parseNodeConfig({ ...base, statusApi: { host: '0.0.0.0', port: 0 } }, 'node.json')
    assert.unreachable('no token off loopback')
  } catch (error) {
    assert.instance(error, ConfigError)
    assert.is((error as ConfigError).field, 'statusApi.inspectToken')
  }
  assert.throws(() => parseNodeConfig({ ...base, statusApi: { host: '10.0.0.1', inspectToken: 'short' } }, 'node.json'), /statusApi\.inspectToken: must be at least 16 characters/)
  assert.throws(() => parseNodeConfig({ ...base, statusApi: { host: '10.0.0.1', inspectToken: TOKEN, inspectTokenFile: 't' } }, 'node.json'), /statusApi\.inspectTokenFile: give statusApi\.inspectToken or statusApi\.inspectTokenFile, not both/)
  assert.is(parseNodeConfig({ ...base, statusApi: { host: '10.0.0.1', inspectToken: TOKEN } }, 'node.json').statusApi.inspectToken, TOKEN)
  assert.is(parseNodeConfig({ ...base, statusApi: { host: '10.0.0.1', inspectTokenFile: 'token.txt' } }, 'node.json').statusApi.inspectTokenFile, 'token.txt')
  assert.equal(parseNodeConfig(base, 'node.json').statusApi, { host: '127.0.0.1', port: 0 })

  const world = new SimWorld({ seed: 21, nodes: 3, degree: 2 })
  await world.start()
  const api = new StatusApi({ node: world.hosts.get('n00000')!, metrics: createPromMetrics(), inspector: world.bus, host: '0.0.0.0', port: 0 })
  try {
    await api.start()
    assert.unreachable('StatusApi must not listen off loopback without a token')
  } catch (error) {
    assert.instance(error, InspectTokenRequiredError)
  } finally {
    await api.stop()
    await world.stop()
  }

  const dir = mkdtempSync(join(tmpdir(), 'form-anycast-inspect-token-'))
  try {
    const config = join(dir, 'node.json')
    writeFileSync(config, JSON.stringify({ name: 'a', dataDir: join(dir, 'a'), statusApi: { host: '0.0.0.0', port: 0 }, logLevel: 'error' }))
    const node = startCli(['node', '--config', config])
    assert.is(await node.exited(20_000), 2)
    assert.ok(node.lines.some((line) => line.includes('statusApi.inspectToken: is required when statusApi.host ("0.0.0.0") is not a loopback address')), node.lines.join('\n'))
    // A token file that does not exist is named too, before anything listens.
    writeFileSync(config, JSON.stringify({ name: 'a', dataDir: join(dir, 'a'), statusApi: { host: '0.0.0.0', port: 0, inspectTokenFile: join(dir, 'missing') }, logLevel: 'error' }))
    const missing = startCli(['node', '--config', config])
    assert.is(await missing.exited(20_000), 2)
    assert.ok(missing.lines.some((line) => line.includes('statusApi.inspectTokenFile:') && line.includes('file not found')), missing.lines.join('\n'))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
