// The replicated state's operations and anti-entropy frames on the wire and on disk. Binary,
// big-endian, bounded, in the style of announcement-codec:
//
//   op body:      u8 collection (1 nodes, 2 services, 3 leases, 4 settings) · u16 key length · key ·
//                 f64 hlc.wallMs · u32 hlc.counter · u8 node length · hlc.node (= author) · u8 flags ·
//                 [u16 value length · value as canonical JSON]   (flags: bit 0 tombstone; no value then)
//   signed op:    op body · u8 signature length · signature
//   frame:        u8 version (1) · u8 type · payload
//     summary (1):  u8 collection count · per collection, codes strictly increasing: u8 code ·
//                   32-byte digest · u8 buckets flag (0 | 1) · [32-byte bitmap of non-empty buckets
//                   (bucket i is bit 7 - i % 8 of byte i / 8) · 16-byte digest per set bit]
//     request (2):  u8 collection count · per collection, codes strictly increasing: u8 code ·
//                   u16 bucket count (1..256) · u8 bucket × count, strictly increasing
//     ops (3):      u16 op count · signed op × count
//
// The author is written once: an op whose author is not its hlc.node is invalid anyway. Values are
// JSON objects in the canonical form of RFC 8785 (JCS): no whitespace, object keys sorted by UTF-16
// code units, numbers and strings as ECMAScript's JSON.stringify writes them. Every encoding is
// canonical — decoding rejects anything encode would not produce (unknown flag bits, trailing
// bytes, non-canonical JSON, unsorted lists) — so equal ops have equal bytes, which is what the
// signature and the state digest cover. The signature covers STATE_SIGNING_DOMAIN then the op body
// (domain separation: it can never pass as a signature over an announcement).
//
// Errors: an invalid op raises StateOpError, a bad frame StateFrameError; both name the field and
// the reason. Decoding checks every length against its bound before it allocates.
import { ByteReader, ByteWriter, utf8Length } from './bytes.ts'
import type { BucketRequest, CollectionSummary, JsonObject, JsonValue, SignedStateOp, StateOp, StateSummary } from './state-crdt.ts'

export const STATE_COLLECTIONS = ['nodes', 'services', 'leases', 'settings'] as const
export type Collection = typeof STATE_COLLECTIONS[number]

export const STATE_SIGNING_DOMAIN = 'form-anycast/state-op/v1\n'
export const STATE_FRAME_VERSION = 1
export const MAX_KEY_BYTES = 256
export const MAX_VALUE_BYTES = 4096
/** Nesting depth of a value (the object itself is depth 1). */
export const MAX_VALUE_DEPTH = 16
export const MAX_NODE_ID_LENGTH = 128
export const MAX_SIGNATURE_BYTES = 128
export const MAX_HLC_COUNTER = 0xffff_ffff
/** Fits both a session frame and a gossip message (64 KiB) with room for their headers. */
export const MAX_STATE_FRAME_BYTES = 60 * 1024
export const MAX_OPS_PER_FRAME = 1024
export const BUCKET_COUNT = 256
export const BUCKET_DIGEST_BYTES = 16
export const DIGEST_BYTES = 32
/** Largest signed op: every variable field at its bound. */
export const MAX_SIGNED_OP_BYTES = 1 + 2 + MAX_KEY_BYTES + 8 + 4 + 1 + MAX_NODE_ID_LENGTH + 1 + 2 + MAX_VALUE_BYTES + 1 + MAX_SIGNATURE_BYTES

/** An operation that is malformed or out of bounds; `field` is a path such as `op.hlc.counter`. */
export class StateOpError extends Error {
  override name = 'StateOpError'
  constructor (readonly field: string, readonly reason: string) {
    super(`state op: ${field}: ${reason}`)
  }
}

/** An anti-entropy or op-batch frame that is malformed or out of bounds. */
export class StateFrameError extends Error {
  override name = 'StateFrameError'
  constructor (readonly field: string, readonly reason: string) {
    super(`state frame: ${field}: ${reason}`)
  }
}

