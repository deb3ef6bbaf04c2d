// The `relay` settings of a node (circuit relay v2, AutoNAT, DCUtR), apart from libp2p so that
// config parsing does not load it. The limit bounds come from circuit-relay-v2's constants.ts.

export interface RelayOptions {
  client: boolean
  server: boolean
  /** As a server: relayed connections are cut after this long; at most libp2p's default (2 min). */
  durationLimitMs?: number
  /** As a server: ... or after this many bytes each way; at most libp2p's default (128 KiB). */
  dataLimitBytes?: number
}

/** circuit-relay-v2's server defaults (its constants.ts): we may be stricter, never looser. */
export const RELAY_DEFAULT_DURATION_LIMIT_MS = 2 * 60_000
export const RELAY_DEFAULT_DATA_LIMIT_BYTES = 1 << 17

/** Relay limits out of range: a relay must not be looser than libp2p's defaults. */
export class InvalidRelayLimitError extends RangeError {
  override name = 'InvalidRelayLimitError'
  constructor (readonly field: 'durationLimitMs' | 'dataLimitBytes', value: number, max: number) {
    super(`relay.${field} must be an integer from 1 to ${max} (libp2p's default; a relay may be stricter, never looser), got ${value}`)
  }
}

export function checkRelayLimits (relay: RelayOptions): void {
  const check = (field: 'durationLimitMs' | 'dataLimitBytes', value: number | undefined, max: number): void => {
    if (value !== undefined && !(Number.isInteger(value) && value >= 1 && value <= max)) throw new InvalidRelayLimitError(field, value, max)
  }
  check('durationLimitMs', relay.durationLimitMs, RELAY_DEFAULT_DURATION_LIMIT_MS)
  check('dataLimitBytes', relay.dataLimitBytes, RELAY_DEFAULT_DATA_LIMIT_BYTES)
}
