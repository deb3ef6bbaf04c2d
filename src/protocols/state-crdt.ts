// The replicated state's merge logic: collections of last-writer-wins registers ordered by hybrid
// logical clocks, with tombstones, signed operations, and the digests anti-entropy compares.
// Like form-state's signed CRDT maps; pure and in memory (persistence: src/runtime/state-persistence.ts).
//
// Merge. Per (collection, key) the register keeps the op with the greatest hlc (wallMs, counter,
// node); two different ops with equal hlcs can only come from one author signing twice at one clock
// value, and the greater sha256 of the canonical op bytes wins, so the outcome never depends on
// arrival order. That makes apply a join on a total order: commutative, associative, idempotent
// (Shapiro et al., "Conflict-free Replicated Data Types", 2011, LWW-register). A tombstone is an op
// like any other, kept so that a late older write cannot resurrect its key; pruneTombstones drops
// tombstones older than a horizon, which must exceed the longest time an op can stay in flight (a
// partition), or an older write still in flight could resurrect a pruned key.
//
// Digests form a hash tree: register hash = sha256(op bytes); bucket digest = the first 16 bytes
// of sha256 over its registers' hashes in key order (all zero when empty); collection digest =
// sha256 over its 256 bucket digests; store digest = sha256 over the four collection digests in
// STATE_COLLECTIONS order. A key's bucket is the first byte of sha256(key). Applying an op marks
// one bucket dirty; digests are recomputed on demand, only for dirty buckets, so a node that
// applies a thousand ops between two anti-entropy rounds hashes each bucket once.
//
// Bad input: apply throws StateOpError (and nothing else) for an op that is malformed, out of
// bounds, too far ahead of the local clock, or not signed by its author; it changes nothing then.
// Callers on the network path catch it, count it and drop the op. Stale and duplicate ops return
// 'stale' / 'duplicate' without checking their signature: they change nothing, and a signature
// check costs ~65 µs.
import { createHash } from 'node:crypto'
import {
  BUCKET_COUNT, BUCKET_DIGEST_BYTES, MAX_HLC_COUNTER, MAX_SIGNATURE_BYTES, STATE_COLLECTIONS, StateOpError,
  checkHlc, encodeStateOpWithValue, isCollection, signingBytesOfBody, stateOpSigningBytes, validateSignedStateOp,
  type Collection
} from './state-codec.ts'
import type { Signer, Unsubscribe, Verifier } from '../runtime/ports.ts'

export { STATE_COLLECTIONS, StateOpError, validateStateOp, validateSignedStateOp, type Collection } from './state-codec.ts'

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject
export interface JsonObject { [key: string]: JsonValue }

/** Hybrid logical clock value (Kulkarni et al., "Logical Physical Clocks", 2014). */
export interface Hlc {
  wallMs: number
  counter: number
  node: string
}

export interface StateOp {
  collection: Collection
  key: string
  hlc: Hlc
  /** Must equal hlc.node: the author's clock orders its own writes. */
  author: string
  /** A JSON object for a write; absent for a tombstone. */
  value?: JsonObject
  tombstone: boolean
}

export interface SignedStateOp {
  op: StateOp
  /** The author's signature over stateOpSigningBytes(op). */
  signature: Uint8Array
}

export type ApplyResult = 'applied' | 'stale' | 'duplicate'

export interface StateChange {
  /** The op now held by the register (frozen). */
  signed: SignedStateOp
  /** The op it replaced, if the register existed. */
  previous?: SignedStateOp
}

export interface CollectionSummary {
  collection: Collection
  /** 32 bytes. */
  digest: Uint8Array
  /** BUCKET_COUNT digests of BUCKET_DIGEST_BYTES each (all zero: empty bucket), when asked for. */
  buckets?: Uint8Array[]
}

export interface StateSummary { collections: CollectionSummary[] }

export interface BucketRequest {
  collection: Collection
  /** Distinct, increasing, each in [0, BUCKET_COUNT). */
  buckets: number[]
}

