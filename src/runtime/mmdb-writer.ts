// A minimal MaxMind DB (format 2.0) writer, for test fixtures and the simulator's world: tests must
// not depend on a 134 MB download, and a world of invented networks needs its own GeoIP database.
// Format: https://maxmind.github.io/MaxMind-DB/ (the spec, v2.0). A file is
//
//   binary search tree | 16 zero bytes | data section | "\xab\xcd\xefMaxMind.com" | metadata map
//
// The tree has one level per address bit; each node holds two records (bit 0 → left, 1 → right).
// A record is a node number (< node count), "no data" (= node count), or a data pointer
// (node count + 16 + offset into the data section). IPv4 networks in an IPv6 tree sit at ::/96, as
// the spec says; like MaxMind's own databases we also point ::ffff:0:0/96 (IPv4-mapped IPv6) at the
// IPv4 subtree, so either spelling of an IPv4 client finds the same record.
//
// Overlapping networks are allowed and the more specific one wins (as in a routing table); the
// same network twice is an error. Equal data is stored once. Pointers are never written (the spec
// makes them optional). Output is deterministic: the same input gives the same bytes.

import { Buffer } from 'node:buffer'
import { PrefixError, parseAddress, parsePrefix } from '../protocols/cidr.ts'

export const METADATA_MARKER = Buffer.from('\xab\xcd\xefMaxMind.com', 'latin1')
const DATA_SECTION_SEPARATOR_BYTES = 16
const MAX_METADATA_BYTES = 128 * 1024
/** Largest payload size a control byte can express (spec: "Payload Size"). */
const MAX_PAYLOAD_SIZE = 65_821 + 0xff_ffff

export type MmdbNumberType = 'uint16' | 'uint32' | 'int32' | 'uint64' | 'uint128' | 'double' | 'float'

/** A number with an explicit MaxMind type; plain numbers get one chosen for them (see encodeNumber). */
export class MmdbTypedNumber {
  constructor (readonly type: MmdbNumberType, readonly value: number | bigint) {}
}

export type MmdbValue =
  | string | number | bigint | boolean | Uint8Array | MmdbTypedNumber
  | readonly MmdbValue[]
  | { readonly [key: string]: MmdbValue }

export interface MmdbRecord {
  /** CIDR, e.g. "203.0.113.0/24" or "2001:db8:1::/48". */
  network: string
  data: MmdbValue
}

export interface MmdbWriteOptions {
  /** e.g. "GeoIP2-City" (names starting "GeoIP" are MaxMind's; fixtures may imitate them). */
  databaseType: string
  records: readonly MmdbRecord[]
  /** Default 6. A version-4 tree accepts IPv4 networks only. */
  ipVersion?: 4 | 6
  /** Bits per record; default the smallest of 24, 28, 32 that fits. */
  recordSize?: 24 | 28 | 32
  /** Point ::ffff:0:0/96 at the IPv4 subtree (IPv6 trees only); default true. */
  aliasIpv4Mapped?: boolean
  languages?: readonly string[]
  /** Language code → description. */
  description?: Readonly<Record<string, string>>
  /** Build time, Unix seconds; default 0 so the output is reproducible. */
  buildEpochSeconds?: number | bigint
}

export class MmdbWriteError extends Error {
  override name = 'MmdbWriteError'
  constructor (readonly field: string, readonly reason: string) {
    super(`mmdb writer: ${field}: ${reason}`)
  }
}

// Data section encoding (spec: "Output Data Section").

const TYPE = { string: 2, double: 3, bytes: 4, uint16: 5, uint32: 6, map: 7, int32: 8, uint64: 9, uint128: 10, array: 11, boolean: 14, float: 15 } as const