const FLAG_TOMBSTONE = 1
const FRAME_SUMMARY = 1
const FRAME_REQUEST = 2
const FRAME_OPS = 3
const BITMAP_BYTES = BUCKET_COUNT / 8
/** Node ids are peer ids (base58btc) or simulator names: visible ASCII, no spaces. */
const NODE_ID = /^[\x21-\x7e]{1,128}$/
/** Keys must survive UTF-8 both ways and print: no control characters, no unpaired surrogates. */
const UNPRINTABLE = /[\p{Cc}\p{Cs}]/u
const COLLECTION_CODES = new Map<string, number>(STATE_COLLECTIONS.map((name, index) => [name, index + 1]))

const utf8Encoder = new TextEncoder()
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

export type StateFrame =
  | { type: 'summary', summary: StateSummary }
  | { type: 'request', requests: BucketRequest[] }
  | { type: 'ops', ops: SignedStateOp[] }

// --- validation -------------------------------------------------------------------------------

function isRecord (value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

export function isCollection (value: unknown): value is Collection {
  return typeof value === 'string' && COLLECTION_CODES.has(value)
}

function checkNodeId (value: unknown, field: string): asserts value is string {
  if (typeof value !== 'string' || !NODE_ID.test(value)) {
    throw new StateOpError(field, `must be 1..${MAX_NODE_ID_LENGTH} visible ASCII characters`)
  }
}

/** Throws StateOpError unless `key` is a valid register key. */
export function checkStateKey (value: unknown, field = 'key'): asserts value is string {
  if (typeof value !== 'string' || value.length === 0) throw new StateOpError(field, 'must be a non-empty string')
  if (UNPRINTABLE.test(value)) throw new StateOpError(field, 'contains a control character or an unpaired surrogate')
  // A UTF-16 unit is at most 3 UTF-8 bytes: skip the exact count for short keys.
  if (value.length * 3 > MAX_KEY_BYTES && utf8Length(value) > MAX_KEY_BYTES) throw new StateOpError(field, `longer than ${MAX_KEY_BYTES} bytes`)
}

/** Throws StateOpError unless `hlc` is a well-formed hybrid logical clock value. */
export function checkHlc (value: unknown, field = 'hlc'): void {
  if (!isRecord(value)) throw new StateOpError(field, 'must be an object')
  // -0 is refused: it would be a second encoding of 0.
  if (!Number.isSafeInteger(value.wallMs) || (value.wallMs as number) < 0 || Object.is(value.wallMs, -0)) {
    throw new StateOpError(`${field}.wallMs`, 'must be a non-negative safe integer')
  }
  const counter = value.counter
  if (typeof counter !== 'number' || !Number.isInteger(counter) || counter < 0 || counter > MAX_HLC_COUNTER) {
    throw new StateOpError(`${field}.counter`, `must be an integer in [0, ${MAX_HLC_COUNTER}]`)
  }
  checkNodeId(value.node, `${field}.node`)
}

/**
 * Throws StateOpError (field prefixed by `path`) unless `op` is a well-formed operation within
 * bounds. Accepts any shape, so it guards values that did not come through the decoder.
 */
export function validateStateOp (op: StateOp, path = ''): void {
  checkOp(op, path)
}

/** validateStateOp, returning the value's canonical JSON (undefined for a tombstone). */
function checkOp (op: StateOp, path: string): string | undefined {
  const value: unknown = op
  if (!isRecord(value)) throw new StateOpError(path === '' ? 'op' : path.slice(0, -1), 'must be an object')
  if (!isCollection(value.collection)) throw new StateOpError(`${path}collection`, `must be one of ${STATE_COLLECTIONS.join(', ')}`)
  checkStateKey(value.key, `${path}key`)
  checkHlc(value.hlc, `${path}hlc`)
  checkNodeId(value.author, `${path}author`)
  if (value.author !== (value.hlc as Record<string, unknown>).node) throw new StateOpError(`${path}author`, 'must equal hlc.node')
  if (typeof value.tombstone !== 'boolean') throw new StateOpError(`${path}tombstone`, 'must be a boolean')
  if (value.tombstone) {
    if (value.value !== undefined) throw new StateOpError(`${path}value`, 'a tombstone carries no value')
    return undefined
  }
  if (!isRecord(value.value)) throw new StateOpError(`${path}value`, 'must be a JSON object')
  return canonicalJson(value.value as JsonObject, `${path}value`)
}

/** Throws StateOpError unless `signed` is a well-formed signed op (the signature is not checked). */
export function validateSignedStateOp (signed: SignedStateOp, path = ''): void {
  const value: unknown = signed
  if (!isRecord(value)) throw new StateOpError(path === '' ? 'signed' : path.slice(0, -1), 'must be an object')
  validateStateOp(value.op as StateOp, `${path}op.`)
  const signature = value.signature
  if (!(signature instanceof Uint8Array) || signature.byteLength === 0 || signature.byteLength > MAX_SIGNATURE_BYTES) {
    throw new StateOpError(`${path}signature`, `must be 1..${MAX_SIGNATURE_BYTES} bytes`)
  }
}

// --- canonical JSON (RFC 8785) ----------------------------------------------------------------

interface JsonBudget { chars: number }

function writeJson (value: unknown, field: string, depth: number, parts: string[], budget: JsonBudget): void {
  if (depth > MAX_VALUE_DEPTH) throw new StateOpError(field, `nested deeper than ${MAX_VALUE_DEPTH}`)
  // UTF-8 never has fewer bytes than UTF-16 units, so counting units bounds the work on huge values.
  if (budget.chars > MAX_VALUE_BYTES) throw new StateOpError(field, `longer than ${MAX_VALUE_BYTES} bytes`)
  let text: string
  if (value === null || typeof value === 'boolean') {
    text = String(value)
  } else if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new StateOpError(field, 'not a finite number')
    text = JSON.stringify(value)
  } else if (typeof value === 'string') {
    text = JSON.stringify(value)
  } else if (Array.isArray(value)) {
    parts.push('[')
    budget.chars += 1
    for (let index = 0; index < value.length; index++) {
      if (index > 0) { parts.push(','); budget.chars += 1 }
      if (!(index in value)) throw new StateOpError(`${field}[${index}]`, 'a hole in an array')
      writeJson(value[index], `${field}[${index}]`, depth + 1, parts, budget)
      if (budget.chars > MAX_VALUE_BYTES) throw new StateOpError(field, `longer than ${MAX_VALUE_BYTES} bytes`)
    }
    parts.push(']')
    budget.chars += 1
    return
  } else if (typeof value === 'object') {
    const prototype: unknown = Object.getPrototypeOf(value)
    if (prototype !== Object.prototype && prototype !== null) throw new StateOpError(field, 'must be a plain object')
    const record = value as Record<string, unknown>
    parts.push('{')
    budget.chars += 1
    Object.keys(record).sort().forEach((key, index) => {
      const name = JSON.stringify(key)
      parts.push(index > 0 ? `,${name}:` : `${name}:`)
      budget.chars += name.length + 2
      writeJson(record[key], `${field}.${key}`, depth + 1, parts, budget)
      if (budget.chars > MAX_VALUE_BYTES) throw new StateOpError(field, `longer than ${MAX_VALUE_BYTES} bytes`)
    })
    parts.push('}')
    budget.chars += 1
    return
  } else {
    throw new StateOpError(field, `${typeof value} is not JSON`)
  }
  parts.push(text)
  budget.chars += text.length
}

