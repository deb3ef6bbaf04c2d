import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fc from 'fast-check'
import {
  BUCKET_COUNT, MAX_KEY_BYTES, MAX_OPS_PER_FRAME, MAX_SIGNED_OP_BYTES, MAX_STATE_FRAME_BYTES, MAX_VALUE_BYTES, STATE_COLLECTIONS,
  STATE_SIGNING_DOMAIN, StateFrameError, StateOpError, canonicalJson, decodeSignedOp, decodeStateFrame, encodeSignedOp,
  encodeStateFrame, encodeStateOp, packStateOps, stateFrameEncodingLength, stateOpSigningBytes, type StateFrame
} from '../../src/protocols/state-codec.ts'
import { StateStore, signStateOp, verifyStateOp, type JsonObject, type SignedStateOp, type StateOp } from '../../src/protocols/state-crdt.ts'
import { createStateSigners, signedOp, stateOp } from '../support/state-fixtures.ts'

const signers = createStateSigners(21)

/** The one round-trip check: the value survives, and so do the bytes (the encoding is canonical). */
function roundTripOp (signed: SignedStateOp): void {
  const bytes = encodeSignedOp(signed)
  assert.ok(bytes.byteLength <= MAX_SIGNED_OP_BYTES)
  const decoded = decodeSignedOp(bytes)
  assert.equal(JSON.parse(JSON.stringify(decoded.op)), JSON.parse(JSON.stringify(signed.op)))
  assert.equal(decoded.signature, signed.signature)
  assert.equal(encodeSignedOp(decoded), bytes)
}

function roundTripFrame (frame: StateFrame): StateFrame {
  const bytes = encodeStateFrame(frame)
  assert.is(bytes.byteLength, stateFrameEncodingLength(frame))
  const decoded = decodeStateFrame(bytes)
  assert.equal(encodeStateFrame(decoded), bytes)
  return decoded
}

function expectError<E extends StateOpError | StateFrameError> (kind: new (...args: never[]) => E, run: () => unknown, field: string, reason: RegExp): void {
  try {
    run()
  } catch (error) {
    assert.instance(error, kind)
    assert.is((error as E).field, field)
    assert.match((error as E).reason, reason)
    return
  }
  assert.unreachable(`expected an error on ${field}`)
}

// --- ops --------------------------------------------------------------------------------------------

const opCases: Array<[name: string, op: StateOp]> = [
  ['a write', stateOp({ collection: 'leases', key: 'unicast/10.42.0.7', author: 'n1', wallMs: 1_700_000_000_123, counter: 3, value: { holder: 'n1', expiresAtMs: 1_700_000_030_000 } })],
  ['a tombstone', stateOp({ collection: 'nodes', key: 'n2', author: 'n1', wallMs: 0 })],
  ['unicode key and value, nested', stateOp({ collection: 'settings', key: 'région/東京 🗼', author: 'n1', wallMs: 5, value: { z: [1, 'ü', null, true, { a: -1.5e-7 }], a: {} } })],
  ['the largest key and value', stateOp({ collection: 'services', key: 'k'.repeat(MAX_KEY_BYTES), author: 'n1', wallMs: Number.MAX_SAFE_INTEGER, counter: 0xffff_ffff, value: { x: 'y'.repeat(MAX_VALUE_BYTES - 8) } })],
  ['a value string starting with a byte-order mark', stateOp({ key: 'bom', author: 'n1', wallMs: 1, value: { '\uFEFF': '\uFEFFx' } })]
]

for (const [name, op] of opCases) {
  test(`state-codec: signed op round trip, ${name}`, () => {
    const signed = signStateOp(op, signers.signer('n1'))
    roundTripOp(signed)
    assert.ok(verifyStateOp(decodeSignedOp(encodeSignedOp(signed)), signers.directory))
  })
}

test('state-codec: canonical JSON sorts keys by UTF-16 units and has no whitespace (RFC 8785)', () => {
  assert.is(canonicalJson({ b: 1, a: [true, null, 'x'], é: { d: 2, c: 1e21 }, A: -0 }), '{"A":0,"a":[true,null,"x"],"b":1,"é":{"c":1e+21,"d":2}}')
  assert.is(canonicalJson({ '😀': 1, '\uffff': 2 }), '{"😀":1,"\uffff":2}')
})

