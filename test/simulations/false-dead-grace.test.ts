// The false-dead checker does not judge a failed verdict that lands right after its origin came back
// or a partition changed: the probes that decided it left while the origin was unreachable.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { settledSince } from '../../simulations/runner.ts'
import { miniScenario } from '../support/mini-scenario.ts'

test('false dead grace: settledSince is the origin\'s last restart or the last partition start or end, whichever is later', () => {
  const scenario = miniScenario({
    timeline: [
      { at: 2000, event: 'nodeCrash', node: 'lon-0' },
      { at: 4000, event: 'partition', between: [{ regions: ['na'] }], durationMs: 1000 } as never,
      { at: 7000, event: 'nodeRestart', node: 'lon-0' }
    ]
  })
  const settled = settledSince(scenario)
  assert.is(settled('lon-0', 1000), -Infinity)
  assert.is(settled('lon-0', 4500), 4000)
  assert.is(settled('nyc-1', 6000), 5000)
  assert.is(settled('lon-0', 6999), 5000)
  assert.is(settled('lon-0', 9000), 7000)
  // Another origin's restart is not this one's.
  assert.is(settled('nyc-1', 9000), 5000)
})

test.run()