export const DEFAULT_MAX_DRIFT_MS = 60_000

// --- hybrid logical clock ---------------------------------------------------------------------

/** A remote clock too far ahead of ours (a broken clock or a forged op). */
export class HlcDriftError extends Error {
  override name = 'HlcDriftError'
  constructor (readonly remote: Hlc, readonly aheadMs: number, readonly maxDriftMs: number) {
    super(`hlc: remote clock of "${remote.node}" is ${aheadMs} ms ahead of ours (bound ${maxDriftMs} ms)`)
  }
}

/** Orders by wallMs, then counter, then node id (visible ASCII, so code units order as bytes). */
export function compareHlc (a: Hlc, b: Hlc): number {
  if (a.wallMs !== b.wallMs) return a.wallMs < b.wallMs ? -1 : 1
  if (a.counter !== b.counter) return a.counter < b.counter ? -1 : 1
  return a.node < b.node ? -1 : a.node > b.node ? 1 : 0
}

export class HlcClock {
  readonly maxDriftMs: number
  private wallMs = 0
  private counter = 0

  constructor (readonly nodeId: string, private readonly now: () => number, options: { maxDriftMs?: number } = {}) {
    checkHlc({ wallMs: 0, counter: 0, node: nodeId }, 'nodeId')
    this.maxDriftMs = options.maxDriftMs ?? DEFAULT_MAX_DRIFT_MS
    if (!(this.maxDriftMs > 0)) throw new RangeError(`hlc: maxDriftMs must be positive, got ${this.maxDriftMs}`)
  }

  /** The last value issued or observed. */
  current (): Hlc { return { wallMs: this.wallMs, counter: this.counter, node: this.nodeId } }

  /** A fresh value for a local event: greater than every value issued or observed so far. */
  tick (): Hlc {
    const physical = this.physicalMs()
    if (physical > this.wallMs) this.set(physical, 0)
    else this.set(this.wallMs, this.counter + 1)
    return this.current()
  }

  /**
   * Merge a received value, so local events afterwards order after it. Throws HlcDriftError (and
   * changes nothing) when it is more than maxDriftMs ahead of the physical clock, unless
   * `allowDrift` (for ops reloaded from our own disk) says to take it anyway.
   */
  observe (remote: Hlc, options: { allowDrift?: boolean } = {}): Hlc {
    checkHlc(remote, 'remote')
    const physical = this.physicalMs()
    const aheadMs = remote.wallMs - physical
    if (aheadMs > this.maxDriftMs && options.allowDrift !== true) throw new HlcDriftError(remote, aheadMs, this.maxDriftMs)
    const wall = Math.max(this.wallMs, remote.wallMs, physical)
    if (wall === this.wallMs && wall === remote.wallMs) this.set(wall, Math.max(this.counter, remote.counter) + 1)
    else if (wall === this.wallMs) this.set(wall, this.counter + 1)
    else if (wall === remote.wallMs) this.set(wall, remote.counter + 1)
    else this.set(wall, 0)
    return this.current()
  }

  private physicalMs (): number {
    const now = Math.floor(this.now())
    if (!Number.isSafeInteger(now) || now < 0) throw new RangeError(`hlc: clock returned ${now}`)
    return now
  }

  /** A counter past its bound carries into the wall part: still monotonic, still above all seen. */
  private set (wallMs: number, counter: number): void {
    if (counter > MAX_HLC_COUNTER) { this.wallMs = wallMs + 1; this.counter = 0 } else { this.wallMs = wallMs; this.counter = counter }
  }
}

// --- ops and signatures -----------------------------------------------------------------------

/** A write of `value` at the clock's next tick. */
export function putOp (clock: HlcClock, collection: Collection, key: string, value: JsonObject): StateOp {
  return { collection, key, hlc: clock.tick(), author: clock.nodeId, value, tombstone: false }
}

