// Bad input from a peer never crashes a node: forged announcements (bad signature, unknown origin
// key) and malformed updates are dropped and counted, the route table is untouched, and the node
// keeps routing.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { SimWorld } from '../../simulations/world.ts'
import { encodeUpdate, signAnnouncement } from '../../src/protocols/announcement-codec.ts'
import { topicName } from '../../src/runtime/node.ts'
import { createSimSigner, KeyDirectory } from '../../src/runtime/signing.ts'
import { createRandom } from '../../src/runtime/random.ts'
import type { MemoryMetrics } from '../../src/runtime/metrics.ts'
import type { RouteAnnouncement } from '../../src/protocols/routes.ts'
import { SESSION_PROTOCOL } from '../../src/protocols/session-codec.ts'

const PREFIX = '10.42.255.9/32'

test('forged announcements and garbage updates are rejected and counted; routing carries on, seed 5', async () => {
  const world = new SimWorld({
    seed: 5,
    nodes: 6,
    degree: 3,
    services: (index) => index === 0 ? [{ name: 'api', prefix: PREFIX, check: { kind: 'tcp', host: 'svc', port: 80 }, preference: 100 }] : []
  })
  await world.start()
  const rogue = world.network.createOverlay('rogue')
  await rogue.start()
  for (const id of ['n00001', 'n00002', 'n00003']) world.network.connectNow('rogue', id)
  const topic = topicName('sim', 'routes')
  rogue.subscribe(topic, () => {})
  await world.run(5000)
  const before = world.hosts.get('n00004')!.controlPlane.routes().find((route) => route.prefix === PREFIX)
  assert.is(before?.origin, 'n00000')

  const hijack: RouteAnnouncement = {
    prefix: PREFIX, service: 'api', origin: 'n00000', seq: Number.MAX_SAFE_INTEGER - 1, withdrawn: true,
    attributes: { health: 'failed', preference: 1000, load: 0, ttlMs: 60_000 }
  }
  // 1. Signed by the rogue's own key but claiming n00000 as origin: the signature does not verify.
  const rogueSigner = createSimSigner('rogue', createRandom(99), new KeyDirectory({ fromPeerIds: false }))
  const forged = { announcement: hijack, signature: rogueSigner.sign(new Uint8Array([1, 2, 3])) }
  await rogue.publish(topic, encodeUpdate({ announcements: [forged] }))
  // 2. A correctly signed announcement from an origin nobody knows the key of.
  const unknown = signAnnouncement({ ...hijack, origin: 'rogue', withdrawn: false, attributes: { ...hijack.attributes, health: 'healthy' } }, rogueSigner)
  await rogue.publish(topic, encodeUpdate({ announcements: [unknown] }))
  // 3. Garbage on the topic, and garbage on a session stream.
  await rogue.publish(topic, new Uint8Array([0xde, 0xad, 0xbe, 0xef]))
  // The stream opens after a simulated round trip, so the clock must run meanwhile.
  const opened = rogue.openStream('n00001', SESSION_PROTOCOL).then((stream) => stream.send(new Uint8Array([0xff, 0x00])))
  await world.run(3000)
  assert.ok(await opened, 'the garbage frame was sent')

  let rejected = 0
  for (const host of world.hosts.values()) {
    const metrics = host.components.metrics as MemoryMetrics
    rejected += metrics.value('route_announcements_rejected_total', { reason: 'bad-signature' }) + metrics.value('route_announcements_rejected_total', { reason: 'malformed' })
    const route = host.controlPlane.routes().find((r) => r.prefix === PREFIX)
    assert.is(route?.origin, 'n00000', `${host.config.name} still routes to the real origin`)
    assert.not.ok(route?.candidates.some((c) => c.origin === 'rogue'), 'the unknown origin never became a candidate')
    assert.ok(host.running, `${host.config.name} is still running`)
  }
  assert.ok(rejected >= 3, `rejections counted: ${rejected}`)
  const session = world.hosts.get('n00001')!.sessions().find((s) => s.peerId === 'rogue')
  assert.ok(session === undefined || session.state !== 'established', 'the garbage-speaking peer has no session')
  await world.stop()
})

test.run()
