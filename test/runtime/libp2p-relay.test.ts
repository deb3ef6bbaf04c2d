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

async function echoOnce (stream: FrameStream, text: string): Promise<string> {
  const answer = new Promise<string>((resolve, reject) => {
    stream.onFrame((frame) => resolve(new TextDecoder().decode(frame)))
    stream.onClose((error) => reject(error ?? new Error('closed before the echo')))
  })
  stream.send(new TextEncoder().encode(text))
  return await Promise.race([answer, new Promise<string>((_resolve, reject) => setTimeout(() => reject(new Error('no echo within 5 s')), 5000))])
}

test('relay: overlay streams run over a limited relayed connection; a direct connection to the peer replaces it', async () => {
  const relay = await node({ client: false, server: true })
  const overlays: Libp2pOverlay[] = []
  try {
    const relayAddress = relay.getMultiaddrs()[0]!.toString()
    // c listens directly too (so a direct connection can appear later); a listens nowhere but the relay.
    const c = await createLibp2pOverlay({ privateKey: await generateKeyPair('Ed25519'), networkId: 'relay-test', bootstrap: [relayAddress], relay: { client: true, server: false } })
    overlays.push(c)
    c.handleStream('/test/echo/1.0.0', (stream) => { stream.onFrame((frame) => stream.send(frame)) })
    await c.start()
    const circuit = await until('c advertises a relayed address', () => c.multiaddrs().find((address) => address.includes('/p2p-circuit/')))
    const a = await createLibp2pOverlay({ privateKey: await generateKeyPair('Ed25519'), networkId: 'relay-test', listen: [], bootstrap: [relayAddress, circuit], relay: { client: true, server: false } })
    overlays.push(a)
    await a.start()
    const relayed = await until('a is connected to c through the relay', () => a.libp2p.getConnections(peerIdOf(c)).find((connection) => connection.limits !== undefined))
    assert.ok(relayed.remoteAddr.toString().includes('/p2p-circuit'))
    const overRelay = await a.openStream(c.peerId, '/test/echo/1.0.0', { signal: AbortSignal.timeout(5000) })
    assert.is(await echoOnce(overRelay, 'through the relay'), 'through the relay', 'an overlay stream works on the limited connection')
    assert.is(a.libp2p.getConnections(peerIdOf(c)).length, 1, 'and it is the only connection: the stream ran over the relay')

    const closedRelayStream = new Promise<void>((resolve) => overRelay.onClose(() => resolve()))
    const direct = c.multiaddrs().find((address) => address.startsWith('/ip4/127.0.0.1/tcp/') && !address.includes('/p2p-circuit'))!
    await a.libp2p.dial(multiaddr(direct))
    await until('the relayed connection is closed once a direct one exists', () =>
      a.libp2p.getConnections(peerIdOf(c)).every((connection) => connection.limits === undefined) ? true : undefined)
    await closedRelayStream
    const overDirect = await a.openStream(c.peerId, '/test/echo/1.0.0', { signal: AbortSignal.timeout(5000) })
    assert.is(await echoOnce(overDirect, 'direct'), 'direct', 'streams re-opened by their owner run on the direct connection')
    assert.not.ok(a.libp2p.getConnections(peerIdOf(c)).some((connection) => connection.remoteAddr.toString().includes('/p2p-circuit')))
  } finally {
    await Promise.all(overlays.map(async (overlay) => await overlay.stop()))
    await relay.stop()
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
