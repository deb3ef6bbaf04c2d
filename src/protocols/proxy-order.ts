// The order in which the L4 proxy tries a service's origins for one connection: the origin the
// route table chose first (the same nearest-healthy choice DNS and the dataplane follow), then the
// other usable candidates by path cost, so a connect failure retries on the next-best at once.
// Failed or unreachable origins are never tried; an origin at its connection limit goes last.
import type { RouteEntry } from './routes.ts'

export interface ProxyOrderOptions {
  /** Open connections per origin through this proxy. */
  active: ReadonlyMap<string, number>
  /** An origin with this many open connections is tried only after every other; default no limit. */
  maxConnectionsPerOrigin?: number
}

const HEALTH_RANK = { healthy: 0, degraded: 1, failed: 2 } as const

export function proxyOrder (entry: RouteEntry | undefined, options: ProxyOrderOptions): string[] {
  if (entry === undefined) return []
  const usable = entry.candidates.filter((candidate) => candidate.path !== undefined && candidate.attributes.health !== 'failed')
  const ranked = usable.sort((a, b) => {
    if (a.origin === entry.origin) return -1
    if (b.origin === entry.origin) return 1
    if (a.attributes.health !== b.attributes.health) return HEALTH_RANK[a.attributes.health] - HEALTH_RANK[b.attributes.health]
    if (a.attributes.preference !== b.attributes.preference) return b.attributes.preference - a.attributes.preference
    const cost = a.path!.costMs - b.path!.costMs
    if (cost !== 0) return cost
    return a.origin < b.origin ? -1 : a.origin > b.origin ? 1 : 0
  }).map((candidate) => candidate.origin)
  const limit = options.maxConnectionsPerOrigin
  if (limit === undefined) return ranked
  const full = (origin: string): boolean => (options.active.get(origin) ?? 0) >= limit
  return [...ranked.filter((origin) => !full(origin)), ...ranked.filter(full)]
}