/** A delete (tombstone) at the clock's next tick. */
export function deleteOp (clock: HlcClock, collection: Collection, key: string): StateOp {
  return { collection, key, hlc: clock.tick(), author: clock.nodeId, tombstone: true }
}

/** Sign this node's own op. Throws StateOpError if it is invalid or not authored by the signer. */
export function signStateOp (op: StateOp, signer: Signer): SignedStateOp {
  const bytes = stateOpSigningBytes(op)
  if (op.author !== signer.nodeId) throw new StateOpError('author', `"${op.author}" is not the signer "${signer.nodeId}"`)
  const signature = signer.sign(bytes)
  if (signature.byteLength === 0 || signature.byteLength > MAX_SIGNATURE_BYTES) {
    throw new StateOpError('signature', `signer produced ${signature.byteLength} bytes, not 1..${MAX_SIGNATURE_BYTES}`)
  }
  return { op, signature }
}

/** True when the op is well formed and its signature verifies against its author's key. */
export function verifyStateOp (signed: SignedStateOp, verifier: Verifier): boolean {
  let bytes: Uint8Array
  try {
    validateSignedStateOp(signed)
    bytes = stateOpSigningBytes(signed.op)
  } catch (error) {
    if (error instanceof StateOpError) return false
    throw error
  }
  return verifier.verify(signed.op.author, bytes, signed.signature)
}

// --- helpers ----------------------------------------------------------------------------------

function sha256 (data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(data).digest())
}

const utf8Encoder = new TextEncoder()

/** The anti-entropy bucket of a key: the first byte of sha256(UTF-8 key). */
export function bucketOfKey (key: string): number {
  return sha256(utf8Encoder.encode(key))[0]!
}

function compareBytes (a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.byteLength, b.byteLength)
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!
  return a.byteLength - b.byteLength
}

/** Moves surrogates above U+E000..U+FFFF so UTF-16 units order like code points (and UTF-8 bytes). */
function codePointRank (unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000
  return unit >= 0xe000 ? unit - 0x800 : unit
}

/** Orders strings as their UTF-8 bytes order (LevelDB's key order). */
export function compareKeys (a: string, b: string): number {
  const length = Math.min(a.length, b.length)
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x !== y) return codePointRank(x) - codePointRank(y)
  }
  return a.length - b.length
}

function toHex (bytes: Uint8Array): string { return Buffer.from(bytes).toString('hex') }

function deepFreeze<T> (value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child)
    Object.freeze(value)
  }
  return value
}

/** A frozen copy, so no caller can change a register behind its hash. */
function frozenCopy (signed: SignedStateOp, valueJson: string | undefined): SignedStateOp {
  const { op } = signed
  const copy: StateOp = { collection: op.collection, key: op.key, hlc: { ...op.hlc }, author: op.author, tombstone: op.tombstone }
  if (valueJson !== undefined) copy.value = JSON.parse(valueJson) as JsonObject
  // A typed array cannot be frozen; the signature is a private copy nobody else holds.
  return Object.freeze({ op: deepFreeze(copy), signature: signed.signature.slice() })
}

// --- the store --------------------------------------------------------------------------------

interface Register {
  signed: SignedStateOp
  /** sha256 of the canonical op bytes. */
  hash: Uint8Array
  bucket: number
}

const EMPTY_BUCKETS = new Uint8Array(BUCKET_COUNT * BUCKET_DIGEST_BYTES)
const EMPTY_COLLECTION_DIGEST = sha256(EMPTY_BUCKETS)

class CollectionState {
  readonly registers = new Map<string, Register>()
  /** Keys per bucket and the bucket digests, allocated with the first register. */
  bucketKeys: Array<Set<string> | undefined> | undefined
  bucketDigests: Uint8Array | undefined
  readonly dirtyBuckets = new Set<number>()
  digest: Uint8Array = EMPTY_COLLECTION_DIGEST
  digestStale = false
  live = 0
  tombstones = 0
  sortedLive: ReadonlyArray<readonly [string, JsonObject]> | undefined

