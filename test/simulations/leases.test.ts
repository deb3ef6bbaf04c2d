// IP leases and origin validation on production NodeHosts in the simulated world: every node binds
// its own unicast overlay address (no two alike); an origin announces its anycast prefix only once
// it holds the lease, and every node accepts it; an announcement for an anycast prefix from a node
// with a valid key but no lease is ignored by every node, counted, and never becomes a candidate.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { SimWorld } from '../../simulations/world.ts'
import { topicName } from '../../src/runtime/node.ts'
import { encodeUpdate, signAnnouncement } from '../../src/protocols/announcement-codec.ts'
import { createSimSigner } from '../../src/runtime/signing.ts'
import { createRandom } from '../../src/runtime/random.ts'
import type { MemoryMetrics } from '../../src/runtime/metrics.ts'
import type { MemoryLogger } from '../../src/runtime/logger.ts'

const PREFIX = '10.42.255.7/32'

test('leases: distinct unicast addresses, origins announce with a lease, a lease-less origin is ignored everywhere, seed 21', async () => {
  const world = new SimWorld({
    seed: 21,
    nodes: 10,
    degree: 3,
    state: { antiEntropyIntervalMs: 2000, leaseMs: 20_000 },
    services: (index) => index < 2 ? [{ name: 'api', prefix: PREFIX, check: { kind: 'tcp', host: 'svc', port: 80 }, preference: 100 }] : []
  })
  await world.start()
  await world.run(8000)

  const addresses = [...world.hosts.values()].map((host) => host.leases!.unicastAddress())
  assert.ok(addresses.every((address) => address !== undefined && address.startsWith('10.42.')), `every node bound a unicast address: ${addresses.join(', ')}`)
  assert.is(new Set(addresses).size, addresses.length, 'no two alike')
  for (const host of world.hosts.values()) {
    const anycast = host.leases!.leases().filter((lease) => lease.kind === 'anycast' && lease.live)
    assert.equal(anycast.map((lease) => lease.holder).sort(), ['n00000', 'n00001'], `${host.config.name} sees both origins' anycast leases`)
    const route = host.controlPlane.routes().find((r) => r.prefix === PREFIX)
    assert.ok(route?.origin === 'n00000' || route?.origin === 'n00001', `${host.config.name} routes to a leased origin`)
  }

  // A node with a known key but no lease announces the prefix.
  const rogue = world.network.createOverlay('rogue')
  await rogue.start()
  for (const id of ['n00002', 'n00003', 'n00004']) world.network.connectNow('rogue', id)
  rogue.subscribe(topicName('sim', 'routes'), () => {})
  const signer = createSimSigner('rogue', createRandom(5), world.keys)
  await world.run(2000)
  const hijack = signAnnouncement({ prefix: PREFIX, service: 'api', origin: 'rogue', seq: 1, withdrawn: false, attributes: { health: 'healthy', preference: 1000, load: 0, ttlMs: 30_000 } }, signer)
  await rogue.publish(topicName('sim', 'routes'), encodeUpdate({ announcements: [hijack] }))
  await world.run(3000)
  let ignored = 0
  for (const host of world.hosts.values()) {
    const route = host.controlPlane.routes().find((r) => r.prefix === PREFIX)
    assert.not.ok(route?.candidates.some((c) => c.origin === 'rogue'), `${host.config.name} never took the lease-less origin as a candidate`)
    ignored += (host.components.metrics as MemoryMetrics).value('route_announcements_rejected_total', { reason: 'no-lease' })
  }
  assert.ok(ignored >= 9, `every node that got it ignored it (${ignored})`)
  // Held without a lease for 10 s, it is warned about (before that it may be the ordinary race).
  const warned = (): number => [...world.hosts.values()].filter((host) => (host.components.logger as MemoryLogger).records
    .some((record) => record.level === 'warn' && /without a lease/.test(record.message) && record.fields?.origin === 'rogue')).length
  assert.is(warned(), 0, 'no warning yet 3 s after')
  await world.run(10_000)
  assert.ok(warned() >= 9, `warned at every node after 10 s (${warned()})`)
  assert.not.ok([...world.hosts.values()].some((host) => (host.components.logger as MemoryLogger).records
    .some((record) => record.level === 'warn' && /without a lease/.test(record.message) && record.fields?.origin !== 'rogue')), 'no leased origin was ever warned about')
  await world.stop()
})

test.run()