test('state-codec: the signature covers the domain and the op; every field changes the signed bytes', () => {
  const op = stateOp({ collection: 'leases', key: 'a', author: 'n1', wallMs: 10, counter: 1, value: { v: 1 } })
  const bytes = stateOpSigningBytes(op)
  assert.equal(bytes.subarray(0, STATE_SIGNING_DOMAIN.length), new TextEncoder().encode(STATE_SIGNING_DOMAIN))
  const variants: StateOp[] = [
    { ...op, collection: 'nodes' }, { ...op, key: 'b' }, { ...op, hlc: { ...op.hlc, wallMs: 11 } }, { ...op, hlc: { ...op.hlc, counter: 2 } },
    { ...op, hlc: { ...op.hlc, node: 'n2' }, author: 'n2' }, { ...op, value: { v: 2 } }, { ...op, value: undefined, tombstone: true }
  ]
  const seen = new Set([Buffer.from(bytes).toString('hex')])
  for (const variant of variants) seen.add(Buffer.from(stateOpSigningBytes(variant)).toString('hex'))
  assert.is(seen.size, variants.length + 1)
})

test('state-codec: forged signatures are rejected: flipped bit, changed value, replayed under another author', () => {
  const signed = signedOp(signers, { key: 'a', author: 'n1', wallMs: 10, value: { holder: 'n1' } })
  const bytes = encodeSignedOp(signed)
  assert.ok(verifyStateOp(decodeSignedOp(bytes), signers.directory))
  const flipped = bytes.slice()
  flipped[flipped.byteLength - 5]! ^= 0x40
  assert.not.ok(verifyStateOp(decodeSignedOp(flipped), signers.directory))
  const changed: SignedStateOp = { op: { ...signed.op, value: { holder: 'mallory' } }, signature: signed.signature }
  assert.not.ok(verifyStateOp(decodeSignedOp(encodeSignedOp(changed)), signers.directory))
  signers.signer('n2')
  const replayed: SignedStateOp = { op: { ...signed.op, hlc: { ...signed.op.hlc, node: 'n2' }, author: 'n2' }, signature: signed.signature }
  assert.not.ok(verifyStateOp(replayed, signers.directory))
  const replica = new StateStore({ verifier: signers.directory })
  for (const forged of [decodeSignedOp(flipped), changed, replayed]) {
    expectError(StateOpError, () => replica.apply(forged), 'signature', /does not verify/)
  }
  assert.is(replica.counts().services.live, 0)
})

const badOps: Array<[name: string, mutate: (bytes: Uint8Array) => Uint8Array, field: string, reason: RegExp]> = [
  ['unknown collection code', (b) => { b[0] = 9; return b }, 'op.collection', /unknown code 9/],
  ['key length past 256', (b) => { b[1] = 1; b[2] = 1; return b }, 'op.key', /longer than 256 bytes/],
  ['truncated', (b) => b.subarray(0, b.byteLength - 3), 'signature', /truncated/],
  ['trailing byte', (b) => Uint8Array.from([...b, 0]), 'signed', /1 trailing bytes/],
  ['unknown flag bit', (b) => { b[3 + 1 + 8 + 4 + 1 + 2] = 0x81; return b }, 'op.flags', /unknown bits 0x81/],
  ['value length past 4 KiB', (b) => { b[3 + 1 + 8 + 4 + 1 + 2 + 1] = 0x10; b[3 + 1 + 8 + 4 + 1 + 2 + 2] = 1; return b }, 'op.value', /longer than 4096 bytes/],
  ['oversized input', () => new Uint8Array(MAX_SIGNED_OP_BYTES + 1), 'signed', /larger than/],
  ['empty signature', (b) => { const v = b.subarray(0, b.byteLength - 64); v[v.byteLength - 1] = 0; return v }, 'signature', /empty/]
]

for (const [name, mutate, field, reason] of badOps) {
  test(`state-codec: decodeSignedOp refuses ${name} (StateOpError on ${field})`, () => {
    const bytes = encodeSignedOp(signedOp(signers, { key: 'a', author: 'n1', wallMs: 10, value: { v: 1 } }))
    expectError(StateOpError, () => decodeSignedOp(mutate(bytes.slice())), field, reason)
  })
}