  put (key: string, register: Register, previous: Register | undefined): void {
    if (previous === undefined) {
      this.bucketKeys ??= new Array<Set<string> | undefined>(BUCKET_COUNT).fill(undefined)
      this.bucketDigests ??= new Uint8Array(BUCKET_COUNT * BUCKET_DIGEST_BYTES)
      const keys = this.bucketKeys[register.bucket] ?? new Set<string>()
      this.bucketKeys[register.bucket] = keys
      keys.add(key)
    } else {
      this.count(previous, -1)
    }
    this.count(register, 1)
    this.registers.set(key, register)
    this.touch(register.bucket)
  }

  remove (key: string, register: Register): void {
    this.registers.delete(key)
    this.bucketKeys?.[register.bucket]?.delete(key)
    this.count(register, -1)
    this.touch(register.bucket)
  }

  private count (register: Register, delta: number): void {
    if (register.signed.op.tombstone) this.tombstones += delta
    else this.live += delta
  }

  keysInBucket (bucket: number): string[] {
    return [...(this.bucketKeys?.[bucket] ?? [])].sort(compareKeys)
  }

  /** Bucket digests, recomputing the dirty ones. */
  buckets (): Uint8Array {
    if (this.bucketDigests === undefined) return EMPTY_BUCKETS
    for (const bucket of this.dirtyBuckets) {
      const keys = this.keysInBucket(bucket)
      const target = this.bucketDigests.subarray(bucket * BUCKET_DIGEST_BYTES, (bucket + 1) * BUCKET_DIGEST_BYTES)
      if (keys.length === 0) { target.fill(0); continue }
      const hash = createHash('sha256')
      for (const key of keys) hash.update((this.registers.get(key) as Register).hash)
      target.set(hash.digest().subarray(0, BUCKET_DIGEST_BYTES))
    }
    this.dirtyBuckets.clear()
    return this.bucketDigests
  }

  collectionDigest (): Uint8Array {
    if (this.digestStale) {
      this.digest = sha256(this.buckets())
      this.digestStale = false
    }
    return this.digest
  }

  private touch (bucket: number): void {
    this.dirtyBuckets.add(bucket)
    this.digestStale = true
    this.sortedLive = undefined
  }
}

export interface StateStoreOptions {
  /** Checks each op that would change a register; without one, ops are taken as verified upstream. */
  verifier?: Verifier
  /**
   * This node's clock: every op applied is observed, so local writes order after it, and an op
   * more than clock.maxDriftMs ahead is refused.
   */
  clock?: HlcClock
}

export interface ApplyOptions {
  /** Skip the signature check and the drift bound: for ops reloaded from this node's own disk. */
  trusted?: boolean
}

export class StateStore {
  private readonly collections = new Map<Collection, CollectionState>(STATE_COLLECTIONS.map((name) => [name, new CollectionState()]))
  private readonly listeners = new Set<(change: StateChange) => void>()
  private topDigest: string | undefined
  private prunedBeforeMs = 0

  constructor (private readonly options: StateStoreOptions = {}) {}

