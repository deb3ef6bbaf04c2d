// Registering a service in the replicated state: its record in the `services` collection
// (`services/<name>` → `{ anycast: [address, ...] }`, docs/state-contract.md §3) and the choice of
// its anycast address. Pure: the caller reads the collections and writes the result.
//
// The address is IPAM's deterministic probe sequence for the service name through the anycast
// pool (allocateAnycast), skipping every address already in use: those of registered services and
// those that live anycast leases hold (services configured with a fixed prefix, such as the demo's
// 10.42.255.1/32, have leases but no record).
import { allocateAnycast, isLive, parseAnycastLease, parseLeaseKey, type IpamConfig } from './ipam.ts'
import { formatAddress, parseAddress } from './cidr.ts'

export const SERVICE_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/
export const SERVICE_NAME_HINT = 'lowercase letters, digits and dashes (at most 63), starting with a letter or digit'
/** Anycast addresses one record may list. */
const MAX_SERVICE_ADDRESSES = 16

export interface ServiceRecord { name: string, anycast: string[] }

export class ServiceRecordError extends Error {
  override name = 'ServiceRecordError'
  constructor (readonly field: string, readonly reason: string) {
    super(`${field}: ${reason}`)
  }
}

export class ServiceExistsError extends Error {
  override name = 'ServiceExistsError'
  constructor (readonly record: ServiceRecord) {
    super(`service ${JSON.stringify(record.name)} is already registered (anycast ${record.anycast.join(', ')})`)
  }
}

export function checkServiceName (value: unknown, field = 'name'): string {
  if (typeof value !== 'string' || !SERVICE_NAME.test(value)) {
    throw new ServiceRecordError(field, `must be ${SERVICE_NAME_HINT}, got ${typeof value === 'string' ? JSON.stringify(value.slice(0, 80)) : typeof value}`)
  }
  return value
}

/** A `services` register's value; throws ServiceRecordError naming the field. */
export function parseServiceRecord (name: string, value: unknown): ServiceRecord {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new ServiceRecordError('value', 'must be an object')
  const anycast = (value as Record<string, unknown>).anycast
  if (!Array.isArray(anycast) || anycast.length === 0 || anycast.length > MAX_SERVICE_ADDRESSES) {
    throw new ServiceRecordError('anycast', `must be an array of 1 to ${MAX_SERVICE_ADDRESSES} addresses`)
  }
  return {
    name: checkServiceName(name),
    anycast: anycast.map((address, index) => {
      try { return formatAddress(parseAddress(String(address)).bytes) } catch { throw new ServiceRecordError(`anycast[${index}]`, `not an address: ${JSON.stringify(address)}`) }
    })
  }
}

type Entries = Iterable<readonly [string, unknown]>

/** Addresses in use: every registered service's, and every live anycast lease's. */
export function takenAnycastAddresses (services: Entries, leases: Entries, nowMs: number): Set<string> {
  const taken = new Set<string>()
  for (const [name, value] of services) {
    try { for (const address of parseServiceRecord(name, value).anycast) taken.add(address) } catch { /* a record another version wrote */ }
  }
  for (const [key, value] of leases) {
    try {
      const parsed = parseLeaseKey(key)
      if (parsed.kind === 'anycast' && isLive(parseAnycastLease(value), nowMs)) taken.add(parsed.address)
    } catch { /* not a lease this version reads */ }
  }
  return taken
}

/**
 * The record to write for a new service. Throws ServiceExistsError when `name` is registered,
 * ServiceRecordError for a bad name, IpamExhaustedError when the pool has no free address.
 */
export function planServiceRegistration (ipam: IpamConfig, name: string, state: { services: Entries, leases: Entries, nowMs: number }): ServiceRecord {
  checkServiceName(name)
  for (const [existing, value] of state.services) {
    if (existing !== name) continue
    let record: ServiceRecord
    try { record = parseServiceRecord(existing, value) } catch { record = { name, anycast: [] } }
    throw new ServiceExistsError(record)
  }
  const taken = takenAnycastAddresses(state.services, state.leases, state.nowMs)
  return { name, anycast: [allocateAnycast(ipam, name, taken).address] }
}