test('state-codec: a value that is valid JSON but not canonical is refused', () => {
  const encoder = new TextEncoder()
  for (const [text, reason] of [['{"b":1,"a":2}', /not canonical/], ['{ "a":1}', /not canonical/], ['{"a":1.0}', /not canonical/], ['[1]', /JSON object/], ['{"a":', /not JSON/], ['{"a":1e999}', /finite/]] as const) {
    const key = encoder.encode('k')
    const node = encoder.encode('n1')
    const value = encoder.encode(text)
    const body = [2, 0, key.length, ...key, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, node.length, ...node, 0, value.length >> 8, value.length & 0xff, ...value, 1, 7]
    expectError(StateOpError, () => decodeSignedOp(Uint8Array.from(body)), text === '{"a":1e999}' ? 'op.value.a' : 'op.value', reason)
  }
})

// --- properties ---------------------------------------------------------------------------------------

const jsonObject: fc.Arbitrary<JsonObject> = fc.dictionary(fc.string({ unit: 'binary', maxLength: 8 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 6 }) as fc.Arbitrary<JsonObject>
const opArbitrary: fc.Arbitrary<StateOp> = fc.record({
  collection: fc.constantFrom(...STATE_COLLECTIONS),
  key: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }).filter((key) => !/[\p{Cc}]/u.test(key)),
  wallMs: fc.maxSafeNat(),
  counter: fc.nat({ max: 0xffff_ffff }),
  node: fc.stringMatching(/^[\x21-\x7e]{1,20}$/),
  value: fc.option(jsonObject, { nil: undefined })
}).filter(({ value }) => value === undefined || JSON.stringify(value).length < MAX_VALUE_BYTES / 3).map(({ collection, key, wallMs, counter, node, value }) => {
  const op: StateOp = { collection, key, hlc: { wallMs, counter, node }, author: node, tombstone: value === undefined }
  if (value !== undefined) op.value = value
  return op
})
const signedArbitrary: fc.Arbitrary<SignedStateOp> = fc.tuple(opArbitrary, fc.uint8Array({ minLength: 1, maxLength: 128 })).map(([op, signature]) => ({ op, signature }))

test('state-codec property: every valid signed op round-trips, bytes included', () => {
  fc.assert(fc.property(signedArbitrary, (signed) => { roundTripOp(signed) }), { numRuns: 500, seed: 31 })
})

test('state-codec property: ops frames round-trip; packStateOps keeps every frame within its bounds', () => {
  fc.assert(fc.property(fc.array(signedArbitrary, { maxLength: 30 }), (ops) => {
    const frames = packStateOps(ops)
    assert.is(frames.flatMap((frame) => frame.ops).length, ops.length)
    for (const frame of frames) {
      const decoded = roundTripFrame(frame)
      assert.is(decoded.type, 'ops')
      assert.ok(encodeStateFrame(frame).byteLength <= MAX_STATE_FRAME_BYTES)
    }
  }), { numRuns: 100, seed: 32 })
})

test('state-codec: packStateOps splits big ops by bytes and many small ones by count', () => {
  const big = Array.from({ length: 40 }, (_, i) => ({ op: stateOp({ key: `k${i}`, author: 'n1', wallMs: i, value: { x: 'y'.repeat(MAX_VALUE_BYTES - 8) } }), signature: new Uint8Array(64) }))
  const bigFrames = packStateOps(big)
  assert.is(bigFrames.length, Math.ceil(40 / Math.floor((MAX_STATE_FRAME_BYTES - 4) / encodeSignedOp(big[0]!).byteLength)))
  for (const frame of bigFrames) assert.ok(encodeStateFrame(frame).byteLength <= MAX_STATE_FRAME_BYTES)
  const small = Array.from({ length: MAX_OPS_PER_FRAME + 1 }, (_, i) => ({ op: stateOp({ key: `${i}`, author: 'n1', wallMs: i }), signature: new Uint8Array(1) }))
  assert.equal(packStateOps(small).map((frame) => frame.ops.length), [MAX_OPS_PER_FRAME, 1])
  expectError(StateFrameError, () => encodeStateFrame({ type: 'ops', ops: small }), 'ops', /more than 1024/)
  expectError(StateFrameError, () => encodeStateFrame({ type: 'ops', ops: big }), 'frame', /larger than 61440/)
  assert.equal(packStateOps([]), [])
})

