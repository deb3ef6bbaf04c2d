// The replicated state on production NodeHosts in the simulated world: local writes reach every
// replica by gossip; writes made on both sides of a partition meet after it heals (anti-entropy
// repairs what gossip could not carry); a restarted node reloads its state from its disk; forged
// and malformed ops are dropped and counted, never applied.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { SimWorld } from '../../simulations/world.ts'
import { topicName } from '../../src/runtime/node.ts'
import { encodeStateFrame } from '../../src/protocols/state-codec.ts'
import { HlcClock, putOp, signStateOp } from '../../src/protocols/state-crdt.ts'
import { createSimSigner, KeyDirectory } from '../../src/runtime/signing.ts'
import { createRandom } from '../../src/runtime/random.ts'
import type { MemoryMetrics } from '../../src/runtime/metrics.ts'

// Leases are renewed all the time, so compare what the test writes: every collection but leases.
const digests = (world: SimWorld): Set<string> => new Set([...world.hosts.values()].filter((h) => h.running).map((host) => {
  const { nodes, services, settings } = host.replicator!.state.collectionDigests()
  return `${nodes} ${services} ${settings}`
}))

test('state: writes at every node reach every replica; a partition\'s two sides converge after heal, seed 11', async () => {
  const world = new SimWorld({ seed: 11, nodes: 12, degree: 3, state: { antiEntropyIntervalMs: 2000 } })
  await world.start()
  await world.run(3000)
  for (const host of world.hosts.values()) await host.replicator!.write('nodes', host.config.name, { name: host.config.name })
  await world.run(3000)
  assert.is(digests(world).size, 1, 'one digest everywhere')
  for (const host of world.hosts.values()) assert.is(host.replicator!.state.entries('nodes').length, 12)

  const ids = [...world.hosts.keys()]
  const left = ids.slice(0, 6)
  const right = ids.slice(6)
  const heal = world.network.partition(left, right)
  await world.hosts.get(left[0]!)!.replicator!.write('settings', 'motd', { text: 'left' })
  await world.hosts.get(right[0]!)!.replicator!.write('services', 'api', { anycast: ['10.42.255.1'] })
  await world.run(3000)
  assert.ok(digests(world).size >= 2, 'the sides differ during the partition')
  assert.is(world.hosts.get(right[1]!)!.replicator!.get('settings', 'motd'), undefined, 'the left write has not crossed')
  heal()
  // Gossip already sent is lost; anti-entropy (every 1.5–2.5 s with a random neighbour) repairs.
  let convergedAfter: number | undefined
  for (let ms = 0; ms <= 20_000; ms += 250) {
    if (digests(world).size === 1) { convergedAfter = ms; break }
    await world.run(250)
  }
  assert.ok(convergedAfter !== undefined, 'converged within 20 s of heal')
  console.log(`  replicas equal ${convergedAfter} ms after heal`)
  for (const host of world.hosts.values()) {
    assert.equal(host.replicator!.get('settings', 'motd'), { text: 'left' })
    assert.equal(host.replicator!.get('services', 'api'), { anycast: ['10.42.255.1'] })
  }
  await world.stop()
})

test('state: a crashed node restarts with its state from disk and catches up on what it missed, seed 12', async () => {
  const world = new SimWorld({ seed: 12, nodes: 6, degree: 3, state: { antiEntropyIntervalMs: 1000 } })
  await world.start()
  await world.run(2000)
  const victim = 'n00003'
  await world.hosts.get(victim)!.replicator!.write('nodes', victim, { name: victim })
  await world.run(2000)
  await world.crashNode(victim)
  await world.hosts.get('n00000')!.replicator!.write('settings', 'while-down', { v: 1 })
  await world.run(6000)
  await world.restartNode(victim)
  const restarted = world.hosts.get(victim)!
  assert.equal(restarted.replicator!.get('nodes', victim), { name: victim }, 'its own write survived the crash')
  await world.run(6000)
  assert.equal(restarted.replicator!.get('settings', 'while-down'), { v: 1 }, 'it caught up on the write it missed')
  assert.is(digests(world).size, 1)
  await world.stop()
})

test('state: forged and malformed state gossip is dropped and counted, never applied, seed 13', async () => {
  const world = new SimWorld({ seed: 13, nodes: 4, degree: 3, state: {} })
  await world.start()
  const rogue = world.network.createOverlay('rogue')
  await rogue.start()
  for (const id of world.hosts.keys()) world.network.connectNow('rogue', id)
  const topic = topicName('sim', 'state')
  rogue.subscribe(topic, () => {})
  await world.run(3000)
  // Signed by the rogue's key but naming n00000 as its author.
  const rogueSigner = createSimSigner('rogue', createRandom(7), new KeyDirectory({ fromPeerIds: false }))
  const op = putOp(new HlcClock('n00000', () => world.clock.now()), 'settings', 'owner', { who: 'rogue' })
  const forged = { op, signature: rogueSigner.sign(new Uint8Array([1])) }
  await rogue.publish(topic, encodeStateFrame({ type: 'ops', ops: [forged] }))
  await rogue.publish(topic, new Uint8Array([1, 2, 3, 4, 5]))
  await world.run(2000)
  let rejected = 0
  for (const host of world.hosts.values()) {
    assert.is(host.replicator!.get('settings', 'owner'), undefined, `${host.config.name} did not apply the forged op`)
    const metrics = host.components.metrics as MemoryMetrics
    rejected += metrics.value('state_ops_rejected_total', { reason: 'bad-signature' }) + metrics.value('state_ops_rejected_total', { reason: 'malformed' })
    assert.ok(host.running)
  }
  assert.ok(rejected >= 2, `rejections counted (${rejected})`)
  await world.stop()
})

test('state: a node whose store fails keeps running; received ops are counted as store-failed, not thrown, seed 14', async () => {
  const world = new SimWorld({ seed: 14, nodes: 4, degree: 3, state: {} })
  await world.start()
  await world.run(2000)
  const broken = world.hosts.get('n00002')!
  // The disk goes away under the node (a closed store refuses every write).
  await (broken.replicator as unknown as { store: { close: () => Promise<void> } }).store.close()
  await world.hosts.get('n00000')!.replicator!.write('settings', 'after-failure', { v: 1 })
  await world.run(2000)
  assert.ok(broken.running, 'the node keeps running')
  const metrics = broken.components.metrics as MemoryMetrics
  assert.ok(metrics.value('state_ops_rejected_total', { reason: 'store-failed' }) >= 1, 'the op it could not persist is counted')
  assert.equal(world.hosts.get('n00001')!.replicator!.get('settings', 'after-failure'), { v: 1 }, 'the others still replicate')
  await world.stop()
})

test.run()
