// Origin probe tiers in the simulator: a node probes the origins it routes to or would fail over to
// at the full rate and the others at the standby period, and promotes the next one when one fails.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { SimWorld } from '../../simulations/world.ts'
import { miniScenario } from '../support/mini-scenario.ts'
import type { NodeHost } from '../../src/runtime/node.ts'

const PREFIX = '10.42.255.7/32'
const WATCHER = 'n00000'
/** Origins n00001..n00005: node k is 10·k ms (one way) from the watcher. */
const ORIGINS = ['n00001', 'n00002', 'n00003', 'n00004', 'n00005']

function intervals (host: NodeHost): Record<string, number> {
  return Object.fromEntries(host.controlPlane.originHealth().map((view) => [view.origin, view.intervalMs]))
}

test('probe tiers: the watcher probes its two nearest origins every 500 ms and the other three every 5 s; when the nearest crashes the third is promoted, seed 3', async () => {
  const world = new SimWorld({
    seed: 3,
    nodes: 7,
    degree: 4,
    services: (index) => index >= 1 && index <= 5 ? [{ name: 'api', prefix: PREFIX, check: { kind: 'tcp', host: 'svc', port: 80 }, preference: 100 }] : [],
    latency: (a, b) => a === WATCHER ? 10 * Number(b.slice(1)) : b === WATCHER ? 10 * Number(a.slice(1)) : 20
  })
  await world.start()
  await world.run(10_000)
  const watcher = world.hosts.get(WATCHER)!
  assert.equal(intervals(watcher), { n00001: 500, n00002: 500, n00003: 5000, n00004: 5000, n00005: 5000 })
  assert.is(watcher.controlPlane.routes().find((route) => route.prefix === PREFIX)?.origin, 'n00001')
  // The standby origins are still probed: their RTTs stay known.
  for (const view of watcher.controlPlane.originHealth()) assert.is(view.verdict, 'healthy', view.origin)
  await world.crashNode('n00001')
  await world.run(3000)
  assert.is(watcher.controlPlane.routes().find((route) => route.prefix === PREFIX)?.origin, 'n00002')
  // The failed nearest stays active (its return is seen at once), n00003 is the new failover.
  assert.equal(intervals(watcher), { n00001: 500, n00002: 500, n00003: 500, n00004: 5000, n00005: 5000 })
  await world.stop()
})

test('scenario protocol.originStandby: defaults fill the missing fields; bad values are rejected naming the field', () => {
  assert.equal(miniScenario({ protocol: { originStandby: { intervalMs: 2000 } } }).protocol.originStandby, { activePerPrefix: 2, intervalMs: 2000 })
  assert.throws(() => miniScenario({ protocol: { originStandby: { activePerPrefix: 0 } } }), /protocol\.originStandby\.activePerPrefix/)
  assert.throws(() => miniScenario({ protocol: { originStandby: { intervalMs: 10 } } }), /protocol\.originStandby\.intervalMs/)
  assert.throws(() => miniScenario({ protocol: { originStandby: { every: 3 } } }), /protocol\.originStandby/)
})

test.run()