/** Control byte(s): 3 type bits (0 = extended, type − 7 in the next byte), 5 size bits, size bytes. */
function controlBytes (type: number, size: number, field: string): Buffer {
  if (!Number.isInteger(size) || size < 0 || size > MAX_PAYLOAD_SIZE) throw new MmdbWriteError(field, `size ${size} cannot be encoded (at most ${MAX_PAYLOAD_SIZE})`)
  let sizeBits: number
  let sizeBytes: number[]
  if (size < 29) { sizeBits = size; sizeBytes = [] } else if (size < 285) {
    sizeBits = 29; sizeBytes = [size - 29]
  } else if (size < 65_821) {
    const rest = size - 285
    sizeBits = 30; sizeBytes = [rest >> 8, rest & 0xff]
  } else {
    const rest = size - 65_821
    sizeBits = 31; sizeBytes = [(rest >> 16) & 0xff, (rest >> 8) & 0xff, rest & 0xff]
  }
  const typeBytes = type <= 7 ? [(type << 5) | sizeBits] : [sizeBits, type - 7]
  return Buffer.from([...typeBytes, ...sizeBytes])
}

/** Big-endian bytes without leading zeros (0 → no bytes, which the spec reads as 0). */
function minimalBytes (value: bigint): number[] {
  const bytes: number[] = []
  for (let rest = value; rest > 0n; rest >>= 8n) bytes.unshift(Number(rest & 0xffn))
  return bytes
}

const INTEGER_LIMITS: Record<'uint16' | 'uint32' | 'int32' | 'uint64' | 'uint128', readonly [bigint, bigint]> = {
  uint16: [0n, 0xffffn],
  uint32: [0n, 0xffff_ffffn],
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
  uint128: [0n, 2n ** 128n - 1n]
}

function encodeTyped ({ type, value }: MmdbTypedNumber, field: string): Buffer {
  if (type === 'double' || type === 'float') {
    if (typeof value !== 'number') throw new MmdbWriteError(field, `a ${type} must be a number`)
    const payload = Buffer.alloc(type === 'double' ? 8 : 4)
    if (type === 'double') payload.writeDoubleBE(value)
    else payload.writeFloatBE(value)
    return Buffer.concat([controlBytes(TYPE[type], payload.length, field), payload])
  }
  if (typeof value === 'number' && !Number.isSafeInteger(value)) throw new MmdbWriteError(field, `${type} ${value} is not a safe integer`)
  const integer = BigInt(value)
  const [min, max] = INTEGER_LIMITS[type]
  if (integer < min || integer > max) throw new MmdbWriteError(field, `${integer} is outside the ${type} range`)
  // A negative int32 takes all 4 bytes (two's complement); readers treat shorter ones as unsigned.
  const bytes = integer < 0n ? minimalBytes(integer + 2n ** 32n) : minimalBytes(integer)
  return Buffer.concat([controlBytes(TYPE[type], bytes.length, field), Buffer.from(bytes)])
}

/** Plain numbers: integers in range as uint32 or int32, everything else (and −0) as double. */
function encodeNumber (value: number, field: string): Buffer {
  if (Number.isInteger(value) && !Object.is(value, -0)) {
    if (value >= 0 && value <= 0xffff_ffff) return encodeTyped(new MmdbTypedNumber('uint32', value), field)
    if (value < 0 && value >= -(2 ** 31)) return encodeTyped(new MmdbTypedNumber('int32', value), field)
  }
  return encodeTyped(new MmdbTypedNumber('double', value), field)
}

/** Lone UTF-16 surrogates: in u-mode a well-formed pair is one code point, so only lone ones match. */
const LONE_SURROGATE = /\p{Cs}/u

function encodeString (value: string, field: string): Buffer {
  if (LONE_SURROGATE.test(value)) throw new MmdbWriteError(field, 'string has a lone UTF-16 surrogate, which is not UTF-8')
  const payload = Buffer.from(value, 'utf8')
  return Buffer.concat([controlBytes(TYPE.string, payload.length, field), payload])
}

