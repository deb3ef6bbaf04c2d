import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createServer, connect, type Server } from 'node:net'
import { TcpProxy } from '../../src/runtime/tcp-proxy.ts'
import { createMemoryLogger } from '../../src/runtime/logger.ts'
import { createMemoryMetrics } from '../../src/runtime/metrics.ts'
import type { RouteCandidate, RouteEntry } from '../../src/protocols/routes.ts'

const candidate = (origin: string, costMs: number): RouteCandidate => ({ origin, seq: 1, attributes: { health: 'healthy', preference: 100, load: 0, ttlMs: 15_000 }, path: { hops: [origin], costMs } })

/** A service on a loopback address that answers with its name, then closes. */
async function origin (host: string, name: string): Promise<{ server: Server, port: number }> {
  const server = createServer((socket) => { socket.on('error', () => undefined); socket.end(`${name}\n`) })
  await new Promise<void>((resolve) => server.listen(0, host, resolve))
  return { server, port: (server.address() as { port: number }).port }
}

async function request (port: number): Promise<string> {
  return await new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port })
    let data = ''
    socket.on('data', (chunk) => { data += String(chunk) })
    socket.on('close', () => resolve(data.trim() || '(closed)'))
    socket.on('error', () => undefined)
    socket.setTimeout(3000, () => socket.destroy())
  })
}

test('tcp proxy: forwards to the chosen origin, retries the next-best when it refuses, counts per origin', async () => {
  // b and c listen on one port at two loopback addresses; d's address has nothing listening.
  const b = await origin('127.0.0.2', 'b')
  const c = createServer((socket) => { socket.on('error', () => undefined); socket.end('c\n') })
  await new Promise<void>((resolve) => c.listen(b.port, '127.0.0.3', resolve))
  const addresses: Record<string, string> = { b: '127.0.0.2', c: '127.0.0.3', d: '127.0.0.4' }
  let route: RouteEntry = { prefix: '10.42.255.1/32', service: 'web', origin: 'b', nextHop: 'b', costMs: 5, reason: 'cost', candidates: [candidate('b', 5), candidate('c', 20)] }
  const proxy = new TcpProxy({ routes: () => [route], addressOf: (id) => addresses[id], logger: createMemoryLogger(), metrics: createMemoryMetrics() }, {
    service: 'web', prefix: '10.42.255.1/32', host: '127.0.0.1', port: 0, targetPort: b.port, connectTimeoutMs: 500
  })
  const port = await proxy.start()
  try {
    assert.equal(await Promise.all([request(port), request(port), request(port)]), ['b', 'b', 'b'])
    // The route moves to d (chosen, but refusing): each connection retries on the next-best, c.
    route = { ...route, origin: 'd', nextHop: 'd', candidates: [candidate('d', 1), candidate('b', 5), candidate('c', 20)] }
    b.server.close()
    assert.equal([await request(port), await request(port)], ['c', 'c'])
    const counts = Object.fromEntries(proxy.connections().map((count) => [count.origin, count]))
    assert.equal(counts.b, { origin: 'b', active: 0, total: 3, failed: 2 })
    assert.equal(counts.c, { origin: 'c', active: 0, total: 2, failed: 0 })
    assert.equal(counts.d, { origin: 'd', active: 0, total: 0, failed: 2 })
    // No usable origin: the client's connection is closed, not left hanging.
    route = { ...route, origin: undefined, nextHop: undefined, candidates: [] }
    assert.is(await request(port), '(closed)')
  } finally {
    await proxy.stop()
    c.close()
    b.server.close()
  }
})

