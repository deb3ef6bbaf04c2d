// The load a node announces for a service it serves, from the connections its L4 proxies hold open
// to it (tcp-proxy.ts). Load is active ÷ capacity, the capacity being the proxy's configured
// maxConnectionsPerOrigin; it is announced in steps so that one connection more or less does not
// re-sign and re-spread the announcement. At capacity the origin is overloaded: it is announced
// degraded, so selection (best-path.ts) sends new traffic to healthy origins first.

/** Load steps: 0, 0.1, …, 1. */
export const LOAD_STEP = 0.1

/** active ÷ capacity, rounded down to LOAD_STEP, in [0, 1]; 0 without a capacity. */
export function connectionLoad (active: number, capacity: number | undefined): number {
  if (capacity === undefined || !(capacity > 0) || !(active > 0)) return 0
  const steps = Math.floor((Math.min(active, capacity) / capacity) / LOAD_STEP + 1e-9)
  return Math.round(steps * LOAD_STEP * 10) / 10
}

/** At or over capacity. */
export function isOverloaded (active: number, capacity: number | undefined): boolean {
  return capacity !== undefined && capacity > 0 && active >= capacity
}