/** Encode one value of the data section; `field` names it in errors, e.g. records[2].data.city. */
export function encodeMmdbValue (value: MmdbValue, field = 'value', depth = 0): Buffer {
  if (depth > 64) throw new MmdbWriteError(field, 'nested more than 64 levels deep')
  if (typeof value === 'string') return encodeString(value, field)
  if (typeof value === 'number') return encodeNumber(value, field)
  if (typeof value === 'bigint') return encodeTyped(new MmdbTypedNumber(value <= 2n ** 64n - 1n ? 'uint64' : 'uint128', value), field)
  if (typeof value === 'boolean') return controlBytes(TYPE.boolean, value ? 1 : 0, field)
  if (value instanceof MmdbTypedNumber) return encodeTyped(value, field)
  if (value instanceof Uint8Array) return Buffer.concat([controlBytes(TYPE.bytes, value.byteLength, field), value])
  if (Array.isArray(value)) {
    const items = (value as readonly MmdbValue[]).map((item, index) => encodeMmdbValue(item, `${field}[${index}]`, depth + 1))
    return Buffer.concat([controlBytes(TYPE.array, items.length, field), ...items])
  }
  if (typeof value === 'object' && value !== null && [Object.prototype, null].includes(Object.getPrototypeOf(value))) {
    const entries = Object.entries(value as Record<string, MmdbValue>)
    // JavaScript readers assign keys to a plain object, where "__proto__" would set the prototype.
    if (entries.some(([key]) => key === '__proto__')) throw new MmdbWriteError(field, 'key "__proto__" cannot be read back by JavaScript readers')
    const parts = entries.flatMap(([key, item]) => [encodeString(key, `${field} key`), encodeMmdbValue(item, `${field}.${key}`, depth + 1)])
    return Buffer.concat([controlBytes(TYPE.map, entries.length, field), ...parts])
  }
  throw new MmdbWriteError(field, `${value === null ? 'null' : typeof value} cannot be stored (use string, number, bigint, boolean, bytes, array or plain object)`)
}

// Search tree.

class DataLeaf { constructor (readonly offset: number) {} }
class TreeNode { children: [Child, Child] = [undefined, undefined] }
/** undefined: no data for this part of the address space. */
type Child = TreeNode | DataLeaf | undefined

const bitAt = (bytes: Uint8Array, index: number): 0 | 1 => ((bytes[index >> 3] >> (7 - (index & 7))) & 1) as 0 | 1

/** Set the subtree for the first `length` bits of `bytes` to `value`, splitting covering leaves. */
function insert (root: TreeNode, bytes: Uint8Array, length: number, value: Child): void {
  if (length === 0) { root.children = [value, value]; return }
  let node = root
  for (let depth = 0; depth < length - 1; depth++) {
    const bit = bitAt(bytes, depth)
    const child = node.children[bit]
    if (child instanceof TreeNode) { node = child; continue }
    const split = new TreeNode()
    split.children = [child, child]
    node.children[bit] = split
    node = split
  }
  node.children[bitAt(bytes, length - 1)] = value
}

/** The subtree (or leaf, or nothing) at the first `length` bits of `bytes`. */
function subtreeAt (root: TreeNode, bytes: Uint8Array, length: number): Child {
  let child: Child = root
  for (let depth = 0; depth < length && child instanceof TreeNode; depth++) child = child.children[bitAt(bytes, depth)]
  return child
}

interface TreeNetwork { bytes: Uint8Array, length: number, field: string, key: string }

const IPV4_MAPPED_PREFIX = parseAddress('::ffff:0.0.0.0').bytes
const isInsideIpv4Mapped = (network: TreeNetwork): boolean =>
  network.length >= 96 && IPV4_MAPPED_PREFIX.slice(0, 12).every((byte, index) => network.bytes[index] === byte)

/** Parse a record's network into tree bits: IPv4 in an IPv6 tree becomes ::a.b.c.d/(96 + length). */
function treeNetwork (text: string, ipVersion: 4 | 6, field: string): TreeNetwork {
  let prefix
  try {
    prefix = parsePrefix(text)
  } catch (error) {
    if (error instanceof PrefixError) throw new MmdbWriteError(field, error.message)
    throw error
  }
  const { bytes } = parseAddress(prefix.address)
  if (ipVersion === 4 && prefix.family === 6) throw new MmdbWriteError(field, `${prefix.text} is IPv6 but the database is IPv4-only`)
  if (ipVersion === 6 && prefix.family === 4) {
    const embedded = new Uint8Array(16)
    embedded.set(bytes, 12)
    return { bytes: embedded, length: prefix.length + 96, field, key: `::${prefix.text}` }
  }
  return { bytes, length: prefix.length, field, key: prefix.text }
}