test('tcp proxy: routes by HTTP Host and TLS server_name to each name\'s service, forwarding the bytes it read', async () => {
  // Each origin answers with its name and the first line it received.
  const echo = async (host: string, name: string): Promise<Server> => {
    const server = createServer((socket) => {
      socket.on('error', () => undefined)
      socket.once('data', (chunk) => socket.end(`${name} ${String(chunk).split('\r\n')[0]!.slice(0, 40)}\n`))
    })
    await new Promise<void>((resolve) => server.listen(7391, host, resolve))
    return server
  }
  const servers = [await echo('127.0.0.5', 'web-origin'), await echo('127.0.0.6', 'api-origin')]
  const routes: RouteEntry[] = [
    { prefix: '10.42.255.1/32', service: 'web', origin: 'w', nextHop: 'w', costMs: 1, reason: 'cost', candidates: [candidate('w', 1)] },
    { prefix: '10.42.255.2/32', service: 'api', origin: 'p', nextHop: 'p', costMs: 1, reason: 'cost', candidates: [candidate('p', 1)] }
  ]
  const proxy = new TcpProxy({ routes: () => routes, addressOf: (id) => id === 'w' ? '127.0.0.5' : '127.0.0.6', logger: createMemoryLogger(), metrics: createMemoryMetrics() }, {
    service: 'web', names: { 'api.anycast.form': 'api' }, host: '127.0.0.1', port: 0, targetPort: 7391
  })
  const port = await proxy.start()
  const send = async (payload: string | Buffer): Promise<string> => await new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port }, () => socket.write(payload))
    let data = ''
    socket.on('data', (chunk) => { data += String(chunk) })
    socket.on('close', () => resolve(data.trim()))
    socket.on('error', () => undefined)
    socket.setTimeout(3000, () => socket.destroy())
  })
  try {
    assert.is(await send('GET /a HTTP/1.1\r\nHost: API.anycast.form:80\r\n\r\n'), 'api-origin GET /a HTTP/1.1')
    assert.is(await send('GET /b HTTP/1.1\r\nHost: www.elsewhere.example\r\n\r\n'), 'web-origin GET /b HTTP/1.1', 'an unlisted name goes to the default service')
    assert.is(await send('not http at all\r\n'), 'web-origin not http at all')
    // A real ClientHello (node's TLS client, captured by a plain server), sent through the proxy as is.
    const { connect: tlsConnect } = await import('node:tls')
    const hello = await new Promise<Buffer>((resolve) => {
      const capture = createServer((socket) => socket.once('data', (chunk) => { resolve(chunk); socket.destroy(); capture.close() }))
      capture.listen(0, '127.0.0.1', () => {
        const tls = tlsConnect({ host: '127.0.0.1', port: (capture.address() as { port: number }).port, servername: 'api.anycast.form', rejectUnauthorized: false })
        tls.on('error', () => undefined)
      })
    })
    const tlsAnswer = await send(hello)
    assert.match(tlsAnswer, /^api-origin /, 'TLS server_name api.anycast.form reached the api origin')
  } finally {
    await proxy.stop()
    for (const server of servers) server.close()
  }
})

test('tcp proxy: open connections per (service, origin) are reported as they open and close (the node turns its own into announced load)', async () => {
  // An origin that holds connections open until the client closes them.
  const held = createServer((socket) => { socket.on('error', () => undefined); socket.write('hi\n') })
  await new Promise<void>((resolve) => held.listen(0, '127.0.0.2', resolve))
  const route: RouteEntry = { prefix: '10.42.255.1/32', service: 'web', origin: 'b', nextHop: 'b', costMs: 5, reason: 'cost', candidates: [candidate('b', 5)] }
  const changes: string[] = []
  const proxy = new TcpProxy({
    routes: () => [route], addressOf: () => '127.0.0.2', logger: createMemoryLogger(), metrics: createMemoryMetrics(),
    onActiveChange: ({ service, origin, active }) => changes.push(`${service} ${origin} ${active}`)
  }, { service: 'web', host: '127.0.0.1', port: 0, targetPort: (held.address() as { port: number }).port, connectTimeoutMs: 500 })
  const port = await proxy.start()
  const open = async (): Promise<ReturnType<typeof connect>> => await new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port })
    socket.on('error', () => undefined)
    socket.once('data', () => resolve(socket))
  })
  const waitFor = async (count: number): Promise<void> => {
    for (let i = 0; i < 200 && changes.length < count; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  }
  try {
    const first = await open()
    const second = await open()
    assert.equal(changes, ['web b 1', 'web b 2'])
    first.destroy()
    await waitFor(3)
    second.destroy()
    await waitFor(4)
    assert.equal(changes, ['web b 1', 'web b 2', 'web b 1', 'web b 0'])
  } finally {
    await proxy.stop()
    held.close()
  }
})

test.run()
