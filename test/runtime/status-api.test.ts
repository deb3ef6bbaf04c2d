import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { SimWorld } from '../../simulations/world.ts'
import { StatusApi, PortInUseError } from '../../src/runtime/status-api.ts'
import { createPromMetrics } from '../../src/runtime/metrics.ts'
import { runStatusCommand } from '../../src/runtime/status-command.ts'

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
    assert.match(((await missing.json()) as { error: string }).error, /no such endpoint \/v1\/nothing/)
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

test.run()