  /**
   * Merge one op. Returns 'applied' when it changed its register, 'stale' when the register holds a
   * newer op, 'duplicate' when it holds this op. Throws StateOpError, changing nothing, for an op
   * that is invalid, too far ahead of the clock, or whose signature does not verify.
   */
  apply (signed: SignedStateOp, options: ApplyOptions = {}): ApplyResult {
    const value: unknown = signed
    if (value === null || typeof value !== 'object') throw new StateOpError('signed', 'must be an object')
    const { op, signature } = signed
    if (!(signature instanceof Uint8Array) || signature.byteLength === 0 || signature.byteLength > MAX_SIGNATURE_BYTES) {
      throw new StateOpError('signature', `must be 1..${MAX_SIGNATURE_BYTES} bytes`)
    }
    let encoded: { body: Uint8Array, valueJson: string | undefined }
    try {
      encoded = encodeStateOpWithValue(op)
    } catch (error) {
      // Field paths as validateSignedStateOp names them: `op.key`, `op.hlc.counter`.
      if (error instanceof StateOpError) throw new StateOpError(error.field === 'op' ? 'op' : `op.${error.field}`, error.reason)
      throw error
    }
    const { body } = encoded
    const trusted = options.trusted === true
    const hash = sha256(body)
    const collection = this.collection(op.collection)
    const current = collection.registers.get(op.key)
    if (current !== undefined) {
      const order = compareHlc(op.hlc, current.signed.op.hlc) || compareBytes(hash, current.hash)
      if (order === 0) return 'duplicate'
      if (order < 0) return 'stale'
    } else if (op.tombstone && op.hlc.wallMs < this.prunedBeforeMs) {
      return 'stale' // it would be pruned again at once
    }
    const { verifier } = this.options
    if (verifier !== undefined && !trusted && !verifier.verify(op.author, signingBytesOfBody(body), signature)) {
      throw new StateOpError('signature', `does not verify against the key of "${op.author}"`)
    }
    this.observe(op, trusted)
    const register: Register = { signed: frozenCopy(signed, encoded.valueJson), hash, bucket: current?.bucket ?? bucketOfKey(op.key) }
    collection.put(op.key, register, current)
    this.topDigest = undefined
    const change: StateChange = current === undefined ? { signed: register.signed } : { signed: register.signed, previous: current.signed }
    for (const listener of [...this.listeners]) listener(change)
    return 'applied'
  }

  /** The live value of a register; undefined when absent or deleted. */
  get (collection: Collection, key: string): JsonObject | undefined {
    const register = this.collection(collection).registers.get(key)
    return register === undefined || register.signed.op.tombstone ? undefined : register.signed.op.value
  }

  /** The op a register holds, tombstones included. */
  getOp (collection: Collection, key: string): SignedStateOp | undefined {
    return this.collection(collection).registers.get(key)?.signed
  }

  /** Live values in UTF-8 key order (cached until the collection changes; do not mutate). */
  entries (collection: Collection): ReadonlyArray<readonly [string, JsonObject]> {
    const state = this.collection(collection)
    if (state.sortedLive === undefined) {
      const live: Array<readonly [string, JsonObject]> = []
      for (const [key, register] of state.registers) if (!register.signed.op.tombstone) live.push([key, register.signed.op.value as JsonObject])
      state.sortedLive = Object.freeze(live.sort((a, b) => compareKeys(a[0], b[0])))
    }
    return state.sortedLive
  }

  /** Every op held in a collection, tombstones included, in key order. */
  ops (collection: Collection): SignedStateOp[] {
    const state = this.collection(collection)
    return [...state.registers.keys()].sort(compareKeys).map((key) => (state.registers.get(key) as Register).signed)
  }

  counts (): Record<Collection, { live: number, tombstones: number }> {
    const counts = {} as Record<Collection, { live: number, tombstones: number }>
    for (const [name, state] of this.collections) counts[name] = { live: state.live, tombstones: state.tombstones }
    return counts
  }

  collectionDigests (): Record<Collection, string> {
    const digests = {} as Record<Collection, string>
    for (const [name, state] of this.collections) digests[name] = toHex(state.collectionDigest())
    return digests
  }

  /** sha256 hex over the whole state; equal on two replicas exactly when they hold the same ops. */
  digest (): string {
    if (this.topDigest === undefined) {
      const hash = createHash('sha256')
      for (const state of this.collections.values()) hash.update(state.collectionDigest())
      this.topDigest = hash.digest('hex')
    }
    return this.topDigest
  }

