// The debugger's browser tests record a small simulation: six nodes around Frankfurt and New York,
// one service with an origin in each city.
export const FRANKFURT = { lat: 50.11, lon: 8.68 }
export const NEW_YORK = { lat: 40.71, lon: -74.01 }

/** A scenario file's contents: the two-city world, run for `durationMs` with `timeline`. */
export function twoCityScenario (options: { name: string, description: string, durationMs: number, timeline?: unknown[] }): Record<string, unknown> {
  return {
    name: options.name,
    description: options.description,
    durationMs: options.durationMs,
    degree: 3,
    world: { inflation: 1.5, linkBaseMs: 1, jitterFraction: 0.02, lossRate: 0 },
    generate: {
      count: 6,
      spreadKm: 300,
      seed: 1,
      sites: [
        { name: 'frankfurt', ...FRANKFURT, region: 'eu', weight: 1 },
        { name: 'new-york', ...NEW_YORK, region: 'na', weight: 1 }
      ]
    },
    services: [{ name: 'api', prefix: '10.42.255.1/32', origins: ['frankfurt-0', 'new-york-0'] }],
    timeline: options.timeline ?? []
  }
}
