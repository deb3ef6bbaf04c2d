// Heartbeats are gossiped to every member, so their period grows with the membership
// (src/protocols/membership.ts): each node receives at most heartbeatBudgetPerSec of them, and a
// member is judged stale against its own advertised period, not the base one.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { SimWorld } from '../../simulations/world.ts'

const NODES = 40

/** Heartbeats received per node per second between two instants, averaged over live nodes. */
async function receivedPerSecond (world: SimWorld, fromMs: number, untilMs: number): Promise<number> {
  const counts = (): number => [...world.hosts.values()].reduce((sum, host) => sum + host.memberList().reduce((n, member) => n + member.heartbeats, 0), 0)
  await world.run(fromMs - world.clock.now())
  const before = counts()
  await world.run(untilMs - fromMs)
  return (counts() - before) / world.hosts.size / ((untilMs - fromMs) / 1000)
}

test(`${NODES} nodes, budget 4 heartbeats/s: the period grows to 10 s and each node receives about 4 a second, seed 3`, async () => {
  const world = new SimWorld({ seed: 3, nodes: NODES, degree: 4, timing: { heartbeatBudgetPerSec: 4 } })
  await world.start()
  const rate = await receivedPerSecond(world, 30_000, 60_000)
  assert.ok(rate <= 4 * 1.15, `${rate.toFixed(2)} heartbeats/node/s, budget 4 (+ jitter)`)
  assert.ok(rate >= 4 * 0.8, `${rate.toFixed(2)} heartbeats/node/s: the period is not stretched past the budget`)
  for (const host of world.hosts.values()) {
    const members = host.memberList()
    assert.is(members.length, NODES - 1, `${host.config.name} knows every other member`)
    assert.ok(members.every((member) => !member.stale), `${host.config.name}: no live member is stale`)
  }

  // A crashed member beat every 10 s: stale after 5 × 10 s, not after the base 5 s.
  world.crashNode('n00007')
  const observer = world.hosts.get('n00000')!
  const judged = (): boolean | undefined => observer.memberList().find((member) => member.name === 'n00007')?.stale
  await world.run(15_000)
  assert.is(judged(), false, '15 s after the crash: within five of its periods')
  await world.run(50_000)
  assert.is(judged(), true, '65 s after the crash: stale')
  await world.stop()
})

test(`the same ${NODES} nodes with an ample budget beat every second: about ${NODES - 1} heartbeats/node/s, seed 3`, async () => {
  const world = new SimWorld({ seed: 3, nodes: NODES, degree: 4, timing: { heartbeatBudgetPerSec: 1000 } })
  await world.start()
  const rate = await receivedPerSecond(world, 10_000, 20_000)
  assert.ok(rate > 30, `${rate.toFixed(2)} heartbeats/node/s`)
  await world.stop()
})

test.run()