test('state-codec: summary and request frames round-trip, from a real store', () => {
  const replica = new StateStore()
  for (let i = 0; i < 300; i++) replica.apply(signedOp(signers, { collection: i % 2 === 0 ? 'leases' : 'nodes', key: `key-${i}`, author: 'n1', wallMs: i, value: { i } }), { trusted: true })
  const full = roundTripFrame({ type: 'summary', summary: replica.summary() })
  assert.equal(full, { type: 'summary', summary: replica.summary() })
  const digestsOnly = roundTripFrame({ type: 'summary', summary: replica.summary([]) })
  assert.equal(digestsOnly, { type: 'summary', summary: replica.summary([]) })
  assert.ok(encodeStateFrame(digestsOnly).byteLength < 200)
  // Empty buckets cost one bit: an empty store's full summary is small too.
  assert.ok(encodeStateFrame({ type: 'summary', summary: new StateStore().summary() }).byteLength < 4 * (1 + 32 + 1 + 32) + 3 + 1)
  const request: StateFrame = { type: 'request', requests: [{ collection: 'nodes', buckets: [0, 7, 255] }, { collection: 'settings', buckets: Array.from({ length: BUCKET_COUNT }, (_, i) => i) }] }
  assert.equal(roundTripFrame(request), request)
})

const badFrames: Array<[name: string, bytes: number[], field: string, reason: RegExp]> = [
  ['empty', [], 'frame.version', /truncated/],
  ['unknown version', [2, 1], 'frame.version', /unsupported version 2/],
  ['unknown type', [1, 9], 'frame.type', /unknown type 9/],
  ['summary of five collections', [1, 1, 5], 'summary.collections', /more than 4/],
  ['summary collections out of order', [1, 1, 2, 2, ...new Array(32).fill(1), 0, 1, ...new Array(32).fill(1), 0], 'summary.collections[1].collection', /distinct and increasing/],
  ['summary bucket flag 2', [1, 1, 1, 1, ...new Array(32).fill(1), 2], 'summary.collections[0].buckets', /flag must be 0 or 1/],
  ['summary bucket digest all zero', [1, 1, 1, 1, ...new Array(32).fill(1), 1, 0x80, ...new Array(31).fill(0), ...new Array(16).fill(0)], 'summary.collections[0].buckets[0]', /all-zero/],
  ['request with no buckets', [1, 2, 1, 1, 0, 0], 'requests[0].buckets', /1\.\.256/],
  ['request with 257 buckets', [1, 2, 1, 1, 1, 1], 'requests[0].buckets', /1\.\.256/],
  ['request buckets not increasing', [1, 2, 1, 1, 0, 2, 5, 5], 'requests[0].buckets[1]', /distinct and increasing/],
  ['ops count past 1024', [1, 3, 0x04, 0x01], 'ops', /more than 1024/],
  ['ops frame with a bad op', [1, 3, 0, 1, 9], 'ops[0].op.collection', /unknown code 9/],
  ['ops frame claiming an op it lacks', [1, 3, 0, 1], 'ops[0].op.collection', /truncated/],
  ['trailing bytes', [1, 3, 0, 0, 0], 'frame', /1 trailing bytes/]
]

for (const [name, bytes, field, reason] of badFrames) {
  test(`state-codec: decodeStateFrame refuses ${name} (StateFrameError on ${field})`, () => {
    expectError(StateFrameError, () => decodeStateFrame(Uint8Array.from(bytes)), field, reason)
  })
}

test('state-codec: a frame past 60 KiB is refused before it is read', () => {
  expectError(StateFrameError, () => decodeStateFrame(new Uint8Array(MAX_STATE_FRAME_BYTES + 1)), 'frame', /larger than 61440 bytes/)
})

// --- fuzzing -------------------------------------------------------------------------------------------

function isNamed (error: unknown): boolean {
  return (error instanceof StateOpError || error instanceof StateFrameError) && typeof error.field === 'string' && error.field !== ''
}

