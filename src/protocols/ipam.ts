// IP address management for the overlay: the pools, where a node's or a service's address comes
// from, the lease records in the replicated state, and who wins when two nodes claim one address.
//
// Pools. The overlay CIDR (default 10.42.0.0/16, as formnet's) gives every node one unicast /32
// (/128 for an IPv6 ULA overlay, RFC 4193); the anycast pool inside it (default 10.42.255.0/24, the
// last 1/256 of the overlay) gives every service its anycast IP(s) and is never handed out as
// unicast. IPv4 pools skip their network and broadcast addresses (RFC 919/922; /31 and /32 have
// neither, RFC 3021); IPv6 pools skip their all-zero address, the Subnet-Router anycast address of
// RFC 4291 §2.6.1.
//
// Allocation. formnet hands out the "first free host", so two nodes joining at once pick the same
// address. Here each requester walks its own deterministic probe sequence through the pool, a
// function of (pool, requester id, attempt): double hashing, offset(attempt) = (start + attempt ×
// stride) mod n with start and stride from a hash of the requester id and the stride coprime to n.
// Independent hashes per attempt would need about n·ln n probes to see every address (coupon
// collector); this sequence is a permutation, so it covers the pool in n probes; and two nodes that
// collide on one attempt have different strides, so they part at the next. Past the attempt bound
// the pool counts as exhausted (IpamExhaustedError), never a loop without end.
//
// Leases (collection `leases`, contract §3): `unicast/<address>` → { holder, expiresAtMs, claimedAt? }
// is exclusive; `anycast/<address>/<holder>` → { service, expiresAtMs } is shared on purpose. A lease
// is live while expiresAtMs is in the future. Two claims on one exclusive address are settled by
// the smaller (hlc of the first claim, node id), so every replica picks the same winner whatever
// order the claims reached it in; `claimedAt` carries that first claim's clock through renewals.
import { createHash } from 'node:crypto'
import { Address4, Address6 } from 'ip-address'
import { formatAddress, parseAddress, parsePrefix, PrefixError, type ParsedPrefix } from './cidr.ts'

export const DEFAULT_OVERLAY_CIDR = '10.42.0.0/16'
export const DEFAULT_ANYCAST_CIDR = '10.42.255.0/24'
/** Covers an IPv4 /16 overlay; larger pools are probed this far before they count as full. */
export const DEFAULT_MAX_ATTEMPTS = 65_536
export const MAX_ATTEMPTS_LIMIT = 1 << 24
/** A default anycast pool is the last 1/256 of the overlay. */
const ANYCAST_DEFAULT_EXTRA_BITS = 8
/** Bounds the search for a stride coprime to the pool size; stride 1 is always coprime. */
const MAX_STRIDE_SEARCH = 10_000

/** Private ranges an overlay may use: RFC 1918, RFC 6598 shared space, RFC 4193 ULA. */
const PRIVATE_RANGES = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', 'fc00::/7']

export class IpamConfigError extends Error {
  override name = 'IpamConfigError'
  constructor (readonly field: string, readonly reason: string) {
    super(`ipam: ${field}: ${reason}`)
  }
}

export class IpamExhaustedError extends Error {
  override name = 'IpamExhaustedError'
  constructor (readonly pool: string, readonly taken: bigint, readonly usable: bigint, readonly attempts: number) {
    super(`ipam: pool ${pool} is exhausted: ${taken} of ${usable} usable addresses taken, no free one in ${attempts} probes`)
  }
}

export class LeaseFormatError extends Error {
  override name = 'LeaseFormatError'
  constructor (readonly field: string, readonly reason: string) {
    super(`lease: ${field}: ${reason}`)
  }
}

export interface IpamPool {
  /** Canonical "address/length". */
  prefix: string
  family: 4 | 6
  length: number
  /** The pool's first address as an integer. */
  base: bigint
  /** Offset of the first address handed out (1 when the first one is reserved). */
  firstOffset: bigint
  /** How many addresses may be handed out. */
  usable: bigint
}

export interface IpamConfig {
  overlay: IpamPool
  anycast: IpamPool
  maxAttempts: number
}

export interface IpamConfigInput {
  overlayCidr?: string
  anycastCidr?: string
  maxAttempts?: number
}

const familyBits = (family: 4 | 6): number => family === 4 ? 32 : 128

function addressValue (family: 4 | 6, text: string): bigint {
  return family === 4 ? new Address4(text).bigInt() : new Address6(text).bigInt()
}