/**
 * The canonical JSON text of a value (RFC 8785). Throws StateOpError for anything that is not
 * JSON (undefined, functions, class instances, non-finite numbers, array holes), for nesting past
 * MAX_VALUE_DEPTH and for more than MAX_VALUE_BYTES of UTF-8.
 */
export function canonicalJson (value: JsonValue, field = 'value'): string {
  const parts: string[] = []
  writeJson(value, field, 1, parts, { chars: 0 })
  const text = parts.join('')
  if (utf8Length(text) > MAX_VALUE_BYTES) throw new StateOpError(field, `longer than ${MAX_VALUE_BYTES} bytes`)
  return text
}

// --- ops --------------------------------------------------------------------------------------

function bodyParts (op: StateOp, valueJson = op.tombstone ? undefined : canonicalJson(op.value as JsonObject)): { key: Uint8Array, node: Uint8Array, value: Uint8Array | undefined, length: number } {
  const key = utf8Encoder.encode(op.key)
  const node = utf8Encoder.encode(op.hlc.node)
  const value = valueJson === undefined ? undefined : utf8Encoder.encode(valueJson)
  return { key, node, value, length: 1 + 2 + key.byteLength + 8 + 4 + 1 + node.byteLength + 1 + (value === undefined ? 0 : 2 + value.byteLength) }
}

