// The libp2p Overlay adapter on real nodes over 127.0.0.1. Every wait is bounded; no test sleeps
// except to give a message that must NOT arrive a fair chance to arrive.
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gossipsub, type GossipSub } from '@chainsafe/libp2p-gossipsub'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import * as lp from 'it-length-prefixed'
import { pipe } from 'it-pipe'
import { createLibp2p, type Libp2p } from 'libp2p'
import type { PeerId as Libp2pPeerId } from '@libp2p/interface'
import {
  createLibp2pOverlay, type Libp2pOverlay, type Libp2pOverlayInit
} from '../../src/runtime/libp2p-overlay.ts'
import { loadOrCreateNodeKey } from '../../src/runtime/node-key.ts'
import { overlayCompliance, type OverlayTestWorld } from './overlay-compliance.ts'
import {
  MAX_FRAME_BYTES, MAX_MESSAGE_BYTES, type FrameStream, type OverlayMessage, type PeerEvent
} from '../../src/runtime/ports.ts'

// ---- the world: real libp2p nodes on loopback -------------------------------------------------

/** Fast gossip for tests: meshes form within a few 100 ms heartbeats instead of seconds. */
const TEST_PUBSUB = { heartbeatInterval: 100 }
const READY_TIMEOUT_MS = 10_000
const DELIVERY_TIMEOUT_MS = 5_000
/** How long to give a message that must not arrive the chance to arrive anyway. */
const NEGATIVE_GRACE_MS = 400

interface WaitOptions { timeoutMs: number, label: string }

async function sleep(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms))
}