/** Canonical text (cidr.ts: dotted decimal, RFC 5952) of an address given as an integer. */
export function addressText (family: 4 | 6, value: bigint): string {
  const bytes = new Uint8Array(familyBits(family) / 8)
  let rest = value
  for (let i = bytes.length - 1; i >= 0; i--) { bytes[i] = Number(rest & 0xffn); rest >>= 8n }
  return formatAddress(bytes)
}

function poolOf (prefix: ParsedPrefix): IpamPool {
  const hostBits = familyBits(prefix.family) - prefix.length
  const total = 1n << BigInt(hostBits)
  // IPv4: network and broadcast; IPv6: the Subnet-Router anycast address (RFC 4291 §2.6.1).
  const reservedLow = hostBits >= 2
  const reservedHigh = prefix.family === 4 && hostBits >= 2
  return {
    prefix: prefix.text,
    family: prefix.family,
    length: prefix.length,
    base: addressValue(prefix.family, prefix.address),
    firstOffset: reservedLow ? 1n : 0n,
    usable: total - (reservedLow ? 1n : 0n) - (reservedHigh ? 1n : 0n)
  }
}

/** Parses a pool prefix; throws IpamConfigError naming `field`. */
export function parsePool (text: unknown, field: string): IpamPool {
  if (typeof text !== 'string') throw new IpamConfigError(field, 'must be a CIDR string such as "10.42.0.0/16"')
  try {
    return poolOf(parsePrefix(text))
  } catch (error) {
    if (error instanceof PrefixError) throw new IpamConfigError(field, error.reason)
    throw error
  }
}

/** Is `value` one of the addresses `pool` hands out? */
export function isUsableValue (pool: IpamPool, value: bigint): boolean {
  const offset = value - pool.base
  return offset >= pool.firstOffset && offset < pool.firstOffset + pool.usable
}

function containsPool (outer: IpamPool, inner: IpamPool): boolean {
  if (outer.family !== inner.family || inner.length < outer.length) return false
  const shift = BigInt(familyBits(outer.family) - outer.length)
  return (inner.base >> shift) === (outer.base >> shift)
}

/** The last sub-prefix `extraBits` longer than the overlay. */
function lastSubPool (overlay: IpamPool, extraBits: number): IpamPool {
  const bits = familyBits(overlay.family)
  const length = Math.min(bits, overlay.length + extraBits)
  const base = overlay.base + (1n << BigInt(bits - overlay.length)) - (1n << BigInt(bits - length))
  return poolOf(parsePrefix(`${addressText(overlay.family, base)}/${length}`))
}

/**
 * Validates and fills in the IPAM settings. Throws IpamConfigError naming the field: the overlay
 * must be a private range (a public one would shadow real destinations inside the mesh), the
 * anycast pool must lie strictly inside it (so at least half the overlay stays unicast) and hold
 * at least one address that is usable in the overlay.
 */
export function parseIpamConfig (input: IpamConfigInput = {}): IpamConfig {
  const overlay = parsePool(input.overlayCidr ?? DEFAULT_OVERLAY_CIDR, 'overlayCidr')
  const isPrivate = PRIVATE_RANGES.map((range) => poolOf(parsePrefix(range))).some((range) => containsPool(range, overlay))
  if (!isPrivate) throw new IpamConfigError('overlayCidr', `${overlay.prefix} is not a private range (${PRIVATE_RANGES.join(', ')})`)
  if (overlay.length >= familyBits(overlay.family)) throw new IpamConfigError('overlayCidr', `${overlay.prefix} leaves no room for an anycast pool`)
  const anycast = input.anycastCidr === undefined
    ? lastSubPool(overlay, ANYCAST_DEFAULT_EXTRA_BITS)
    : parsePool(input.anycastCidr, 'anycastCidr')
  if (anycast.family !== overlay.family) throw new IpamConfigError('anycastCidr', `${anycast.prefix} is IPv${anycast.family} but the overlay ${overlay.prefix} is IPv${overlay.family}`)
  if (!containsPool(overlay, anycast) || anycast.length === overlay.length) {
    throw new IpamConfigError('anycastCidr', `${anycast.prefix} must lie strictly inside the overlay ${overlay.prefix}`)
  }
  if (anycastUsable(overlay, anycast) <= 0n) throw new IpamConfigError('anycastCidr', `${anycast.prefix} holds no usable anycast address`)
  const maxAttempts = input.maxAttempts ?? DEFAULT_MAX_ATTEMPTS
  if (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > MAX_ATTEMPTS_LIMIT) {
    throw new IpamConfigError('maxAttempts', `must be an integer in [1, ${MAX_ATTEMPTS_LIMIT}], got ${String(maxAttempts)}`)
  }
  return { overlay, anycast, maxAttempts }
}

