import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { VirtualClock } from '../../src/runtime/clock.ts'
import { createMemoryLogger } from '../../src/runtime/logger.ts'
import { createMemoryMetrics } from '../../src/runtime/metrics.ts'
import { MemoryDataplane } from '../../src/runtime/dataplane-memory.ts'
import { DataplaneReconciler } from '../../src/runtime/dataplane-reconciler.ts'
import { desiredDataplane, type DataplanePeerInfo } from '../../src/protocols/dataplane-table.ts'
import { dataplanePeers } from '../../src/runtime/dataplane-agent.ts'
import type { RouteEntry } from '../../src/protocols/routes.ts'
import { dataplaneLines } from '../../src/runtime/status-command.ts'

const KEY_B = 'B'.repeat(42) + 'A='
const KEY_C = 'C'.repeat(42) + 'A='
const PEERS: DataplanePeerInfo[] = [
  { nodeId: 'b', publicKey: KEY_B, endpoint: '10.99.0.2:51820', overlayAddress: '10.42.0.2' },
  { nodeId: 'c', publicKey: KEY_C, endpoint: '10.99.0.3:51820', overlayAddress: '10.42.0.3' }
]
const ANYCAST = '10.42.255.1/32'
const route = (origin: string | undefined): RouteEntry => ({ prefix: ANYCAST, service: 'web', origin, nextHop: origin, costMs: 1, reason: 'cost', candidates: [] })

/** Drives a reconciler over a memory dataplane on a virtual clock; `origin` is the route's chosen origin. */
async function setup (intervalMs = 1000): Promise<{ clock: VirtualClock, dataplane: MemoryDataplane, reconciler: DataplaneReconciler, world: { origin: string | undefined }, settle: (ms: number) => Promise<void> }> {
  const clock = new VirtualClock()
  const dataplane = new MemoryDataplane()
  const world: { origin: string | undefined } = { origin: 'b' }
  const reconciler = new DataplaneReconciler({ clock, logger: createMemoryLogger(), metrics: createMemoryMetrics(), dataplane }, {
    intervalMs,
    desired: () => desiredDataplane({ anycastCidr: '10.42.255.0/24', self: 'a', overlayAddress: '10.42.0.1', routes: [route(world.origin)], peers: PEERS })
  })
  await reconciler.start()
  const settle = async (ms: number): Promise<void> => {
    for (let step = 0; step < ms / 100; step++) { clock.advance(100); await new Promise((resolve) => setImmediate(resolve)) }
  }
  return { clock, dataplane, reconciler, world, settle }
}

test('reconciler: start installs the table; a second pass changes nothing', async () => {
  const { dataplane, reconciler } = await setup()
  const table = await dataplane.read()
  assert.equal(table.peers.map((peer) => [peer.publicKey, peer.allowedIps, peer.endpoint]), [[KEY_B, ['10.42.0.2/32', ANYCAST], '10.99.0.2:51820'], [KEY_C, ['10.42.0.3/32'], '10.99.0.3:51820']])
  assert.equal(table.interfaceAddresses, ['10.42.0.1/32'])
  const applied = dataplane.applied.length
  await reconciler.reconcile()
  assert.is(dataplane.applied.length, applied, 'a matching interface gets no operations')
  assert.ok(reconciler.view().matches)
  await reconciler.stop()
})

test('reconciler: the best route moves from b to c, then to this node, and the prefix follows', async () => {
  const { dataplane, reconciler, world } = await setup()
  world.origin = 'c'
  reconciler.trigger()
  await reconciler.reconcile()
  let table = await dataplane.read()
  assert.equal(table.peers.find((peer) => peer.publicKey === KEY_C)?.allowedIps, ['10.42.0.3/32', ANYCAST])
  assert.equal(table.peers.find((peer) => peer.publicKey === KEY_B)?.allowedIps, ['10.42.0.2/32'])
  world.origin = 'a'
  await reconciler.reconcile()
  table = await dataplane.read()
  assert.equal(table.localAddresses, [ANYCAST])
  assert.ok(table.peers.every((peer) => !peer.allowedIps.includes(ANYCAST)), 'a prefix served here is in no peer')
  assert.is(reconciler.view().routes[0]?.via, 'local')
  await reconciler.stop()
})

