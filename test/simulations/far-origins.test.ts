// Origins on the far side of the world answer in about 290 ms. Before its first answer a prober
// has no round trip to scale its timeout by; it used to take the policy's 300 ms, so probes to such
// an origin timed out at start-up and the origin was declared failed while alive (7 to 8 false
// "dead" verdicts per seed here). The first timeout is now the ceiling, as RFC 6298 §2.1 starts.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { parseScenario } from '../../simulations/scenario.ts'
import { runScenario } from '../../simulations/runner.ts'

const FAR_ORIGINS = {
  name: 'far-origins',
  description: 'South American nodes and an origin in Singapore, about 290 ms away, from start-up on.',
  durationMs: 15_000,
  degree: 4,
  world: { inflation: 1.5, linkBaseMs: 1, jitterFraction: 0.02 },
  generate: {
    count: 30,
    spreadKm: 50,
    seed: 1,
    sites: [
      { name: 'quito', lat: -0.22, lon: -78.51, region: 'sa', weight: 3 },
      { name: 'lima', lat: -12.05, lon: -77.04, region: 'sa', weight: 3 },
      { name: 'singapore', lat: 1.35, lon: 103.82, region: 'ap', weight: 1 },
      { name: 'jakarta', lat: -6.2, lon: 106.85, region: 'ap', weight: 2 }
    ]
  },
  services: [{ name: 'web', prefix: '10.42.255.2/32', origins: ['singapore-0', 'lima-0'] }],
  timeline: []
}

for (const seed of [1, 2]) {
  test(`far origins: no origin ~290 ms away is declared failed at start-up, seed ${seed}`, async () => {
    const run = await runScenario(parseScenario(FAR_ORIGINS, 'far-origins.json'), seed)
    assert.is(run.falseDead, 0)
    assert.ok(run.passed, JSON.stringify(Object.entries(run.checks).filter(([, check]) => !check.passed)))
  })
}

test.run()