/** Anycast-pool addresses that are also usable in the overlay (its broadcast may lie in the pool). */
function anycastUsable (overlay: IpamPool, anycast: IpamPool): bigint {
  if (anycast.usable === 0n) return 0n
  const first = anycast.base + anycast.firstOffset
  const last = first + anycast.usable - 1n
  const edges = first === last ? [first] : [first, last]
  return anycast.usable - BigInt(edges.filter((value) => !isUsableValue(overlay, value)).length)
}

/** Overlay addresses that may be unicast: usable in the overlay and outside the anycast pool. */
function unicastUsable (overlay: IpamPool, anycast: IpamPool): bigint {
  const anycastSize = 1n << BigInt(familyBits(anycast.family) - anycast.length)
  let overlap = 0n
  for (const edge of [overlay.base, overlay.base + (1n << BigInt(familyBits(overlay.family) - overlay.length)) - 1n]) {
    if (!isUsableValue(overlay, edge) && edge >= anycast.base && edge < anycast.base + anycastSize) overlap++
  }
  return overlay.usable - (anycastSize - overlap)
}

// --- probe sequence -----------------------------------------------------------------------------

export interface ProbeSequence {
  pool: IpamPool
  start: bigint
  /** Coprime to pool.usable, so attempts 0 … usable − 1 visit every usable address once. */
  stride: bigint
}

function gcd (a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b]
  return a
}

function hashWords (seed: string): [bigint, bigint] {
  const digest = createHash('sha256').update('form-anycast/ipam\0').update(seed).digest()
  const word = (from: number): bigint => BigInt(`0x${digest.subarray(from, from + 16).toString('hex')}`)
  return [word(0), word(16)]
}

/** The probe sequence of `seed` (a node id or a service name, with its kind) through `pool`. */
export function probeSequence (pool: IpamPool, seed: string): ProbeSequence {
  const n = pool.usable
  const [startWord, strideWord] = hashWords(seed)
  if (n <= 1n) return { pool, start: 0n, stride: 1n }
  let stride = 1n + strideWord % (n - 1n)
  for (let i = 0; i < MAX_STRIDE_SEARCH && gcd(stride, n) !== 1n; i++) stride = stride + 1n < n ? stride + 1n : 1n
  if (gcd(stride, n) !== 1n) stride = 1n
  return { pool, start: startWord % n, stride }
}

/** The address (as an integer) probed at `attempt`. */
export function probeValue (sequence: ProbeSequence, attempt: number): bigint {
  const { pool, start, stride } = sequence
  return pool.base + pool.firstOffset + (start + BigInt(attempt) * stride) % pool.usable
}

/** The address (canonical text) that `seed` probes at `attempt` in `pool`. */
export function probeAddress (pool: IpamPool, seed: string, attempt: number): string {
  return addressText(pool.family, probeValue(probeSequence(pool, seed), attempt))
}

export const unicastSeed = (nodeId: string): string => `unicast\0${nodeId}`
export const anycastSeed = (service: string): string => `anycast\0${service}`

export interface Allocation {
  /** Canonical text. */
  address: string
  /** Which probe found it (0 for the first). */
  attempt: number
}

/** An address as an integer from its bytes (network order); cheaper than a text round trip. */
function bytesValue (bytes: Uint8Array): bigint {
  let value = 0n
  for (const byte of bytes) value = (value << 8n) | BigInt(byte)
  return value
}

function takenValues (family: 4 | 6, taken: Iterable<string>): Set<bigint> {
  const values = new Set<bigint>()
  for (const text of taken) {
    const parsed = parseAddress(text)
    if (parsed.family === family) values.add(bytesValue(parsed.bytes))
  }
  return values
}

function allocate (pool: IpamPool, seed: string, taken: Set<bigint>, eligible: (value: bigint) => boolean, usable: bigint, maxAttempts: number): Allocation {
  const sequence = probeSequence(pool, seed)
  const bound = pool.usable < BigInt(maxAttempts) ? Number(pool.usable) : maxAttempts
  for (let attempt = 0; attempt < bound; attempt++) {
    const value = probeValue(sequence, attempt)
    if (eligible(value) && !taken.has(value)) return { address: addressText(pool.family, value), attempt }
  }
  let takenCount = 0n
  for (const value of taken) if (eligible(value) && isUsableValue(pool, value)) takenCount++
  throw new IpamExhaustedError(pool.prefix, takenCount, usable, bound)
}