async function waitFor(predicate: () => boolean, options: WaitOptions): Promise<void> {
  const deadline = Date.now() + options.timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${options.label}`)
    await sleep(10)
  }
}

type Topology = 'full' | 'line'

/**
 * Nodes with keys in a temp dir. New nodes bootstrap to every live node (full mesh) or only to the
 * previous one (line), and are returned once every expected link is connected and carries a
 * gossipsub stream, so a subscription made now reaches the neighbours at once.
 */
class Libp2pWorld implements OverlayTestWorld {
  readonly name = 'libp2p'
  /** Loopback: a stopped or crashed peer's sockets close at once, so this is ample. */
  readonly disconnectTimeoutMs = 10_000
  private dir: string | undefined
  private readonly nodes: Libp2pOverlay[] = []
  private readonly cleanups: Array<() => Promise<void>> = []
  private created = 0

  async dataDir(): Promise<string> {
    this.dir ??= await mkdtemp(join(tmpdir(), 'form-anycast-overlay-'))
    return this.dir
  }

  async createNode(bootstrap: string[], init: Partial<Libp2pOverlayInit> = {}): Promise<Libp2pOverlay> {
    const keyDir = join(await this.dataDir(), `node-${this.created++}`)
    const overlay = await createLibp2pOverlay({
      privateKey: await loadOrCreateNodeKey(keyDir),
      networkId: 'test',
      bootstrap,
      rttIntervalMs: 200,
      inboundConnectionThreshold: 1000,
      pubsub: TEST_PUBSUB,
      ...init
    })
    this.nodes.push(overlay)
    await overlay.start()
    return overlay
  }

  async createNodes(n: number, options: { topology?: Topology, connected?: boolean } = {}): Promise<Libp2pOverlay[]> {
    if (options.connected === false) return await this.createDialableNodes(n)
    const topology = options.topology ?? 'full'
    const live = this.nodes.filter((node) => node.multiaddrs().length > 0)
    const created: Libp2pOverlay[] = []
    const links: Array<[Libp2pOverlay, Libp2pOverlay]> = []
    for (let i = 0; i < n; i++) {
      const targets = topology === 'full' ? [...live, ...created] : created.slice(-1)
      const node = await this.createNode(targets.flatMap((target) => target.multiaddrs()))
      for (const target of targets) links.push([node, target])
      created.push(node)
    }
    await waitFor(() => links.every(([a, b]) => isLinked(a, b) && isLinked(b, a)), {
      timeoutMs: READY_TIMEOUT_MS, label: `${links.length} links connected with gossipsub streams`
    })
    return created
  }

  /** Started, not connected, but each knows the others' addresses (so dial(peerId) works). */
  private async createDialableNodes(n: number): Promise<Libp2pOverlay[]> {
    const created: Libp2pOverlay[] = []
    for (let i = 0; i < n; i++) created.push(await this.createNode([]))
    for (const node of created) {
      for (const other of created) {
        if (other === node) continue
        const addresses = other.multiaddrs().map((address) => multiaddr(address))
        await node.libp2p.peerStore.merge(peerIdFromString(other.peerId), { multiaddrs: addresses })
      }
    }
    return created
  }

  async waitFor(predicate: () => boolean, options: WaitOptions): Promise<void> {
    await waitFor(predicate, options)
  }

  async sleep(ms: number): Promise<void> {
    await sleep(ms)
  }

  /** Die without goodbyes: sockets are destroyed, then the node releases its resources. */
  async crash(node: Libp2pOverlay): Promise<void> {
    for (const connection of node.libp2p.getConnections()) connection.abort(new Error('simulated crash'))
    await node.stop()
  }

  /** Register extra teardown (e.g. a raw libp2p node) to run in close(). */
  onClose(cleanup: () => Promise<void>): void {
    this.cleanups.push(cleanup)
  }

  async close(): Promise<void> {
    await Promise.all(this.nodes.map(async (node) => await node.stop()))
    await Promise.all(this.cleanups.map(async (cleanup) => await cleanup()))
    if (this.dir !== undefined) await rm(this.dir, { recursive: true, force: true })
  }
}

function isLinked(a: Libp2pOverlay, b: Libp2pOverlay): boolean {
  return a.connectedPeers().includes(b.peerId) &&
    a.libp2p.services.pubsub.getPeers().some((peer) => peer.toString() === b.peerId)
}

async function withWorld(run: (world: Libp2pWorld) => Promise<void>): Promise<void> {
  const world = new Libp2pWorld()
  try {
    await run(world)
  } finally {
    await world.close()
  }
}

const text = (value: string): Uint8Array => new TextEncoder().encode(value)
const untext = (bytes: Uint8Array): string => new TextDecoder().decode(bytes)

function collect(node: Libp2pOverlay, topic: string): OverlayMessage[] {
  const received: OverlayMessage[] = []
  node.subscribe(topic, (message) => received.push(message))
  return received
}

/** Subscribe everyone, then wait until each node's mesh for the topic holds its neighbours. */
async function subscribeAll(nodes: Libp2pOverlay[], topic: string, meshSize: (node: Libp2pOverlay) => number): Promise<OverlayMessage[][]> {
  const inboxes = nodes.map((node) => collect(node, topic))
  await waitFor(() => nodes.every((node) => node.meshPeers(topic).length >= meshSize(node)), {
    timeoutMs: READY_TIMEOUT_MS, label: `gossipsub meshes for ${topic}`
  })
  return inboxes
}

/**
 * A plain libp2p node outside the adapter, for what the adapter must refuse: it can sign
 * gossipsub messages as an author it is not (gossipsub builds `from` from the peerId component and
 * signs with the privateKey component), publish without our size bound, and write raw frames.
 */
async function createRogueNode(world: Libp2pWorld, options: { claimAuthor?: Libp2pPeerId } = {}): Promise<Libp2p<{ pubsub: GossipSub }>> {
  const privateKey = await generateKeyPair('Ed25519')
  const node = await createLibp2p({
    privateKey,
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: identify(),
      pubsub: (components: Parameters<ReturnType<typeof gossipsub>>[0]) => gossipsub({
        globalSignaturePolicy: 'StrictSign', allowPublishToZeroTopicPeers: true, ...TEST_PUBSUB
      })({
        privateKey: components.privateKey,
        peerId: options.claimAuthor ?? components.peerId,
        peerStore: components.peerStore,
        registrar: components.registrar,
        connectionManager: components.connectionManager,
        logger: components.logger
      }) as GossipSub
    }
  })
  world.onClose(async () => await node.stop())
  return node
}

async function connectRogue(rogue: Libp2p<{ pubsub: GossipSub }>, victim: Libp2pOverlay, topic: string): Promise<void> {
  await rogue.dial(multiaddr(victim.multiaddrs()[0]))
  rogue.services.pubsub.subscribe(topic)
  await waitFor(() => rogue.services.pubsub.getSubscribers(topic).some((peer) => peer.toString() === victim.peerId), {
    timeoutMs: READY_TIMEOUT_MS, label: 'rogue learns the victim subscribes'
  })
}

// ---- the shared Overlay contract -------------------------------------------------------------

overlayCompliance(async () => new Libp2pWorld(), 'libp2p')

// ---- pubsub ---------------------------------------------------------------------------------

const pubsub = suite('libp2p-overlay: pubsub')

pubsub('publish reaches every other subscriber once, from = publisher, not echoed to self, 3 nodes', () => withWorld(async (world) => {
  const nodes = await world.createNodes(3)
  const inboxes = await subscribeAll(nodes, 'form-anycast/test/routes', () => 2)
  await nodes[0].publish('form-anycast/test/routes', text('route-1'))
  await waitFor(() => inboxes[1].length === 1 && inboxes[2].length === 1, { timeoutMs: DELIVERY_TIMEOUT_MS, label: 'delivery' })
  await sleep(NEGATIVE_GRACE_MS)
  assert.is(inboxes[0].length, 0, 'emitSelf is off')
  for (const inbox of inboxes.slice(1)) {
    assert.is(inbox.length, 1, 'delivered exactly once')
    assert.is(inbox[0].from, nodes[0].peerId)
    assert.is(inbox[0].topic, 'form-anycast/test/routes')
    assert.is(untext(inbox[0].data), 'route-1')
  }
  assert.equal(nodes[0].stats(), { messagesSent: 1, bytesSent: 7, messagesReceived: 0, bytesReceived: 0 })
  assert.equal(nodes[1].stats(), { messagesSent: 0, bytesSent: 0, messagesReceived: 1, bytesReceived: 7 })
}))

pubsub('publishing with no subscriber anywhere resolves and is counted', () => withWorld(async (world) => {
  const [node] = await world.createNodes(1)
  await node.publish('form-anycast/test/nobody', text('x'))
  assert.is(node.stats().messagesSent, 1)
}))

pubsub('subscribe before start takes effect at start; unsubscribe stops delivery', () => withWorld(async (world) => {
  const [first] = await world.createNodes(1)
  const late = await createLibp2pOverlay({
    privateKey: await loadOrCreateNodeKey(join(await world.dataDir(), 'late')),
    networkId: 'test', bootstrap: first.multiaddrs(), pubsub: TEST_PUBSUB
  })
  world.onClose(async () => await late.stop())
  const received: OverlayMessage[] = []
  const unsubscribe = late.subscribe('t', (message) => received.push(message))
  await late.start()
  await waitFor(() => first.topicPeers('t').includes(late.peerId), { timeoutMs: READY_TIMEOUT_MS, label: 'subscription seen' })
  await first.publish('t', text('one'))
  await waitFor(() => received.length === 1, { timeoutMs: DELIVERY_TIMEOUT_MS, label: 'first delivery' })
  unsubscribe()
  await waitFor(() => !first.topicPeers('t').includes(late.peerId), { timeoutMs: READY_TIMEOUT_MS, label: 'unsubscription seen' })
  await first.publish('t', text('two'))
  await sleep(NEGATIVE_GRACE_MS)
  assert.equal(received.map((message) => untext(message.data)), ['one'])
}))

pubsub('validator reject and ignore stop delivery and forwarding; accept passes, line A-B-C', () => withWorld(async (world) => {
  const [a, b, c] = await world.createNodes(3, { topology: 'line' })
  assert.not.ok(a.connectedPeers().includes(c.peerId), 'A and C are not neighbours: C hears only via B')
  const seenByValidator: string[] = []
  b.setValidator('t', (message) => {
    seenByValidator.push(untext(message.data))
    assert.is(message.from, a.peerId)
    return untext(message.data).startsWith('bad') ? 'reject' : untext(message.data).startsWith('skip') ? 'ignore' : 'accept'
  })
  const [, inboxB, inboxC] = await subscribeAll([a, b, c], 't', (node) => node === b ? 2 : 1)
  for (const payload of ['bad-1', 'skip-1', 'good-1']) await a.publish('t', text(payload))
  await waitFor(() => inboxC.length >= 1, { timeoutMs: DELIVERY_TIMEOUT_MS, label: 'good message forwarded to C' })
  await sleep(NEGATIVE_GRACE_MS)
  assert.equal(seenByValidator, ['bad-1', 'skip-1', 'good-1'])
  assert.equal(inboxB.map((message) => untext(message.data)), ['good-1'])
  assert.equal(inboxC.map((message) => untext(message.data)), ['good-1'])
  assert.is(inboxC[0].from, a.peerId, 'from is the author, not the forwarding neighbour')
}))

pubsub('a throwing validator rejects; removing the validator accepts again', () => withWorld(async (world) => {
  const [a, b] = await world.createNodes(2)
  b.setValidator('t', () => { throw new Error('validator bug') })
  const [, inbox] = await subscribeAll([a, b], 't', () => 1)
  await a.publish('t', text('dropped'))
  await sleep(NEGATIVE_GRACE_MS)
  assert.is(inbox.length, 0)
  b.setValidator('t', undefined)
  await a.publish('t', text('kept'))
  await waitFor(() => inbox.length === 1, { timeoutMs: DELIVERY_TIMEOUT_MS, label: 'delivery after removing validator' })
  assert.is(untext(inbox[0].data), 'kept')
}))

pubsub('StrictSign: a message signed by one key claiming another author is rejected; honest control delivered', () => withWorld(async (world) => {
  const [victim] = await world.createNodes(1)
  const inbox = collect(victim, 't')
  const claimed = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
  const forger = await createRogueNode(world, { claimAuthor: claimed })
  const honest = await createRogueNode(world)
  await connectRogue(forger, victim, 't')
  await connectRogue(honest, victim, 't')
  await forger.services.pubsub.publish('t', text('forged'))
  await honest.services.pubsub.publish('t', text('honest'))
  await waitFor(() => inbox.length >= 1, { timeoutMs: DELIVERY_TIMEOUT_MS, label: 'honest message' })
  await sleep(NEGATIVE_GRACE_MS)
  assert.equal(inbox.map((message) => untext(message.data)), ['honest'])
  assert.is(inbox[0].from, honest.peerId.toString())
}))

pubsub(`size bound: publish of ${MAX_MESSAGE_BYTES + 1} bytes throws and sends nothing; inbound oversize rejected`, () => withWorld(async (world) => {
  const [victim] = await world.createNodes(1)
  const inbox = collect(victim, 't')
  try {
    await victim.publish('t', new Uint8Array(MAX_MESSAGE_BYTES + 1))
    assert.unreachable('oversize publish must throw')
  } catch (err) {
    assert.is((err as Error).name, 'MessageTooLargeError')
  }
  assert.is(victim.stats().messagesSent, 0)
  const rogue = await createRogueNode(world)
  await connectRogue(rogue, victim, 't')
  await rogue.services.pubsub.publish('t', new Uint8Array(MAX_MESSAGE_BYTES + 1).fill(1))
  await rogue.services.pubsub.publish('t', new Uint8Array(MAX_MESSAGE_BYTES).fill(2))
  await waitFor(() => inbox.length >= 1, { timeoutMs: DELIVERY_TIMEOUT_MS, label: 'message at the bound' })
  await sleep(NEGATIVE_GRACE_MS)
  assert.equal(inbox.map((message) => [message.data.byteLength, message.data[0]]), [[MAX_MESSAGE_BYTES, 2]])
  assert.is(victim.stats().bytesReceived, MAX_MESSAGE_BYTES)
}))

pubsub('topic names are used as given', () => withWorld(async (world) => {
  const [a, b] = await world.createNodes(2)
  const topic = 'form-anycast/net-7/health'
  const [, inbox] = await subscribeAll([a, b], topic, () => 1)
  assert.ok(a.libp2p.services.pubsub.getTopics().includes(topic))
  await a.publish(topic, text('h'))
  await waitFor(() => inbox.length === 1, { timeoutMs: DELIVERY_TIMEOUT_MS, label: 'delivery' })
}))

pubsub.run()

// ---- streams --------------------------------------------------------------------------------

const streams = suite('libp2p-overlay: streams')
const ECHO = '/form-anycast/test-echo/1.0.0'

function serveEcho(node: Libp2pOverlay, accepted: FrameStream[] = []): FrameStream[] {
  node.handleStream(ECHO, (stream) => {
    accepted.push(stream)
    stream.onFrame((frame) => stream.send(frame))
  })
  return accepted
}

function watchClose(stream: FrameStream): Array<Error | undefined> {
  const closes: Array<Error | undefined> = []
  stream.onClose((error) => closes.push(error))
  return closes
}

streams('200 frames echo back in order, sizes 0 to MAX_FRAME_BYTES', () => withWorld(async (world) => {
  const [client, server] = await world.createNodes(2)
  const accepted = serveEcho(server)
  const stream = await client.openStream(server.peerId, ECHO)
  assert.is(stream.remotePeer, server.peerId)
  assert.is(stream.protocol, ECHO)
  const echoed: Uint8Array[] = []
  stream.onFrame((frame) => echoed.push(frame))
  const sizes = Array.from({ length: 200 }, (_, i) => i === 0 ? 0 : i === 1 ? MAX_FRAME_BYTES : i * 7)
  for (const [i, size] of sizes.entries()) assert.ok(stream.send(new Uint8Array(size).fill(i % 256)))
  await waitFor(() => echoed.length === sizes.length, { timeoutMs: DELIVERY_TIMEOUT_MS, label: '200 echoes' })
  assert.equal(echoed.map((frame) => frame.byteLength), sizes)
  assert.ok(echoed.every((frame, i) => frame.every((byte) => byte === i % 256)))
  assert.is(accepted[0].remotePeer, client.peerId)
}))

streams('frames sent before the remote sets onFrame are buffered and replayed in order', () => withWorld(async (world) => {
  const [client, server] = await world.createNodes(2)
  const accepted: FrameStream[] = []
  server.handleStream(ECHO, (stream) => accepted.push(stream))
  const stream = await client.openStream(server.peerId, ECHO)
  for (let i = 0; i < 50; i++) stream.send(new Uint8Array([i]))
  await waitFor(() => accepted.length === 1, { timeoutMs: DELIVERY_TIMEOUT_MS, label: 'inbound stream' })
  await sleep(200)
  const received: number[] = []
  accepted[0].onFrame((frame) => received.push(frame[0]))
  await waitFor(() => received.length === 50, { timeoutMs: DELIVERY_TIMEOUT_MS, label: 'replayed frames' })
  assert.equal(received, Array.from({ length: 50 }, (_, i) => i))
}))

streams('local close: each side sees onClose exactly once, without error; send then returns false', () => withWorld(async (world) => {
  const [client, server] = await world.createNodes(2)
  const accepted = serveEcho(server)
  const stream = await client.openStream(server.peerId, ECHO)
  const clientCloses = watchClose(stream)
  stream.send(text('hello'))
  await waitFor(() => accepted.length === 1, { timeoutMs: DELIVERY_TIMEOUT_MS, label: 'inbound stream' })
  const serverCloses = watchClose(accepted[0])
  stream.close()
  stream.close()
  assert.ok(stream.closed)
  assert.is(stream.send(text('late')), false)
  await waitFor(() => serverCloses.length === 1 && clientCloses.length === 1, { timeoutMs: DELIVERY_TIMEOUT_MS, label: 'both closes' })
  await sleep(200)
  assert.equal(clientCloses, [undefined])
  assert.equal(serverCloses, [undefined])
  assert.ok(accepted[0].closed)
  const late: Array<Error | undefined> = []
  stream.onClose((error) => late.push(error))
  await sleep(0)
  assert.equal(late, [undefined], 'onClose set after the close still hears it once')
}))

streams('frames queued just before close are flushed, not dropped', () => withWorld(async (world) => {
  const [client, server] = await world.createNodes(2)
  const received: number[] = []
  const closes: Array<Error | undefined> = []
  server.handleStream(ECHO, (stream) => {
    stream.onFrame((frame) => received.push(frame.byteLength))
    stream.onClose((error) => closes.push(error))
  })
  const stream = await client.openStream(server.peerId, ECHO)
  for (let i = 0; i < 100; i++) stream.send(new Uint8Array(10_000))
  stream.close()
  await waitFor(() => closes.length === 1, { timeoutMs: DELIVERY_TIMEOUT_MS, label: 'server close' })
  assert.is(received.length, 100)
  assert.equal(closes, [undefined])
}))

streams('openStream to a protocol the peer does not serve rejects with UnsupportedProtocolError', () => withWorld(async (world) => {
  const [client, server] = await world.createNodes(2)
  try {
    await client.openStream(server.peerId, '/form-anycast/nobody-serves-this/1.0.0')
    assert.unreachable('must reject')
  } catch (err) {
    assert.is((err as Error).name, 'UnsupportedProtocolError')
    assert.match((err as Error).message, '/form-anycast/nobody-serves-this/1.0.0')
  }
  serveEcho(server)
  server.unhandleStream(ECHO)
  await sleep(50)
  try {
    await client.openStream(server.peerId, ECHO)
    assert.unreachable('must reject after unhandleStream')
  } catch (err) {
    assert.is((err as Error).name, 'UnsupportedProtocolError')
  }
}))

streams('openStream honours an aborted signal', () => withWorld(async (world) => {
  const [client, server] = await world.createNodes(2)
  serveEcho(server)
  try {
    await client.openStream(server.peerId, ECHO, { signal: AbortSignal.abort() })
    assert.unreachable('must reject')
  } catch (err) {
    assert.ok(err instanceof Error)
  }
}))

streams(`send of a ${MAX_FRAME_BYTES + 1}-byte frame aborts the stream: false locally, error on both sides`, () => withWorld(async (world) => {
  const [client, server] = await world.createNodes(2)
  const accepted = serveEcho(server)
  const stream = await client.openStream(server.peerId, ECHO)
  const clientCloses = watchClose(stream)
  stream.send(text('x'))
  await waitFor(() => accepted.length === 1, { timeoutMs: DELIVERY_TIMEOUT_MS, label: 'inbound stream' })
  const serverCloses = watchClose(accepted[0])
  assert.is(stream.send(new Uint8Array(MAX_FRAME_BYTES + 1)), false)
  await waitFor(() => clientCloses.length === 1 && serverCloses.length === 1, { timeoutMs: DELIVERY_TIMEOUT_MS, label: 'aborts' })
  assert.is(clientCloses[0]?.name, 'MessageTooLargeError')
  assert.ok(serverCloses[0] instanceof Error, 'the remote sees a reset, not a clean close')
}))

streams('an inbound frame over MAX_FRAME_BYTES (raw writer) aborts the stream, nothing delivered', () => withWorld(async (world) => {
  const [server] = await world.createNodes(1)
  const frames: Uint8Array[] = []
  const closes: Array<Error | undefined> = []
  server.handleStream(ECHO, (stream) => {
    stream.onFrame((frame) => frames.push(frame))
    stream.onClose((error) => closes.push(error))
  })
  const rogue = await createRogueNode(world)
  const raw = await rogue.dialProtocol(multiaddr(server.multiaddrs()[0]), ECHO)
  void pipe([new Uint8Array(MAX_FRAME_BYTES + 1)], (source) => lp.encode(source), raw.sink).catch(() => undefined)
  await waitFor(() => closes.length === 1, { timeoutMs: DELIVERY_TIMEOUT_MS, label: 'abort' })
  assert.is(frames.length, 0)
  assert.is(closes[0]?.name, 'InvalidDataLengthError')
}))

streams('more than 1,000 frames before onFrame is set aborts the stream with StreamOverflowError', () => withWorld(async (world) => {
  const [client, server] = await world.createNodes(2)
  const closes: Array<Error | undefined> = []
  server.handleStream(ECHO, (stream) => stream.onClose((error) => closes.push(error)))
  const stream = await client.openStream(server.peerId, ECHO)
  const clientCloses = watchClose(stream)
  // Paced in batches so the sender's own queue bound (also 1,000) is not what trips.
  for (let sent = 0; sent < 1001 && !stream.closed; sent += 100) {
    for (let i = sent; i < Math.min(sent + 100, 1001); i++) stream.send(new Uint8Array([1]))
    await sleep(20)
  }
  await waitFor(() => closes.length === 1 && clientCloses.length === 1, { timeoutMs: DELIVERY_TIMEOUT_MS, label: 'overflow abort' })
  assert.is(closes[0]?.name, 'StreamOverflowError')
  assert.ok(clientCloses[0] instanceof Error)
}))

streams('a send queue beyond its bound aborts the stream instead of growing', () => withWorld(async (world) => {
  const [client, server] = await world.createNodes(2)
  server.handleStream(ECHO, (stream) => stream.onFrame(() => {}))
  const stream = await client.openStream(server.peerId, ECHO)
  const closes = watchClose(stream)
  let accepted = 0
  for (let i = 0; i < 2000 && stream.send(new Uint8Array(MAX_FRAME_BYTES)); i++) accepted++
  assert.ok(accepted < 2000, `queue must refuse before 2000 x 64 KiB (accepted ${accepted})`)
  assert.ok(stream.closed)
  await waitFor(() => closes.length === 1, { timeoutMs: DELIVERY_TIMEOUT_MS, label: 'close' })
  assert.is(closes[0]?.name, 'StreamOverflowError')
}))

streams('remote crash: open streams close once with an error, peer.disconnected fires', () => withWorld(async (world) => {
  const [client, server] = await world.createNodes(2)
  serveEcho(server)
  const events: PeerEvent[] = []
  client.onPeerEvent((event) => events.push(event))
  const stream = await client.openStream(server.peerId, ECHO)
  const closes = watchClose(stream)
  await world.crash(server)
  await waitFor(() => closes.length === 1 && events.length === 1, { timeoutMs: DELIVERY_TIMEOUT_MS, label: 'close and disconnect' })
  await sleep(200)
  assert.is(closes.length, 1)
  assert.ok(closes[0] instanceof Error, 'a lost connection is abnormal')
  assert.equal(events, [{ type: 'peer.disconnected', peerId: server.peerId }])
  assert.equal(client.connectedPeers(), [])
}))

streams('remote stop: streams close cleanly (no error) before the connection goes', () => withWorld(async (world) => {
  const [client, server] = await world.createNodes(2)
  serveEcho(server)
  const stream = await client.openStream(server.peerId, ECHO)
  const closes = watchClose(stream)
  stream.send(text('x'))
  await waitFor(() => server.libp2p.getConnections().some((connection) => connection.streams.some((s) => s.protocol === ECHO)), {
    timeoutMs: DELIVERY_TIMEOUT_MS, label: 'inbound stream'
  })
  await server.stop()
  await waitFor(() => closes.length === 1, { timeoutMs: DELIVERY_TIMEOUT_MS, label: 'close' })
  assert.equal(closes, [undefined])
}))

streams.run()

// ---- peers, RTT, lifecycle --------------------------------------------------------------------

const peers = suite('libp2p-overlay: peers and lifecycle')

peers('peer events, connectedPeers and dial after a hang-up, 2 nodes', () => withWorld(async (world) => {
  const [a, b] = await world.createNodes(2)
  assert.equal(a.connectedPeers(), [b.peerId])
  const events: PeerEvent[] = []
  a.onPeerEvent((event) => events.push(event))
  await a.libp2p.hangUp(peerIdFromString(b.peerId))
  await waitFor(() => events.length === 1, { timeoutMs: DELIVERY_TIMEOUT_MS, label: 'disconnect' })
  assert.equal(a.connectedPeers(), [])
  await a.dial(b.peerId)
  await waitFor(() => events.length === 2, { timeoutMs: DELIVERY_TIMEOUT_MS, label: 'reconnect' })
  assert.equal(events, [
    { type: 'peer.disconnected', peerId: b.peerId },
    { type: 'peer.connected', peerId: b.peerId }
  ])
  assert.equal(a.connectedPeers(), [b.peerId])
}))

peers('dial of a peer with no known address rejects; a malformed peer id is a TypeError', () => withWorld(async (world) => {
  const [a] = await world.createNodes(1)
  const stranger = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
  try {
    await a.dial(stranger, { signal: AbortSignal.timeout(3000) })
    assert.unreachable('must reject')
  } catch (err) {
    assert.ok(err instanceof Error)
  }
  try {
    await a.dial('not-a-peer-id')
    assert.unreachable('must reject')
  } catch (err) {
    assert.instance(err, TypeError)
  }
}))

peers('bootstrap: a node dials its bootstrap peers at start and skips its own entry', () => withWorld(async (world) => {
  const [first] = await world.createNodes(1)
  const dir = join(await world.dataDir(), 'self-listed')
  const key = await loadOrCreateNodeKey(dir)
  const self = `/ip4/127.0.0.1/tcp/1/p2p/${peerIdFromPrivateKey(key).toString()}`
  const node = await world.createNode([self, ...first.multiaddrs()], { privateKey: key })
  await waitFor(() => node.connectedPeers().includes(first.peerId), { timeoutMs: READY_TIMEOUT_MS, label: 'bootstrap connection' })
  assert.ok(node.multiaddrs().every((address) => address.endsWith(`/p2p/${node.peerId}`)))
}))

peers('invalid bootstrap and listen addresses are rejected with the address named', async () => {
  const privateKey = await generateKeyPair('Ed25519')
  for (const init of [{ bootstrap: ['/ip4/127.0.0.1/tcp/4001'] }, { bootstrap: ['not a multiaddr'] }, { listen: ['/nonsense'] }]) {
    try {
      await createLibp2pOverlay({ privateKey, networkId: 'test', ...init })
      assert.unreachable(`must reject ${JSON.stringify(init)}`)
    } catch (err) {
      assert.is((err as Error).name, 'InvalidOverlayAddressError', String(err))
      assert.match((err as Error).message, [...(init.bootstrap ?? []), ...(init.listen ?? [])][0])
    }
  }
})

peers('RTT: measured for each connected peer within a few intervals, forgotten on disconnect', () => withWorld(async (world) => {
  const [a, b] = await world.createNodes(2)
  await waitFor(() => a.rttMs(b.peerId) !== undefined && b.rttMs(a.peerId) !== undefined, { timeoutMs: DELIVERY_TIMEOUT_MS, label: 'rtt' })
  const rtt = a.rttMs(b.peerId)!
  assert.ok(Number.isFinite(rtt) && rtt >= 0 && rtt < 1000, `loopback rtt ${rtt}`)
  assert.is(a.rttMs('12D3KooWnobody'), undefined)
  await world.crash(b)
  await waitFor(() => a.rttMs(b.peerId) === undefined, { timeoutMs: DELIVERY_TIMEOUT_MS, label: 'rtt forgotten' })
}))

peers('key persistence: a restarted node from the same data dir has the same peer id and is reachable', () => withWorld(async (world) => {
  const [hub] = await world.createNodes(1)
  const dir = join(await world.dataDir(), 'restarting')
  const first = await world.createNode(hub.multiaddrs(), { privateKey: await loadOrCreateNodeKey(dir) })
  const id = first.peerId
  await first.stop()
  await waitFor(() => !hub.connectedPeers().includes(id), { timeoutMs: DELIVERY_TIMEOUT_MS, label: 'hub sees it go' })
  const second = await world.createNode(hub.multiaddrs(), { privateKey: await loadOrCreateNodeKey(dir) })
  assert.is(second.peerId, id)
  await waitFor(() => hub.connectedPeers().includes(id), { timeoutMs: READY_TIMEOUT_MS, label: 'hub sees it return' })
}))

peers('start on a taken listen port rejects naming the address, and leaves nothing running', () => withWorld(async (world) => {
  const [a] = await world.createNodes(1)
  const taken = a.multiaddrs()[0].replace(/\/p2p\/.*$/, '')
  const b = await createLibp2pOverlay({ privateKey: await generateKeyPair('Ed25519'), networkId: 'test', listen: [taken] })
  try {
    await b.start()
    assert.unreachable('must reject')
  } catch (err) {
    assert.match((err as Error).message, taken)
  }
  assert.equal(b.multiaddrs(), [])
  await b.stop()
}))

peers('start and stop are idempotent (also concurrently); a stopped overlay refuses work', () => withWorld(async (world) => {
  const [a] = await world.createNodes(1)
  await Promise.all([a.start(), a.start()])
  await Promise.all([a.stop(), a.stop()])
  await a.stop()
  assert.equal(a.multiaddrs(), [])
  for (const attempt of [() => a.publish('t', text('x')), () => a.openStream(a.peerId, ECHO), () => a.start()]) {
    try {
      await attempt()
      assert.unreachable('must reject')
    } catch (err) {
      assert.is((err as Error).name, 'OverlayNotRunningError')
    }
  }
}))

peers('stop leaves nothing running: a child process with busy nodes exits by itself', async () => {
  const overlayModule = fileURLToPath(new URL('../../src/runtime/libp2p-overlay.ts', import.meta.url))
  const keyModule = fileURLToPath(new URL('../../src/runtime/node-key.ts', import.meta.url))
  const script = `
    const { createLibp2pOverlay } = await import(${JSON.stringify(overlayModule)})
    const { generateKeyPair } = await import('@libp2p/crypto/keys')
    await import(${JSON.stringify(keyModule)})
    const wait = (p) => new Promise((resolve) => { const t = setInterval(() => { if (p()) { clearInterval(t); resolve() } }, 10) })
    const a = await createLibp2pOverlay({ privateKey: await generateKeyPair('Ed25519'), networkId: 't', rttIntervalMs: 50 })
    await a.start()
    const b = await createLibp2pOverlay({ privateKey: await generateKeyPair('Ed25519'), networkId: 't', rttIntervalMs: 50, bootstrap: a.multiaddrs() })
    await b.start()
    a.handleStream('/echo/1', (s) => s.onFrame((f) => s.send(f)))
    a.subscribe('t', () => {})
    b.subscribe('t', () => {})
    await wait(() => b.connectedPeers().length === 1)
    const s = await b.openStream(a.peerId, '/echo/1')
    s.onFrame(() => {})
    for (let i = 0; i < 100; i++) s.send(new Uint8Array(1000))
    await b.publish('t', new Uint8Array(10))
    await wait(() => b.rttMs(a.peerId) !== undefined)
    await Promise.all([a.stop(), b.stop()])
    console.log('stopped ' + Date.now())
  `
  const child = spawn(process.execPath, ['--import', 'tsx', '--import', './src/runtime/polyfill.ts', '--input-type=module', '-e', script], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const exit = await new Promise<{ code: number | null, at: number }>((resolve) => {
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000)
    child.on('exit', (code) => { clearTimeout(killer); resolve({ code, at: Date.now() }) })
  })
  assert.is(exit.code, 0, `child exited with ${exit.code}; stderr: ${stderr}`)
  const stoppedAt = Number(/stopped (\d+)/.exec(stdout)?.[1])
  assert.ok(Number.isFinite(stoppedAt), `child never stopped; stdout: ${stdout} stderr: ${stderr}`)
  assert.ok(exit.at - stoppedAt < 1500, `process lingered ${exit.at - stoppedAt} ms after stop()`)
  assert.not.match(stderr, /Unhandled|unhandled/)
})

peers.run()
