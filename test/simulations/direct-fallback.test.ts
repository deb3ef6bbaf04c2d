// Formation's relay rule in the simulator: a node whose direct link to an origin flaps falls back to
// the relay after 3 failures within 300 s and stays on it through the hold-down, even while the
// direct link is up; without the rule it moves back to the direct path on every heal.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { SimWorld } from '../../simulations/world.ts'
import { miniScenario } from '../support/mini-scenario.ts'
import type { DirectFallbackPolicy } from '../../src/protocols/direct-fallback.ts'
import type { MemoryMetrics } from '../../src/runtime/metrics.ts'

const PREFIX = '10.42.255.5/32'
const ORIGIN = 'n00000'
const NEAR = 'n00001'
const FAR = 'n00002'

/** Three nodes in a triangle; the far node's link to the origin is cut 3 s, healed 4 s, `flaps` times. */
async function flapping (policy: DirectFallbackPolicy, flaps: number): Promise<{ world: SimWorld, nextHops: string[] }> {
  const world = new SimWorld({
    seed: 6,
    nodes: 3,
    degree: 2,
    services: (index) => index === 0 ? [{ name: 'api', prefix: PREFIX, check: { kind: 'tcp', host: 'svc', port: 80 }, preference: 100 }] : [],
    timing: { directFallback: policy }
  })
  await world.start()
  await world.run(8000)
  const far = world.hosts.get(FAR)!
  const nextHop = (): string => String(far.controlPlane.routes().find((route) => route.prefix === PREFIX)?.nextHop)
  const nextHops = [nextHop()]
  for (let flap = 0; flap < flaps; flap++) {
    const heal = world.network.partition([FAR], [ORIGIN])
    await world.run(3000)
    heal()
    await world.run(4000)
    // Where the far node sends the prefix once the direct link has been back for 4 s.
    nextHops.push(nextHop())
  }
  return { world, nextHops }
}

test('direct fallback (3 failures in 300 s, 60 s hold-down): a flapping direct link sends the far node to the relay after the third flap, and it stays there while the link is up, seed 6', async () => {
  const { world, nextHops } = await flapping({ failures: 3, windowMs: 300_000, holdDownMs: 60_000 }, 4)
  assert.equal(nextHops, [ORIGIN, ORIGIN, ORIGIN, NEAR, NEAR], nextHops.join(' '))
  const far = world.hosts.get(FAR)!
  const view = far.controlPlane.originHealth().find((origin) => origin.origin === ORIGIN)!
  assert.ok(view.direct, 'the direct link answers probes again')
  assert.ok(view.relayedByRule)
  assert.is((far.components.metrics as MemoryMetrics).value('route_direct_fallbacks_total'), 1)
  // After the hold-down the direct path is trusted again.
  await world.run(60_000)
  assert.is(String(far.controlPlane.routes().find((route) => route.prefix === PREFIX)?.nextHop), ORIGIN)
  assert.not.ok(far.controlPlane.originHealth().find((origin) => origin.origin === ORIGIN)!.relayedByRule)
  await world.stop()
})

test('direct fallback off (100 failures): the same flapping link moves the route back to the direct path on every heal, seed 6', async () => {
  const { world, nextHops } = await flapping({ failures: 100, windowMs: 300_000, holdDownMs: 60_000 }, 4)
  assert.equal(nextHops, [ORIGIN, ORIGIN, ORIGIN, ORIGIN, ORIGIN], nextHops.join(' '))
  await world.stop()
})

test('scenario protocol.directFallback: defaults fill the missing fields; bad values are rejected naming the field', () => {
  assert.equal(miniScenario({ protocol: { directFallback: { failures: 2 } } }).protocol.directFallback, { failures: 2, windowMs: 300_000, holdDownMs: 300_000 })
  assert.throws(() => miniScenario({ protocol: { directFallback: { failures: 0 } } }), /protocol\.directFallback\.failures/)
  assert.throws(() => miniScenario({ protocol: { directFallback: { holdDownMs: -1 } } }), /protocol\.directFallback\.holdDownMs/)
  assert.throws(() => miniScenario({ protocol: { directFallback: { after: 3 } } }), /protocol\.directFallback/)
})

test.run()