/**
 * The unicast address for `nodeId`: the first address of its probe sequence through the overlay
 * that is neither in the anycast pool nor `taken` (addresses in canonical or any valid spelling).
 * Throws IpamExhaustedError after config.maxAttempts probes.
 */
export function allocateUnicast (config: IpamConfig, nodeId: string, taken: Iterable<string>): Allocation {
  const { overlay, anycast } = config
  const eligible = (value: bigint): boolean => isUsableValue(overlay, value) && !inPrefix(anycast, value)
  return allocate(overlay, unicastSeed(nodeId), takenValues(overlay.family, taken), eligible, unicastUsable(overlay, anycast), config.maxAttempts)
}

/**
 * An anycast address for `service`: deterministic from its name, so every node that registers the
 * service first tries the same one. For more addresses ("more on request"), call again with the
 * service's own addresses in `taken`: the next free one of the same sequence comes back.
 */
export function allocateAnycast (config: IpamConfig, service: string, taken: Iterable<string>): Allocation {
  const { overlay, anycast } = config
  // The overlay's broadcast address lies in the default anycast pool; it is never handed out.
  const eligible = (value: bigint): boolean => isUsableValue(anycast, value) && isUsableValue(overlay, value)
  return allocate(anycast, anycastSeed(service), takenValues(anycast.family, taken), eligible, anycastUsable(overlay, anycast), config.maxAttempts)
}

function inPrefix (pool: IpamPool, value: bigint): boolean {
  const shift = BigInt(familyBits(pool.family) - pool.length)
  return (value >> shift) === (pool.base >> shift)
}

/** Where an address may be leased: 'unicast', 'anycast', or undefined outside both. */
export function addressKind (config: IpamConfig, address: string): LeaseKind | undefined {
  const parsed = parseAddress(address)
  if (parsed.family !== config.overlay.family) return undefined
  const value = bytesValue(parsed.bytes)
  if (!isUsableValue(config.overlay, value)) return undefined
  if (inPrefix(config.anycast, value)) return isUsableValue(config.anycast, value) ? 'anycast' : undefined
  return 'unicast'
}

// --- lease records ------------------------------------------------------------------------------

export type LeaseKind = 'unicast' | 'anycast'

export type LeaseKey =
  | { kind: 'unicast', address: string }
  | { kind: 'anycast', address: string, holder: string }

/** The HLC of contract §1 as plain data, so this file depends on no clock implementation. */
export interface ClaimClock { wallMs: number, counter: number, node: string }

export interface UnicastLease {
  holder: string
  expiresAtMs: number
  /** HLC of the holder's first claim on this address; renewals keep it (the conflict rule reads it). */
  claimedAt?: ClaimClock
}

export interface AnycastLease {
  service: string
  expiresAtMs: number
}

const SERVICE_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/
/** Node ids are peer ids (base58btc) or simulator names: visible ASCII, no spaces, no "/". */
const NODE_ID = /^[\x21-\x2e\x30-\x7e]{1,128}$/
const MAX_LEASE_KEY_BYTES = 256
const utf8 = new TextEncoder()