function writeBody (writer: ByteWriter, op: StateOp, parts: ReturnType<typeof bodyParts>): void {
  writer.u8(COLLECTION_CODES.get(op.collection) as number)
  writer.u16(parts.key.byteLength)
  writer.raw(parts.key)
  writer.f64(op.hlc.wallMs)
  writer.u32(op.hlc.counter)
  writer.bytes8(parts.node)
  writer.u8(op.tombstone ? FLAG_TOMBSTONE : 0)
  if (parts.value === undefined) return
  writer.u16(parts.value.byteLength)
  writer.raw(parts.value)
}

/** The canonical bytes of an op (its identity: the state digest hashes them). Validates first. */
export function encodeStateOp (op: StateOp): Uint8Array {
  return encodeStateOpWithValue(op).body
}

/**
 * encodeStateOp, also returning the value's canonical JSON (undefined for a tombstone), so the
 * StateStore validates and serialises each op once.
 */
export function encodeStateOpWithValue (op: StateOp): { body: Uint8Array, valueJson: string | undefined } {
  const valueJson = checkOp(op, '')
  const parts = bodyParts(op, valueJson)
  const writer = new ByteWriter(parts.length)
  writeBody(writer, op, parts)
  return { body: writer.bytes, valueJson }
}

/** What the author signs: STATE_SIGNING_DOMAIN then the canonical op bytes. */
export function stateOpSigningBytes (op: StateOp): Uint8Array {
  return signingBytesOfBody(encodeStateOp(op))
}

export function signingBytesOfBody (body: Uint8Array): Uint8Array {
  const domain = utf8Encoder.encode(STATE_SIGNING_DOMAIN)
  const bytes = new Uint8Array(domain.byteLength + body.byteLength)
  bytes.set(domain)
  bytes.set(body, domain.byteLength)
  return bytes
}

function signedOpLength (signed: SignedStateOp): number {
  return bodyParts(signed.op).length + 1 + signed.signature.byteLength
}

function writeSignedOp (writer: ByteWriter, signed: SignedStateOp): void {
  writeBody(writer, signed.op, bodyParts(signed.op))
  writer.bytes8(signed.signature)
}

export function encodeSignedOp (signed: SignedStateOp): Uint8Array {
  validateSignedStateOp(signed)
  const writer = new ByteWriter(signedOpLength(signed))
  writeSignedOp(writer, signed)
  return writer.bytes
}

function readValue (reader: ByteReader, field: string): JsonObject {
  const text = reader.string16(field, MAX_VALUE_BYTES)
  let value: unknown
  try { value = JSON.parse(text) } catch { throw new StateOpError(field, 'not JSON') }
  if (!isRecord(value)) throw new StateOpError(field, 'must be a JSON object')
  if (canonicalJson(value as JsonObject, field) !== text) throw new StateOpError(field, 'not canonical JSON (RFC 8785)')
  return value as JsonObject
}

function readOp (reader: ByteReader, path: string): StateOp {
  const code = reader.u8(`${path}collection`)
  const collection = STATE_COLLECTIONS[code - 1]
  if (collection === undefined) throw new StateOpError(`${path}collection`, `unknown code ${code}`)
  const key = reader.string16(`${path}key`, MAX_KEY_BYTES)
  const wallMs = reader.f64(`${path}hlc.wallMs`)
  const counter = reader.u32(`${path}hlc.counter`)
  const node = reader.string8(`${path}hlc.node`)
  const flags = reader.u8(`${path}flags`)
  if ((flags & ~FLAG_TOMBSTONE) !== 0) throw new StateOpError(`${path}flags`, `unknown bits 0x${flags.toString(16)}`)
  const tombstone = (flags & FLAG_TOMBSTONE) !== 0
  const op: StateOp = { collection, key, hlc: { wallMs, counter, node }, author: node, tombstone }
  if (!tombstone) op.value = readValue(reader, `${path}value`)
  validateStateOp(op, path)
  return op
}

function readSignedOp (reader: ByteReader, path: string): SignedStateOp {
  const op = readOp(reader, `${path}op.`)
  const signature = reader.bytes8(`${path}signature`)
  if (signature.byteLength === 0) throw new StateOpError(`${path}signature`, 'empty')
  return { op, signature }
}