  /** Every collection's digest, with bucket digests for the collections in `withBuckets`. */
  summary (withBuckets: readonly Collection[] = STATE_COLLECTIONS): StateSummary {
    return {
      collections: STATE_COLLECTIONS.map((name) => {
        const state = this.collection(name)
        const entry: CollectionSummary = { collection: name, digest: state.collectionDigest().slice() }
        if (withBuckets.includes(name)) {
          const digests = state.buckets()
          entry.buckets = Array.from({ length: BUCKET_COUNT }, (_, bucket) => digests.slice(bucket * BUCKET_DIGEST_BYTES, (bucket + 1) * BUCKET_DIGEST_BYTES))
        }
        return entry
      })
    }
  }

  /**
   * The buckets in which a peer's state differs from ours: the ones to send it (opsInBuckets) and
   * to ask it for. A differing collection summarised without buckets gives all of its buckets.
   */
  diffSummary (remote: StateSummary): BucketRequest[] {
    const requests: BucketRequest[] = []
    for (const entry of remote.collections) {
      if (!isCollection(entry.collection)) continue
      const state = this.collection(entry.collection)
      if (compareBytes(state.collectionDigest(), entry.digest) === 0) continue
      const local = state.buckets()
      const buckets: number[] = []
      for (let bucket = 0; bucket < BUCKET_COUNT; bucket++) {
        const theirs = entry.buckets?.[bucket]
        if (theirs === undefined || compareBytes(local.subarray(bucket * BUCKET_DIGEST_BYTES, (bucket + 1) * BUCKET_DIGEST_BYTES), theirs) !== 0) buckets.push(bucket)
      }
      if (buckets.length > 0) requests.push({ collection: entry.collection, buckets })
    }
    return requests
  }

  /** The ops (tombstones included) in the requested buckets, at most `maxOps`, in request order. */
  opsInBuckets (requests: readonly BucketRequest[], maxOps = Number.POSITIVE_INFINITY): SignedStateOp[] {
    const ops: SignedStateOp[] = []
    for (const request of requests) {
      if (!isCollection(request.collection)) continue
      const state = this.collection(request.collection)
      for (const bucket of request.buckets) {
        for (const key of state.keysInBucket(bucket)) {
          if (ops.length >= maxOps) return ops
          ops.push((state.registers.get(key) as Register).signed)
        }
      }
    }
    return ops
  }

  /**
   * Drop tombstones whose hlc.wallMs is before `horizonMs`, and refuse older tombstones for absent
   * keys from now on. Returns what was dropped (persistence deletes them from disk).
   */
  pruneTombstones (horizonMs: number): Array<{ collection: Collection, key: string }> {
    this.prunedBeforeMs = Math.max(this.prunedBeforeMs, horizonMs)
    const pruned: Array<{ collection: Collection, key: string }> = []
    for (const [name, state] of this.collections) {
      for (const [key, register] of [...state.registers]) {
        if (!register.signed.op.tombstone || register.signed.op.hlc.wallMs >= horizonMs) continue
        state.remove(key, register)
        pruned.push({ collection: name, key })
      }
    }
    if (pruned.length > 0) this.topDigest = undefined
    return pruned
  }

  /** Called synchronously after every applied op. A listener must not throw. */
  onChange (listener: (change: StateChange) => void): Unsubscribe {
    const wrapped = (change: StateChange): void => listener(change)
    this.listeners.add(wrapped)
    return () => { this.listeners.delete(wrapped) }
  }

  /** Only ops that change a register move the clock: the others are older than one it saw. */
  private observe (op: StateOp, trusted: boolean): void {
    const { clock } = this.options
    if (clock === undefined) return
    try {
      clock.observe(op.hlc, { allowDrift: trusted })
    } catch (error) {
      if (error instanceof HlcDriftError) throw new StateOpError('op.hlc.wallMs', `${error.aheadMs} ms ahead of the local clock (bound ${error.maxDriftMs} ms)`)
      throw error
    }
  }

  private collection (name: Collection): CollectionState {
    const state = this.collections.get(name)
    if (state === undefined) throw new StateOpError('collection', `must be one of ${STATE_COLLECTIONS.join(', ')}`)
    return state
  }
}