function isRecord (value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

function checkNodeId (value: unknown, field: string): string {
  if (typeof value !== 'string' || !NODE_ID.test(value)) throw new LeaseFormatError(field, 'must be 1..128 visible ASCII characters without "/"')
  return value
}

function checkCount (value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new LeaseFormatError(field, `must be an integer >= 0, got ${String(value)}`)
  return value
}

function canonicalAddress (text: string, field: string): string {
  let canonical: string
  try { canonical = formatAddress(parseAddress(text).bytes) } catch (error) {
    if (error instanceof PrefixError) throw new LeaseFormatError(field, error.reason)
    throw error
  }
  // One spelling per address, so two spellings can never be two registers for one address.
  if (canonical !== text) throw new LeaseFormatError(field, `not canonical (write "${canonical}")`)
  return canonical
}

export function leaseKey (key: LeaseKey): string {
  return key.kind === 'unicast' ? `unicast/${key.address}` : `anycast/${key.address}/${key.holder}`
}

/** Parses a key of the `leases` collection. Throws LeaseFormatError naming the part. */
export function parseLeaseKey (text: string): LeaseKey {
  if (typeof text !== 'string' || utf8.encode(text).byteLength > MAX_LEASE_KEY_BYTES) throw new LeaseFormatError('key', `must be a string of at most ${MAX_LEASE_KEY_BYTES} bytes`)
  const parts = text.split('/')
  if (parts[0] === 'unicast' && parts.length === 2) return { kind: 'unicast', address: canonicalAddress(parts[1]!, 'key.address') }
  if (parts[0] === 'anycast' && parts.length === 3) {
    return { kind: 'anycast', address: canonicalAddress(parts[1]!, 'key.address'), holder: checkNodeId(parts[2], 'key.holder') }
  }
  throw new LeaseFormatError('key', 'must be "unicast/<address>" or "anycast/<address>/<holder>"')
}

function parseClaimClock (value: unknown, field: string): ClaimClock {
  if (!isRecord(value)) throw new LeaseFormatError(field, 'must be an object')
  return { wallMs: checkCount(value.wallMs, `${field}.wallMs`), counter: checkCount(value.counter, `${field}.counter`), node: checkNodeId(value.node, `${field}.node`) }
}

/** Validates a unicast lease value; unknown fields are dropped. */
export function parseUnicastLease (value: unknown): UnicastLease {
  if (!isRecord(value)) throw new LeaseFormatError('value', 'must be an object')
  const lease: UnicastLease = { holder: checkNodeId(value.holder, 'holder'), expiresAtMs: checkCount(value.expiresAtMs, 'expiresAtMs') }
  if (value.claimedAt !== undefined) lease.claimedAt = parseClaimClock(value.claimedAt, 'claimedAt')
  return lease
}

/** Validates an anycast lease value; unknown fields are dropped. */
export function parseAnycastLease (value: unknown): AnycastLease {
  if (!isRecord(value)) throw new LeaseFormatError('value', 'must be an object')
  if (typeof value.service !== 'string' || !SERVICE_NAME.test(value.service)) throw new LeaseFormatError('service', `must match ${SERVICE_NAME.source}`)
  return { service: value.service, expiresAtMs: checkCount(value.expiresAtMs, 'expiresAtMs') }
}

/** A lease is live while its expiry is in the future; an absent (or tombstoned) one never is. */
export function isLive (lease: { expiresAtMs: number } | undefined, nowMs: number): boolean {
  return lease !== undefined && lease.expiresAtMs > nowMs
}

/** RFC 2131 §4.4.5 times of a lease granted from `startMs` (when the request was sent). */
export function leaseTimes (startMs: number, leaseMs: number): { renewAtMs: number, rebindAtMs: number, expiresAtMs: number } {
  return { renewAtMs: startMs + leaseMs * 0.5, rebindAtMs: startMs + leaseMs * 0.875, expiresAtMs: startMs + leaseMs }
}

// --- the conflict rule --------------------------------------------------------------------------

export interface Claim {
  /** HLC of the first claim. */
  hlc: ClaimClock
  node: string
}

/** Code point order, which is the bytewise order of the UTF-8 encodings. */
function compareText (a: string, b: string): number {
  if (a === b) return 0
  const left = [...a]
  const right = [...b]
  const shared = Math.min(left.length, right.length)
  for (let i = 0; i < shared; i++) {
    const difference = left[i]!.codePointAt(0)! - right[i]!.codePointAt(0)!
    if (difference !== 0) return difference < 0 ? -1 : 1
  }
  return left.length < right.length ? -1 : left.length > right.length ? 1 : 0
}

export function compareClaimClocks (a: ClaimClock, b: ClaimClock): number {
  if (a.wallMs !== b.wallMs) return a.wallMs < b.wallMs ? -1 : 1
  if (a.counter !== b.counter) return a.counter < b.counter ? -1 : 1
  return compareText(a.node, b.node)
}

/** Negative when `a` wins: the smaller (first-claim hlc, node id). A total order. */
export function compareClaims (a: Claim, b: Claim): number {
  return compareClaimClocks(a.hlc, b.hlc) || compareText(a.node, b.node)
}

/** The winning claim of several on one exclusive address, or undefined if there are none. */
export function winningClaim<T extends Claim> (claims: Iterable<T>): T | undefined {
  let best: T | undefined
  for (const claim of claims) if (best === undefined || compareClaims(claim, best) < 0) best = claim
  return best
}