/** Decode and validate one signed op; throws StateOpError naming the first bad field. */
export function decodeSignedOp (bytes: Uint8Array): SignedStateOp {
  if (!(bytes instanceof Uint8Array)) throw new StateOpError('signed', 'must be bytes')
  if (bytes.byteLength > MAX_SIGNED_OP_BYTES) throw new StateOpError('signed', `larger than ${MAX_SIGNED_OP_BYTES} bytes`)
  const reader = new ByteReader(bytes, (field, reason) => new StateOpError(field, reason))
  const signed = readSignedOp(reader, '')
  reader.end('signed')
  return signed
}

// --- frames -----------------------------------------------------------------------------------

function checkBucket (value: unknown, field: string): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value >= BUCKET_COUNT) {
    throw new StateFrameError(field, `must be an integer in [0, ${BUCKET_COUNT - 1}]`)
  }
}

function checkIncreasingCollections (items: Array<{ collection: unknown }>, field: string): void {
  let previous = 0
  items.forEach((item, index) => {
    if (!isRecord(item)) throw new StateFrameError(`${field}[${index}]`, 'must be an object')
    const code = COLLECTION_CODES.get(item.collection as string)
    if (code === undefined) throw new StateFrameError(`${field}[${index}].collection`, `must be one of ${STATE_COLLECTIONS.join(', ')}`)
    if (code <= previous) throw new StateFrameError(`${field}[${index}].collection`, 'collections must be distinct, in the order of STATE_COLLECTIONS')
    previous = code
  })
}

function checkDigest (value: unknown, bytes: number, field: string): void {
  if (!(value instanceof Uint8Array) || value.byteLength !== bytes) throw new StateFrameError(field, `must be ${bytes} bytes`)
}

function validateSummary (summary: StateSummary): void {
  const value: unknown = summary
  if (!isRecord(value) || !Array.isArray(value.collections)) throw new StateFrameError('summary.collections', 'must be an array')
  const collections = value.collections as CollectionSummary[]
  checkIncreasingCollections(collections, 'summary.collections')
  collections.forEach((entry, index) => {
    const field = `summary.collections[${index}]`
    checkDigest(entry.digest, DIGEST_BYTES, `${field}.digest`)
    if (entry.buckets === undefined) return
    if (!Array.isArray(entry.buckets) || entry.buckets.length !== BUCKET_COUNT) throw new StateFrameError(`${field}.buckets`, `must be ${BUCKET_COUNT} digests`)
    entry.buckets.forEach((digest, bucket) => checkDigest(digest, BUCKET_DIGEST_BYTES, `${field}.buckets[${bucket}]`))
  })
}

function validateRequests (requests: BucketRequest[]): void {
  if (!Array.isArray(requests)) throw new StateFrameError('requests', 'must be an array')
  checkIncreasingCollections(requests, 'requests')
  requests.forEach((request, index) => {
    const field = `requests[${index}].buckets`
    if (!Array.isArray(request.buckets) || request.buckets.length === 0 || request.buckets.length > BUCKET_COUNT) {
      throw new StateFrameError(field, `must list 1..${BUCKET_COUNT} buckets`)
    }
    let previous = -1
    request.buckets.forEach((bucket, position) => {
      checkBucket(bucket, `${field}[${position}]`)
      if (bucket <= previous) throw new StateFrameError(`${field}[${position}]`, 'buckets must be distinct and increasing')
      previous = bucket
    })
  })
}

function isZero (digest: Uint8Array): boolean {
  for (const byte of digest) if (byte !== 0) return false
  return true
}

function frameLength (frame: StateFrame): number {
  switch (frame.type) {
    case 'summary':
      return 2 + 1 + frame.summary.collections.reduce((sum, entry) => sum + 1 + DIGEST_BYTES + 1 +
        (entry.buckets === undefined ? 0 : BITMAP_BYTES + entry.buckets.filter((digest) => !isZero(digest)).length * BUCKET_DIGEST_BYTES), 0)
    case 'request':
      return 2 + 1 + frame.requests.reduce((sum, request) => sum + 1 + 2 + request.buckets.length, 0)
    case 'ops':
      return 2 + 2 + frame.ops.reduce((sum, signed) => sum + signedOpLength(signed), 0)
  }
}

