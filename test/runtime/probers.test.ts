import { test } from 'uvu'
import * as assert from 'uvu/assert'
import * as fc from 'fast-check'
import { createServer as createHttpServer } from 'node:http'
import { createServer as createTcpServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { VirtualClock, createRealClock } from '../../src/runtime/clock.ts'
import { createRandom } from '../../src/runtime/random.ts'
import { SimNetwork } from '../../src/runtime/sim-network.ts'
import { createNetProber, createPeerProbes, createSimProber, type PeerProbes } from '../../src/runtime/probers.ts'
import { decodeProbeFrame, encodeProbeFrame, ProbeFrameError, type ProbeFrame } from '../../src/protocols/probe-codec.ts'
import { settle } from '../../simulations/world.ts'

async function simTriangle (): Promise<{ clock: VirtualClock, network: SimNetwork, probes: Map<string, PeerProbes> }> {
  const clock = new VirtualClock()
  const random = createRandom(1)
  const network = new SimNetwork({ clock, random, latencyMs: () => 10 })
  const probes = new Map<string, PeerProbes>()
  for (const id of ['a', 'b', 'c']) {
    const overlay = network.createOverlay(id)
    await overlay.start()
    probes.set(id, createPeerProbes({ overlay, clock, random: random.fork(id) }))
  }
  network.connectNow('a', 'b'); network.connectNow('b', 'c'); network.connectNow('a', 'c')
  return { clock, network, probes }
}

async function runWhile<T> (clock: VirtualClock, promise: Promise<T>, limitMs = 10_000): Promise<T> {
  let done = false
  let value!: T
  promise.then((v) => { done = true; value = v }, () => { done = true })
  for (let elapsed = 0; !done && elapsed < limitMs; elapsed += 1) { await settle(); clock.advance(1) }
  await settle()
  assert.ok(done, 'probe settled')
  return value
}

test('probers: direct peer probe measures the round trip on the virtual clock, 10 ms links', async () => {
  const { clock, probes } = await simTriangle()
  const result = await runWhile(clock, probes.get('a')!.probePeer('c', 1000))
  assert.ok(result.ok, result.error)
  assert.ok(result.latencyMs >= 20 && result.latencyMs <= 22, `latency ${result.latencyMs}`)
})

test('probers: a crashed peer times out; an indirect probe through a helper rescues a cut link', async () => {
  const { clock, network, probes } = await simTriangle()
  assert.ok((await runWhile(clock, probes.get('a')!.probePeer('c', 500))).ok, 'the probe stream opens and answers')
  network.partition(['a'], ['c'])
  const direct = await runWhile(clock, probes.get('a')!.probePeer('c', 500))
  assert.not.ok(direct.ok)
  assert.not.ok(direct.inconclusive, 'an unanswered probe on an open stream is evidence')
  assert.match(direct.error ?? '', /timeout after 500 ms/)
  const indirect = await runWhile(clock, probes.get('a')!.probeVia('b', 'c', 500))
  assert.ok(indirect.ok, indirect.error)
  network.heal()
  network.crash('c')
  const dead = await runWhile(clock, probes.get('a')!.probeVia('b', 'c', 500))
  assert.not.ok(dead.ok)
})

test('probers: a probe whose stream is still opening is inconclusive; an opening that fails is a failure', async () => {
  const { clock, network, probes } = await simTriangle()
  network.partition(['a'], ['c'])
  const first = await runWhile(clock, probes.get('a')!.probePeer('c', 500))
  assert.not.ok(first.ok)
  assert.ok(first.inconclusive, `no stream yet: ${first.error}`)
  assert.match(first.error ?? '', /still opening after 500 ms/)
  // The opening gives up after its own bound (3 s); a probe waiting on it then fails.
  let last = first
  for (let i = 0; i < 10 && last.inconclusive === true; i++) last = await runWhile(clock, probes.get('a')!.probePeer('c', 500))
  assert.not.ok(last.ok)
  assert.not.ok(last.inconclusive, `the opening failed: ${last.error}`)
})

test('probers: the simulated service oracle answers after its latency, down after the timeout', async () => {
  const { clock, probes } = await simTriangle()
  let up = true
  const prober = createSimProber(probes.get('a')!, clock, () => ({ up, latencyMs: 4 }))
  const start = clock.now()
  const ok = await runWhile(clock, prober.probe({ kind: 'tcp', host: 'svc', port: 80 }, { timeoutMs: 300 }))
  assert.ok(ok.ok)
  assert.is(clock.now() - start >= 4, true)
  up = false
  const before = clock.now()
  const down = await runWhile(clock, prober.probe({ kind: 'tcp', host: 'svc', port: 80 }, { timeoutMs: 300 }))
  assert.not.ok(down.ok)
  assert.match(down.error ?? '', /connection refused/)
  assert.ok(clock.now() - before >= 4 && clock.now() - before < 300, 'refused at once, not after the timeout')
})

test('probers: real tcp and http checks against loopback servers, and their failures', async () => {
  const clock = createRealClock()
  const tcp = createTcpServer((socket) => socket.end())
  await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve))
  const http = createHttpServer((request, response) => { response.writeHead(request.url === '/bad' ? 503 : 200); response.end('ok') })
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  const noPeers: PeerProbes = { probePeer: async () => ({ ok: false, latencyMs: 0 }), probeVia: async () => ({ ok: false, latencyMs: 0 }), stop () {} }
  const prober = createNetProber(noPeers, clock)
  try {
    const tcpPort = (tcp.address() as AddressInfo).port
    const httpPort = (http.address() as AddressInfo).port
    assert.ok((await prober.probe({ kind: 'tcp', host: '127.0.0.1', port: tcpPort }, { timeoutMs: 2000 })).ok)
    assert.ok((await prober.probe({ kind: 'http', url: `http://127.0.0.1:${httpPort}/` }, { timeoutMs: 2000 })).ok)
    const bad = await prober.probe({ kind: 'http', url: `http://127.0.0.1:${httpPort}/bad` }, { timeoutMs: 2000 })
    assert.not.ok(bad.ok)
    assert.match(bad.error ?? '', /status 503/)
    tcp.close()
    await new Promise((resolve) => setTimeout(resolve, 50))
    const refused = await prober.probe({ kind: 'tcp', host: '127.0.0.1', port: tcpPort }, { timeoutMs: 2000 })
    assert.not.ok(refused.ok)
    assert.match(refused.error ?? '', /ECONNREFUSED/)
  } finally {
    tcp.close(); http.close()
  }
})

test('probe codec: every frame round-trips; random bytes fail only with ProbeFrameError', () => {
  const frames: ProbeFrame[] = [
    { type: 'ping', nonce: 1 }, { type: 'pong', nonce: 0xffffffff },
    { type: 'ping-req', nonce: 9, target: '12D3KooWabc', timeoutMs: 400 },
    { type: 'ping-req-ack', nonce: 9, ok: true, latencyMs: 12.5 }
  ]
  for (const frame of frames) assert.equal(decodeProbeFrame(encodeProbeFrame(frame)), frame)
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
    try { decodeProbeFrame(bytes) } catch (error) { return error instanceof ProbeFrameError }
    return true
  }), { seed: 42, numRuns: 2000 })
})

test.run()