/** Decoding either fails with a named error or gives a value that encodes back to the same bytes. */
function fuzzOne (bytes: Uint8Array): void {
  try {
    const frame = decodeStateFrame(bytes)
    assert.equal(encodeStateFrame(frame), bytes)
  } catch (error) {
    if (!isNamed(error)) throw error
  }
  try {
    const signed = decodeSignedOp(bytes)
    assert.equal(encodeSignedOp(signed), bytes)
  } catch (error) {
    if (!isNamed(error)) throw error
  }
}

test('state-codec fuzz: random bytes never crash the decoders, only named errors', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => fuzzOne(bytes)), { numRuns: 3000, seed: 33 })
  fc.assert(fc.property(fc.uint8Array({ maxLength: 60 }).map((tail) => Uint8Array.from([1, 1 + (tail[0] ?? 0) % 3, ...tail])), (bytes) => fuzzOne(bytes)), { numRuns: 3000, seed: 34 })
})

test('state-codec fuzz: mutated valid frames and ops never crash the decoders; survivors are canonical', () => {
  const replica = new StateStore()
  const ops = Array.from({ length: 6 }, (_, i) => signedOp(signers, { collection: STATE_COLLECTIONS[i % 4], key: `k${i}`, author: 'n1', wallMs: i, value: { i, s: 'x'.repeat(i), list: [i, null] } }))
  for (const signed of ops) replica.apply(signed)
  replica.apply(signedOp(signers, { key: 'gone', author: 'n1', wallMs: 9 }))
  const seeds = [
    encodeStateFrame({ type: 'ops', ops: replica.opsInBuckets(STATE_COLLECTIONS.map((collection) => ({ collection, buckets: Array.from({ length: 256 }, (_, i) => i) }))) }),
    encodeStateFrame({ type: 'summary', summary: replica.summary() }),
    encodeStateFrame({ type: 'request', requests: [{ collection: 'leases', buckets: [1, 2, 3] }] }),
    ...ops.map((signed) => encodeSignedOp(signed))
  ]
  const mutation = fc.tuple(
    fc.nat({ max: seeds.length - 1 }),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('set', 'insert', 'delete', 'truncate')), { minLength: 1, maxLength: 4 })
  ).map(([which, edits]) => {
    let bytes = Array.from(seeds[which]!)
    for (const [position, byte, kind] of edits) {
      const at = bytes.length === 0 ? 0 : position % bytes.length
      if (kind === 'set') bytes[at] = byte
      else if (kind === 'insert') bytes.splice(at, 0, byte)
      else if (kind === 'delete') bytes.splice(at, 1)
      else bytes = bytes.slice(0, at)
    }
    return Uint8Array.from(bytes)
  })
  let decoded = 0
  fc.assert(fc.property(mutation, (bytes) => {
    fuzzOne(bytes)
    try { decodeStateFrame(bytes); decoded++ } catch { /* counted above */ }
  }), { numRuns: 4000, seed: 35 })
  // Some mutations land in digests or values and still decode: the fuzzer reached past the header.
  assert.ok(decoded > 20, `only ${decoded} mutated frames decoded`)
})

test('state-codec fuzz: a decoded forged op never changes a verifying store', () => {
  const replica = new StateStore({ verifier: signers.directory })
  const original = signedOp(signers, { key: 'lease', author: 'n1', wallMs: 5, value: { holder: 'n1' } })
  const bytes = encodeSignedOp(original)
  let rejected = 0
  fc.assert(fc.property(fc.nat({ max: bytes.byteLength - 1 }), fc.integer({ min: 1, max: 255 }), (position, xor) => {
    const mutated = bytes.slice()
    mutated[position]! ^= xor
    let signed: SignedStateOp
    try { signed = decodeSignedOp(mutated) } catch (error) { assert.ok(isNamed(error)); return }
    try {
      replica.apply(signed)
      assert.unreachable('a mutated op was applied')
    } catch (error) {
      assert.instance(error, StateOpError)
      rejected++
    }
  }), { numRuns: 1500, seed: 36 })
  assert.is(replica.counts().services.live, 0)
  assert.ok(rejected > 100, `only ${rejected} mutated ops reached the signature check`)
  assert.is(replica.apply(original), 'applied')
  assert.ok(encodeStateOp(original.op).byteLength < bytes.byteLength)
})

test.run()