function validateFrame (frame: StateFrame): void {
  const value: unknown = frame
  if (!isRecord(value)) throw new StateFrameError('frame', 'must be an object')
  if (frame.type === 'summary') {
    validateSummary(frame.summary)
  } else if (frame.type === 'request') {
    validateRequests(frame.requests)
  } else if (frame.type === 'ops') {
    if (!Array.isArray(frame.ops)) throw new StateFrameError('ops', 'must be an array')
    if (frame.ops.length > MAX_OPS_PER_FRAME) throw new StateFrameError('ops', `more than ${MAX_OPS_PER_FRAME}`)
    frame.ops.forEach((signed, index) => {
      try {
        validateSignedStateOp(signed, `ops[${index}].`)
      } catch (error) {
        if (error instanceof StateOpError) throw new StateFrameError(error.field, error.reason)
        throw error
      }
    })
  } else {
    throw new StateFrameError('frame.type', 'must be "summary", "request" or "ops"')
  }
}

/** Validates the frame and returns its encoded size; throws StateFrameError when invalid. */
export function stateFrameEncodingLength (frame: StateFrame): number {
  validateFrame(frame)
  return frameLength(frame)
}

function writeSummary (writer: ByteWriter, summary: StateSummary): void {
  writer.u8(summary.collections.length)
  for (const entry of summary.collections) {
    writer.u8(COLLECTION_CODES.get(entry.collection) as number)
    writer.raw(entry.digest)
    writer.u8(entry.buckets === undefined ? 0 : 1)
    if (entry.buckets === undefined) continue
    const bitmap = new Uint8Array(BITMAP_BYTES)
    entry.buckets.forEach((digest, bucket) => { if (!isZero(digest)) bitmap[bucket >> 3]! |= 0x80 >> (bucket & 7) })
    writer.raw(bitmap)
    for (const digest of entry.buckets) if (!isZero(digest)) writer.raw(digest)
  }
}

export function encodeStateFrame (frame: StateFrame): Uint8Array {
  const length = stateFrameEncodingLength(frame)
  if (length > MAX_STATE_FRAME_BYTES) throw new StateFrameError('frame', `${length} bytes is larger than ${MAX_STATE_FRAME_BYTES} (split ops with packStateOps)`)
  const writer = new ByteWriter(length)
  writer.u8(STATE_FRAME_VERSION)
  if (frame.type === 'summary') {
    writer.u8(FRAME_SUMMARY)
    writeSummary(writer, frame.summary)
  } else if (frame.type === 'request') {
    writer.u8(FRAME_REQUEST)
    writer.u8(frame.requests.length)
    for (const request of frame.requests) {
      writer.u8(COLLECTION_CODES.get(request.collection) as number)
      writer.u16(request.buckets.length)
      for (const bucket of request.buckets) writer.u8(bucket)
    }
  } else {
    writer.u8(FRAME_OPS)
    writer.u16(frame.ops.length)
    for (const signed of frame.ops) writeSignedOp(writer, signed)
  }
  return writer.bytes
}

/**
 * Split ops into as few `ops` frames as fit MAX_OPS_PER_FRAME and MAX_STATE_FRAME_BYTES, in order
 * (an empty list gives no frames). Throws StateFrameError for an invalid op.
 */
export function packStateOps (ops: readonly SignedStateOp[]): Array<Extract<StateFrame, { type: 'ops' }>> {
  const frames: Array<Extract<StateFrame, { type: 'ops' }>> = []
  let current: SignedStateOp[] = []
  let size = 4
  ops.forEach((signed, index) => {
    try {
      validateSignedStateOp(signed, `ops[${index}].`)
    } catch (error) {
      if (error instanceof StateOpError) throw new StateFrameError(error.field, error.reason)
      throw error
    }
    const added = signedOpLength(signed)
    if (current.length === MAX_OPS_PER_FRAME || size + added > MAX_STATE_FRAME_BYTES) {
      frames.push({ type: 'ops', ops: current })
      current = []
      size = 4
    }
    current.push(signed)
    size += added
  })
  if (current.length > 0) frames.push({ type: 'ops', ops: current })
  return frames
}

function readCollectionCode (reader: ByteReader, field: string, previous: number): number {
  const code = reader.u8(field)
  if (STATE_COLLECTIONS[code - 1] === undefined) throw new StateFrameError(field, `unknown collection code ${code}`)
  if (code <= previous) throw new StateFrameError(field, 'collections must be distinct and increasing')
  return code
}

