// The small scenario several simulator tests run: 20 nodes in three cities; a web origin crashes
// at 2 s and restarts at 7 s, api fails at 3 s; 10 s in all.
import { parseScenario, type Scenario } from '../../simulations/scenario.ts'

export const MINI_SCENARIO = {
  name: 'mini',
  durationMs: 10_000,
  degree: 4,
  generate: {
    count: 20,
    spreadKm: 200,
    sites: [
      { name: 'fra', lat: 50.11, lon: 8.68, region: 'eu' },
      { name: 'nyc', lat: 40.71, lon: -74.01, region: 'na' },
      { name: 'lon', lat: 51.51, lon: -0.13, region: 'eu' }
    ]
  },
  services: [
    { name: 'api', prefix: '10.42.255.1/32', origins: ['fra-0', 'nyc-0'] },
    { name: 'web', prefix: '10.42.255.2/32', origins: ['lon-0', 'nyc-1'] }
  ],
  timeline: [
    { at: 2000, event: 'nodeCrash', node: 'lon-0' },
    { at: 3000, event: 'serviceDown', node: 'fra-0', service: 'api' },
    { at: 7000, event: 'nodeRestart', node: 'lon-0' }
  ],
  expect: { steadyAfterMs: 2000 }
}

/** MINI_SCENARIO with some top-level fields replaced, parsed. */
export function miniScenario (changes: Partial<typeof MINI_SCENARIO> & Record<string, unknown> = {}): Scenario {
  return parseScenario({ ...MINI_SCENARIO, ...changes }, 'mini.json')
}