test('reconciler: hand changes (peer removed, stray allowed IP) are repaired within one interval of 1000 ms', async () => {
  const { dataplane, reconciler, settle } = await setup(1000)
  dataplane.tamperRemovePeer(KEY_B)
  dataplane.tamperAddAllowedIp(KEY_C, '10.42.9.9/32')
  await reconciler.reconcile().then(() => undefined)
  const before = reconciler.view().repairs
  dataplane.tamperRemovePeer(KEY_B)
  assert.not.ok((await dataplane.read()).peers.some((peer) => peer.publicKey === KEY_B))
  await settle(1100)
  const table = await dataplane.read()
  assert.equal(table.peers.find((peer) => peer.publicKey === KEY_B)?.allowedIps, ['10.42.0.2/32', ANYCAST])
  assert.equal(table.peers.find((peer) => peer.publicKey === KEY_C)?.allowedIps, ['10.42.0.3/32'])
  assert.is(reconciler.view().repairs, before + 1)
  assert.ok(reconciler.view().matches)
  await reconciler.stop()
})

test('reconciler: a failing read is reported, not thrown, and the next pass recovers', async () => {
  const { dataplane, reconciler, settle } = await setup(500)
  await dataplane.stop()
  await reconciler.reconcile()
  assert.not.ok(reconciler.view().matches)
  assert.match(reconciler.view().lastError ?? '', /not up/)
  await dataplane.start()
  await settle(600)
  assert.ok(reconciler.view().matches)
  assert.is(reconciler.view().lastError, undefined)
  await reconciler.stop()
})

test('status: the dataplane table names the peer and says whether the interface holds the prefix', async () => {
  const { dataplane, reconciler } = await setup()
  const name = (id: string | undefined): string => id ?? '-'
  let lines = dataplaneLines(reconciler.view(), name)
  assert.match(lines[0]!, /interface matches the table/)
  assert.match(lines[1]!, /ANYCAST PREFIX\s+SERVICE\s+TO\s+PEER\s+ON INTERFACE/)
  assert.match(lines[1]!, /10\.42\.255\.1\/32\s+web\s+peer\s+b\s+yes/)
  dataplane.tamperRemovePeer(KEY_B)
  await reconciler.stop()
  await dataplane.start()
  dataplane.tamperRemovePeer(KEY_B)
  const stale = { ...reconciler.view(), actual: await dataplane.read(), matches: false }
  lines = dataplaneLines(stale, name)
  assert.match(lines[0]!, /does not match the table/)
  assert.match(lines[1]!, /10\.42\.255\.1\/32\s+web\s+peer\s+b\s+no/)
})

test('peers from state: keys, endpoints and live unicast leases; bad records and records written by another node skipped', () => {
  const nodes = [
    ['peer-b', { name: 'b', wireguard: { publicKey: KEY_B, endpoint: '10.99.0.2:51820' } }],
    ['peer-c', { name: 'c', wireguard: { publicKey: KEY_C, endpoint: 'not an endpoint' } }],
    ['peer-x', { name: 'x', wireguard: { publicKey: 'short' } }],
    ['peer-y', { name: 'y' }],
    ['peer-z', { name: 'z', wireguard: { publicKey: KEY_B } }]
  ] as const
  const leases = [
    ['unicast/10.42.0.2', { holder: 'peer-b', expiresAtMs: 10_000 }],
    ['unicast/10.42.0.3', { holder: 'peer-c', expiresAtMs: 500 }],
    ['anycast/10.42.255.1/peer-b', { service: 'web', expiresAtMs: 10_000 }]
  ] as const
  // peer-z's record was written by peer-b (its own key, published as peer-z's): not believed.
  const authorOf = (nodeId: string): string => nodeId === 'peer-z' ? 'peer-b' : nodeId
  assert.equal(dataplanePeers(nodes, leases, 1000, authorOf), [
    { nodeId: 'peer-b', publicKey: KEY_B, name: 'b', endpoint: '10.99.0.2:51820', overlayAddress: '10.42.0.2' },
    { nodeId: 'peer-c', publicKey: KEY_C, name: 'c' }
  ])
})

test.run()