function readSummary (reader: ByteReader): StateSummary {
  const count = reader.u8('summary.collections')
  if (count > STATE_COLLECTIONS.length) throw new StateFrameError('summary.collections', `more than ${STATE_COLLECTIONS.length}`)
  const collections: CollectionSummary[] = []
  let previous = 0
  for (let index = 0; index < count; index++) {
    const field = `summary.collections[${index}]`
    previous = readCollectionCode(reader, `${field}.collection`, previous)
    const entry: CollectionSummary = { collection: STATE_COLLECTIONS[previous - 1]!, digest: reader.raw(DIGEST_BYTES, `${field}.digest`) }
    const flag = reader.u8(`${field}.buckets`)
    if (flag > 1) throw new StateFrameError(`${field}.buckets`, `flag must be 0 or 1, not ${flag}`)
    if (flag === 1) {
      const bitmap = reader.raw(BITMAP_BYTES, `${field}.bitmap`)
      const buckets: Uint8Array[] = []
      for (let bucket = 0; bucket < BUCKET_COUNT; bucket++) {
        const present = (bitmap[bucket >> 3]! & (0x80 >> (bucket & 7))) !== 0
        const digest = present ? reader.raw(BUCKET_DIGEST_BYTES, `${field}.buckets[${bucket}]`) : new Uint8Array(BUCKET_DIGEST_BYTES)
        if (present && isZero(digest)) throw new StateFrameError(`${field}.buckets[${bucket}]`, 'an all-zero digest marks an empty bucket; its bit must be clear')
        buckets.push(digest)
      }
      entry.buckets = buckets
    }
    collections.push(entry)
  }
  return { collections }
}

function readRequests (reader: ByteReader): BucketRequest[] {
  const count = reader.u8('requests')
  if (count > STATE_COLLECTIONS.length) throw new StateFrameError('requests', `more than ${STATE_COLLECTIONS.length}`)
  const requests: BucketRequest[] = []
  let previous = 0
  for (let index = 0; index < count; index++) {
    previous = readCollectionCode(reader, `requests[${index}].collection`, previous)
    const field = `requests[${index}].buckets`
    const bucketCount = reader.u16(field)
    if (bucketCount === 0 || bucketCount > BUCKET_COUNT) throw new StateFrameError(field, `must list 1..${BUCKET_COUNT} buckets`)
    const buckets: number[] = []
    for (let position = 0; position < bucketCount; position++) {
      const bucket = reader.u8(`${field}[${position}]`)
      if (position > 0 && bucket <= buckets[position - 1]!) throw new StateFrameError(`${field}[${position}]`, 'buckets must be distinct and increasing')
      buckets.push(bucket)
    }
    requests.push({ collection: STATE_COLLECTIONS[previous - 1]!, buckets })
  }
  return requests
}

function readOps (reader: ByteReader): SignedStateOp[] {
  const count = reader.u16('ops')
  if (count > MAX_OPS_PER_FRAME) throw new StateFrameError('ops', `more than ${MAX_OPS_PER_FRAME}`)
  const ops: SignedStateOp[] = []
  for (let index = 0; index < count; index++) {
    try {
      ops.push(readSignedOp(reader, `ops[${index}].`))
    } catch (error) {
      if (error instanceof StateOpError) throw new StateFrameError(error.field, error.reason)
      throw error
    }
  }
  return ops
}

/** Decode and validate one frame; throws StateFrameError naming the first bad field. */
export function decodeStateFrame (bytes: Uint8Array): StateFrame {
  if (!(bytes instanceof Uint8Array)) throw new StateFrameError('frame', 'must be bytes')
  if (bytes.byteLength > MAX_STATE_FRAME_BYTES) throw new StateFrameError('frame', `larger than ${MAX_STATE_FRAME_BYTES} bytes`)
  const reader = new ByteReader(bytes, (field, reason) => new StateFrameError(field, reason))
  const version = reader.u8('frame.version')
  if (version !== STATE_FRAME_VERSION) throw new StateFrameError('frame.version', `unsupported version ${version}`)
  const type = reader.u8('frame.type')
  let frame: StateFrame
  if (type === FRAME_SUMMARY) frame = { type: 'summary', summary: readSummary(reader) }
  else if (type === FRAME_REQUEST) frame = { type: 'request', requests: readRequests(reader) }
  else if (type === FRAME_OPS) frame = { type: 'ops', ops: readOps(reader) }
  else throw new StateFrameError('frame.type', `unknown type ${type}`)
  reader.end('frame')
  return frame
}
