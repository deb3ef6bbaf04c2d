// Circuit relay v2 in the libp2p assembly (opt-in): a node reserves a slot on a relay and another
// reaches it through the relay only — a limited connection (the relay's default limits), over
// which libp2p ping runs. Without the option no relayed address exists. Real libp2p on 127.0.0.1.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2pNode, type OverlayLibp2p } from '../../src/runtime/libp2p-node.ts'
import { createLibp2pOverlay, type Libp2pOverlay } from '../../src/runtime/libp2p-overlay.ts'
import type { FrameStream } from '../../src/runtime/ports.ts'

async function node (relay?: { client: boolean, server: boolean }): Promise<OverlayLibp2p> {
  const libp2p = await createLibp2pNode({ privateKey: await generateKeyPair('Ed25519'), ...(relay === undefined ? {} : { relay }) })
  await libp2p.start()
  return libp2p
}

test('relay: a client reached only through a relay server gets a limited relayed connection that carries ping', async () => {
  const relay = await node({ client: false, server: true })
  const listener = await node({ client: true, server: false })
  const dialer = await node({ client: true, server: false })
  const plain = await node()
  try {
    await listener.dial(relay.getMultiaddrs()[0]!)
    let circuit: string | undefined
    for (let poll = 0; poll < 100 && circuit === undefined; poll++) {
      circuit = listener.getMultiaddrs().map(String).find((address) => address.includes('/p2p-circuit/'))
      if (circuit === undefined) await new Promise((resolve) => setTimeout(resolve, 100))
    }
    assert.ok(circuit !== undefined, 'the listener reserved a slot and advertises a relayed address within 10 s')
    assert.ok(circuit.startsWith(relay.getMultiaddrs()[0]!.toString()), 'through our relay')
    const connection = await dialer.dial(multiaddr(circuit))
    assert.ok(connection.remoteAddr.toString().includes('/p2p-circuit'), 'the connection is relayed')
    assert.ok(connection.limits !== undefined, 'relayed connections carry the relay\'s limits')
    const rttMs = await dialer.services.ping.ping(multiaddr(circuit), { signal: AbortSignal.timeout(5000) })
    assert.ok(rttMs >= 0)
    assert.not.ok(plain.getMultiaddrs().some((address) => address.toString().includes('/p2p-circuit')), 'without the option: no relayed address')
  } finally {
    await Promise.all([relay.stop(), listener.stop(), dialer.stop(), plain.stop()])
  }
})

async function until<T> (label: string, probe: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  for (const started = Date.now(); Date.now() - started < timeoutMs;) {
    const value = probe()
    if (value !== undefined) return value
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`timed out after ${timeoutMs} ms: ${label}`)
}