interface DataSection { bytes: Buffer, leaves: DataLeaf[] }

/** Encode every record's data, storing equal values once. */
function buildDataSection (records: readonly MmdbRecord[]): DataSection {
  const offsets = new Map<string, number>()
  const parts: Buffer[] = []
  let size = 0
  const leaves = records.map((record, index) => {
    const encoded = encodeMmdbValue(record.data, `records[${index}].data`)
    const key = encoded.toString('latin1')
    let offset = offsets.get(key)
    if (offset === undefined) {
      offset = size
      offsets.set(key, offset)
      parts.push(encoded)
      size += encoded.length
    }
    return new DataLeaf(offset)
  })
  return { bytes: Buffer.concat(parts), leaves }
}

function buildTree (records: readonly MmdbRecord[], leaves: readonly DataLeaf[], ipVersion: 4 | 6, aliasIpv4Mapped: boolean): TreeNode {
  const networks = records.map((record, index) => ({ network: treeNetwork(record.network, ipVersion, `records[${index}].network`), leaf: leaves[index]! }))
  const seen = new Map<string, string>()
  for (const { network } of networks) {
    const key = `${Buffer.from(network.bytes).toString('hex')}/${network.length}`
    const earlier = seen.get(key)
    if (earlier !== undefined) throw new MmdbWriteError(network.field, `${network.key} is the same network as ${earlier}`)
    seen.set(key, network.field)
    if (aliasIpv4Mapped && isInsideIpv4Mapped(network)) {
      throw new MmdbWriteError(network.field, `${network.key} is inside ::ffff:0:0/96, which aliases the IPv4 space; write it as an IPv4 network`)
    }
  }
  const root = new TreeNode()
  // Shorter prefixes first, so a more specific network splits and overrides a covering one.
  const ordered = [...networks].sort((a, b) => a.network.length - b.network.length)
  for (const { network, leaf } of ordered) insert(root, network.bytes, network.length, leaf)
  if (aliasIpv4Mapped) {
    const ipv4Space = subtreeAt(root, new Uint8Array(16), 96)
    // Nothing to alias to and nothing to hide: skip the 96-node path of empty records.
    if (ipv4Space !== undefined || subtreeAt(root, IPV4_MAPPED_PREFIX, 96) !== undefined) insert(root, IPV4_MAPPED_PREFIX, 96, ipv4Space)
  }
  return root
}

/** Node numbers in breadth-first order from the root (node 0); shared subtrees are numbered once. */
function numberNodes (root: TreeNode): Map<TreeNode, number> {
  const numbers = new Map<TreeNode, number>([[root, 0]])
  const queue: TreeNode[] = [root]
  for (let index = 0; index < queue.length; index++) {
    for (const child of queue[index]!.children) {
      if (child instanceof TreeNode && !numbers.has(child)) {
        numbers.set(child, numbers.size)
        queue.push(child)
      }
    }
  }
  return numbers
}

function chooseRecordSize (maxRecordValue: number, requested: 24 | 28 | 32 | undefined): 24 | 28 | 32 {
  const fits = (size: number): boolean => maxRecordValue < 2 ** size
  if (requested !== undefined) {
    if (![24, 28, 32].includes(requested)) throw new MmdbWriteError('recordSize', `${String(requested)} is not 24, 28 or 32`)
    if (!fits(requested)) throw new MmdbWriteError('recordSize', `${requested}-bit records cannot address ${maxRecordValue}`)
    return requested
  }
  const size = ([24, 28, 32] as const).find(fits)
  if (size === undefined) throw new MmdbWriteError('records', 'the database is too large for 32-bit records')
  return size
}

/** Spec "Node Layout": 24 and 32 bits are two big-endian halves; 28 shares the middle byte's nibbles. */
function writeNode (tree: Buffer, offset: number, recordSize: 24 | 28 | 32, left: number, right: number): void {
  if (recordSize === 24) {
    tree.writeUIntBE(left, offset, 3)
    tree.writeUIntBE(right, offset + 3, 3)
  } else if (recordSize === 32) {
    tree.writeUInt32BE(left, offset)
    tree.writeUInt32BE(right, offset + 4)
  } else {
    tree.writeUIntBE(left % 2 ** 24, offset, 3)
    tree[offset + 3] = (Math.floor(left / 2 ** 24) << 4) | Math.floor(right / 2 ** 24)
    tree.writeUIntBE(right % 2 ** 24, offset + 4, 3)
  }
}

function encodeTree (root: TreeNode, dataBytes: number, requestedSize: 24 | 28 | 32 | undefined): { tree: Buffer, nodeCount: number, recordSize: 24 | 28 | 32 } {
  const numbers = numberNodes(root)
  const nodeCount = numbers.size
  const recordSize = chooseRecordSize(nodeCount + DATA_SECTION_SEPARATOR_BYTES + dataBytes, requestedSize)
  const nodeBytes = recordSize / 4
  const tree = Buffer.alloc(nodeCount * nodeBytes)
  const recordValue = (child: Child): number => {
    if (child === undefined) return nodeCount
    if (child instanceof DataLeaf) return nodeCount + DATA_SECTION_SEPARATOR_BYTES + child.offset
    return numbers.get(child)!
  }
  for (const [node, number] of numbers) {
    writeNode(tree, number * nodeBytes, recordSize, recordValue(node.children[0]), recordValue(node.children[1]))
  }
  return { tree, nodeCount, recordSize }
}

function metadataValue (options: MmdbWriteOptions, ipVersion: 4 | 6, nodeCount: number, recordSize: number): MmdbValue {
  const epoch = BigInt(options.buildEpochSeconds ?? 0)
  return {
    binary_format_major_version: new MmdbTypedNumber('uint16', 2),
    binary_format_minor_version: new MmdbTypedNumber('uint16', 0),
    build_epoch: new MmdbTypedNumber('uint64', epoch),
    database_type: options.databaseType,
    description: { ...(options.description ?? { en: `${options.databaseType} (generated by form-anycast)` }) },
    ip_version: new MmdbTypedNumber('uint16', ipVersion),
    languages: [...(options.languages ?? ['en'])],
    node_count: new MmdbTypedNumber('uint32', nodeCount),
    // Last on purpose: a file cut short inside the metadata then fails to decode instead of
    // silently losing the tail of a string.
    record_size: new MmdbTypedNumber('uint16', recordSize)
  }
}

/** Build a complete .mmdb file in memory. Throws MmdbWriteError naming the offending field. */
export function writeMmdb (options: MmdbWriteOptions): Buffer {
  const ipVersion = options.ipVersion ?? 6
  if (ipVersion !== 4 && ipVersion !== 6) throw new MmdbWriteError('ipVersion', `${String(ipVersion)} is not 4 or 6`)
  if (typeof options.databaseType !== 'string' || options.databaseType === '') throw new MmdbWriteError('databaseType', 'must be a non-empty string')
  const aliasIpv4Mapped = ipVersion === 6 && (options.aliasIpv4Mapped ?? true)
  const data = buildDataSection(options.records)
  const root = buildTree(options.records, data.leaves, ipVersion, aliasIpv4Mapped)
  const { tree, nodeCount, recordSize } = encodeTree(root, data.bytes.length, options.recordSize)
  const metadata = encodeMmdbValue(metadataValue(options, ipVersion, nodeCount, recordSize), 'metadata')
  if (METADATA_MARKER.length + metadata.length > MAX_METADATA_BYTES) throw new MmdbWriteError('metadata', `larger than ${MAX_METADATA_BYTES} bytes`)
  return Buffer.concat([tree, Buffer.alloc(DATA_SECTION_SEPARATOR_BYTES), data.bytes, METADATA_MARKER, metadata])
}