/** Every wait in these tests is bounded: a hang fails with what was awaited. */
async function bounded<T> (label: string, promise: Promise<T>, timeoutMs = 10_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    return await Promise.race([promise, new Promise<T>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms: ${label}`)), timeoutMs) })])
  } finally {
    clearTimeout(timer)
  }
}

async function echoOnce (stream: FrameStream, text: string): Promise<string> {
  const answer = new Promise<string>((resolve, reject) => {
    stream.onFrame((frame) => resolve(new TextDecoder().decode(frame)))
    stream.onClose((error) => reject(error ?? new Error('closed before the echo')))
  })
  stream.send(new TextEncoder().encode(text))
  return await Promise.race([answer, new Promise<string>((_resolve, reject) => setTimeout(() => reject(new Error('no echo within 5 s')), 5000))])
}

async function relayOnlyPair (relayAddress: string, cListensDirectly: boolean, overlays: Libp2pOverlay[]): Promise<{ a: Libp2pOverlay, c: Libp2pOverlay, relayedOpened: () => boolean }> {
  const c = await createLibp2pOverlay({ privateKey: await generateKeyPair('Ed25519'), networkId: 'relay-test', ...(cListensDirectly ? {} : { listen: [] }), bootstrap: [relayAddress], relay: { client: true, server: false } })
  overlays.push(c)
  c.handleStream('/test/echo/1.0.0', (stream) => { stream.onFrame((frame) => stream.send(frame)) })
  await bounded('c starts', c.start())
  const circuit = await until('c advertises a relayed address', () => c.multiaddrs().find((address) => address.includes('/p2p-circuit/')))
  // a listens nowhere but the relay and is told c's relayed address only.
  const a = await createLibp2pOverlay({ privateKey: await generateKeyPair('Ed25519'), networkId: 'relay-test', listen: [], bootstrap: [relayAddress, circuit], relay: { client: true, server: false } })
  overlays.push(a)
  let relayedOpened = false
  a.libp2p.addEventListener('connection:open', (event) => {
    if (event.detail.remotePeer.equals(c.libp2p.peerId) && event.detail.limits !== undefined) relayedOpened = true
  })
  await bounded('a starts', a.start())
  return { a, c, relayedOpened: () => relayedOpened }
}

test('relay: overlay streams run over a limited relayed connection when that is all there is', async () => {
  const relay = await node({ client: false, server: true })
  const overlays: Libp2pOverlay[] = []
  try {
    const { a, c } = await relayOnlyPair(relay.getMultiaddrs()[0]!.toString(), false, overlays)
    await until('a is connected to c through the relay', () => a.libp2p.getConnections(peerIdOf(c)).find((connection) => connection.limits !== undefined))
    const stream = await a.openStream(c.peerId, '/test/echo/1.0.0', { signal: AbortSignal.timeout(5000) })
    assert.is(await echoOnce(stream, 'through the relay'), 'through the relay', 'an overlay stream works on the limited connection')
    const connections = a.libp2p.getConnections(peerIdOf(c))
    assert.ok(connections.length > 0 && connections.every((connection) => connection.limits !== undefined && connection.remoteAddr.toString().includes('/p2p-circuit')), 'every connection between them is relayed')
  } finally {
    await bounded('the overlays stop', Promise.all(overlays.map(async (overlay) => await overlay.stop())))
    await bounded('the relay stops', Promise.resolve(relay.stop()))
  }
})

test('relay: a direct connection to a peer replaces the relayed one', async () => {
  const relay = await node({ client: false, server: true })
  const overlays: Libp2pOverlay[] = []
  try {
    // c is also directly reachable: a learns that address over the relayed connection (identify),
    // and libp2p dials it for the first stream that finds only a limited connection.
    const { a, c, relayedOpened } = await relayOnlyPair(relay.getMultiaddrs()[0]!.toString(), true, overlays)
    await until('a first reached c through the relay', () => relayedOpened() ? true : undefined)
    const direct = c.multiaddrs().find((address) => address.startsWith('/ip4/127.0.0.1/tcp/') && !address.includes('/p2p-circuit'))!
    await bounded('a dials c directly', a.libp2p.dial(multiaddr(direct), { signal: AbortSignal.timeout(5000) }))
    await until('only the direct connection is left', () => {
      const connections = a.libp2p.getConnections(peerIdOf(c))
      return connections.length > 0 && connections.every((connection) => connection.limits === undefined) ? true : undefined
    })
    const stream = await a.openStream(c.peerId, '/test/echo/1.0.0', { signal: AbortSignal.timeout(5000) })
    assert.is(await echoOnce(stream, 'direct'), 'direct', 'streams run on the direct connection')
    assert.not.ok(a.libp2p.getConnections(peerIdOf(c)).some((connection) => connection.remoteAddr.toString().includes('/p2p-circuit')))
  } finally {
    await bounded('the overlays stop', Promise.all(overlays.map(async (overlay) => await overlay.stop())))
    await bounded('the relay stops', Promise.resolve(relay.stop()))
  }
})

test('relay: a relay may not be looser than libp2p\'s default limits; the error names the field', async () => {
  const privateKey = await generateKeyPair('Ed25519')
  for (const [relay, field] of [[{ durationLimitMs: 10 * 60_000 }, 'durationLimitMs'], [{ dataLimitBytes: 1 << 20 }, 'dataLimitBytes']] as const) {
    try {
      await createLibp2pNode({ privateKey, relay: { client: false, server: true, ...relay } })
      assert.unreachable(`${field} looser than the default was accepted`)
    } catch (error) {
      assert.is((error as Error).name, 'InvalidRelayLimitError')
      assert.match((error as Error).message, `relay.${field}`)
    }
  }
})

function peerIdOf (overlay: Libp2pOverlay): ReturnType<OverlayLibp2p['getConnections']>[number]['remotePeer'] {
  return overlay.libp2p.peerId
}

test.run()
