import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fc from 'fast-check'
import { createHash } from 'node:crypto'
import {
  HlcClock, HlcDriftError, STATE_COLLECTIONS, StateOpError, StateStore, bucketOfKey, compareHlc, compareKeys, deleteOp,
  putOp, signStateOp, verifyStateOp, type Collection, type Hlc, type SignedStateOp, type StateChange, type StateOp
} from '../../src/protocols/state-crdt.ts'
import { MAX_HLC_COUNTER, MAX_KEY_BYTES, MAX_VALUE_BYTES, MAX_VALUE_DEPTH, encodeStateOp } from '../../src/protocols/state-codec.ts'
import { createStateSigners, signedOp, stateOp, type OpSpec } from '../support/state-fixtures.ts'

const signers = createStateSigners(7)

function store (): StateStore { return new StateStore({ verifier: signers.directory }) }

function expectOpError (run: () => unknown, field: string, reason: RegExp): void {
  try {
    run()
  } catch (error) {
    assert.instance(error, StateOpError)
    assert.is((error as StateOpError).name, 'StateOpError')
    assert.is((error as StateOpError).field, field)
    assert.match((error as StateOpError).reason, reason)
    return
  }
  assert.unreachable(`expected a StateOpError on ${field}`)
}

// --- LWW registers --------------------------------------------------------------------------------

const lwwCases: Array<[name: string, older: OpSpec, newer: OpSpec]> = [
  ['later wall clock wins', { key: 'web', author: 'n2', wallMs: 1000, counter: 9, value: { v: 1 } }, { key: 'web', author: 'n1', wallMs: 1001, value: { v: 2 } }],
  ['same wall clock: higher counter wins', { key: 'web', author: 'n2', wallMs: 1000, counter: 1, value: { v: 1 } }, { key: 'web', author: 'n1', wallMs: 1000, counter: 2, value: { v: 2 } }],
  ['same wall clock and counter: greater node id wins', { key: 'web', author: 'n1', wallMs: 1000, counter: 3, value: { v: 1 } }, { key: 'web', author: 'n2', wallMs: 1000, counter: 3, value: { v: 2 } }],
  ['tombstone beats an older write', { key: 'web', author: 'n1', wallMs: 1000, value: { v: 1 } }, { key: 'web', author: 'n2', wallMs: 1500 }],
  ['newer write after a tombstone brings the key back', { key: 'web', author: 'n1', wallMs: 1000 }, { key: 'web', author: 'n1', wallMs: 1000, counter: 1, value: { v: 3 } }]
]

for (const [name, olderSpec, newerSpec] of lwwCases) {
  test(`state-crdt: LWW, ${name}, in both delivery orders`, () => {
    const older = signedOp(signers, olderSpec)
    const newer = signedOp(signers, newerSpec)
    const forward = store()
    assert.is(forward.apply(older), 'applied')
    assert.is(forward.apply(newer), 'applied')
    const backward = store()
    assert.is(backward.apply(newer), 'applied')
    assert.is(backward.apply(older), 'stale')
    for (const replica of [forward, backward]) {
      assert.equal(replica.get('services', 'web'), newerSpec.value)
      assert.equal(replica.getOp('services', 'web')?.op.hlc, newer.op.hlc)
    }
    assert.is(forward.digest(), backward.digest())
  })
}

test('state-crdt: a tombstone hides the key from get and entries, and is counted', () => {
  const replica = store()
  replica.apply(signedOp(signers, { key: 'a', author: 'n1', wallMs: 1, value: { v: 1 } }))
  replica.apply(signedOp(signers, { key: 'b', author: 'n1', wallMs: 1, value: { v: 2 } }))
  replica.apply(signedOp(signers, { key: 'a', author: 'n2', wallMs: 2 }))
  assert.is(replica.get('services', 'a'), undefined)
  assert.equal(replica.entries('services'), [['b', { v: 2 }]])
  assert.equal(replica.counts().services, { live: 1, tombstones: 1 })
  assert.ok(replica.getOp('services', 'a')?.op.tombstone)
})

test('state-crdt: the same op twice is a duplicate and changes nothing', () => {
  const replica = store()
  const op = signedOp(signers, { key: 'a', author: 'n1', wallMs: 5, value: { v: 1 } })
  assert.is(replica.apply(op), 'applied')
  const digest = replica.digest()
  assert.is(replica.apply(op), 'duplicate')
  assert.is(replica.apply(signedOp(signers, { key: 'a', author: 'n1', wallMs: 5, value: { v: 1 } })), 'duplicate')
  assert.is(replica.digest(), digest)
})

test('state-crdt: one author signing two values at one clock value: the same one wins in both orders', () => {
  const first = signedOp(signers, { key: 'a', author: 'n1', wallMs: 5, value: { v: 1 } })
  const second = signedOp(signers, { key: 'a', author: 'n1', wallMs: 5, value: { v: 2 } })
  const hash = (signed: SignedStateOp): string => createHash('sha256').update(encodeStateOp(signed.op)).digest('hex')
  const winner = hash(first) > hash(second) ? first : second
  const loser = winner === first ? second : first
  const forward = store()
  forward.apply(loser)
  assert.is(forward.apply(winner), 'applied')
  const backward = store()
  backward.apply(winner)
  assert.is(backward.apply(loser), 'stale')
  assert.equal(forward.get('services', 'a'), winner.op.value)
  assert.equal(backward.get('services', 'a'), winner.op.value)
  assert.is(forward.digest(), backward.digest())
})

test('state-crdt: collections are separate registers; entries are in UTF-8 key order', () => {
  const replica = store()
  const keys = ['b', 'a', '\uffff', '😀', 'é', 'a/b']
  keys.forEach((key, index) => replica.apply(signedOp(signers, { collection: 'leases', key, author: 'n1', wallMs: index + 1, value: { i: index } })))
  replica.apply(signedOp(signers, { collection: 'nodes', key: 'a', author: 'n1', wallMs: 1, value: { node: true } }))
  const utf8Order = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
  assert.equal(replica.entries('leases').map(([key]) => key), utf8Order)
  assert.equal(utf8Order.slice(-2), ['\uffff', '😀'], 'U+FFFF sorts before an astral character in UTF-8')
  assert.equal(replica.get('nodes', 'a'), { node: true })
  assert.equal(replica.get('leases', 'a'), { i: 1 })
  assert.equal(replica.counts(), { nodes: { live: 1, tombstones: 0 }, services: { live: 0, tombstones: 0 }, leases: { live: 6, tombstones: 0 }, settings: { live: 0, tombstones: 0 } })
})

test('state-crdt: the store keeps its own frozen copy; changing the caller\'s object changes nothing', () => {
  const replica = store()
  const value = { holder: 'n1', nested: { list: [1, 2] } }
  const op = signStateOp(stateOp({ key: 'a', author: 'n1', wallMs: 1, value }), signers.signer('n1'))
  replica.apply(op)
  const digest = replica.digest()
  value.nested.list.push(3)
  value.holder = 'mallory'
  assert.equal(replica.get('services', 'a'), { holder: 'n1', nested: { list: [1, 2] } })
  assert.is(replica.digest(), digest)
  assert.ok(Object.isFrozen(replica.get('services', 'a')?.nested))
})

test('state-crdt: onChange reports applied ops with the op they replaced; unsubscribe stops it', () => {
  const replica = store()
  const changes: StateChange[] = []
  const unsubscribe = replica.onChange((change) => changes.push(change))
  const first = signedOp(signers, { key: 'a', author: 'n1', wallMs: 1, value: { v: 1 } })
  const second = signedOp(signers, { key: 'a', author: 'n1', wallMs: 2 })
  replica.apply(first)
  replica.apply(first)
  replica.apply(second)
  replica.apply(first)
  assert.is(changes.length, 2)
  assert.is(changes[0]!.previous, undefined)
  assert.equal(changes[1]!.previous?.op.hlc, first.op.hlc)
  assert.ok(changes[1]!.signed.op.tombstone)
  unsubscribe()
  replica.apply(signedOp(signers, { key: 'b', author: 'n1', wallMs: 3, value: { v: 1 } }))
  assert.is(changes.length, 2)
})

// --- tombstone pruning ----------------------------------------------------------------------------

test('state-crdt: pruning drops tombstones before the horizon; an older tombstone for the key is then stale', () => {
  const replica = store()
  replica.apply(signedOp(signers, { key: 'gone', author: 'n1', wallMs: 100, value: { v: 1 } }))
  replica.apply(signedOp(signers, { key: 'gone', author: 'n1', wallMs: 200 }))
  replica.apply(signedOp(signers, { key: 'recent', author: 'n1', wallMs: 900 }))
  replica.apply(signedOp(signers, { key: 'kept', author: 'n1', wallMs: 50, value: { v: 1 } }))
  const pruned = replica.pruneTombstones(500)
  assert.equal(pruned, [{ collection: 'services', key: 'gone' }])
  assert.is(replica.getOp('services', 'gone'), undefined)
  assert.ok(replica.getOp('services', 'recent'))
  assert.equal(replica.counts().services, { live: 1, tombstones: 1 })
  assert.is(replica.apply(signedOp(signers, { key: 'gone', author: 'n1', wallMs: 200 })), 'stale')
  assert.is(replica.apply(signedOp(signers, { key: 'other', author: 'n1', wallMs: 300 })), 'stale')
  // A replica that never saw the pruned key has the same state, so the same digest.
  const fresh = store()
  fresh.apply(signedOp(signers, { key: 'recent', author: 'n1', wallMs: 900 }))
  fresh.apply(signedOp(signers, { key: 'kept', author: 'n1', wallMs: 50, value: { v: 1 } }))
  assert.is(replica.digest(), fresh.digest())
})

// --- hybrid logical clock -------------------------------------------------------------------------

test('hlc: tick follows the physical clock, and counts when it stalls or goes back', () => {
  let now = 1000
  const clock = new HlcClock('n1', () => now)
  const seen: Hlc[] = []
  for (const physical of [1000, 1000, 1000, 1005, 1003, 1003, 1010]) {
    now = physical
    seen.push(clock.tick())
  }
  assert.equal(seen.map((h) => [h.wallMs, h.counter]), [[1000, 0], [1000, 1], [1000, 2], [1005, 0], [1005, 1], [1005, 2], [1010, 0]])
  for (let i = 1; i < seen.length; i++) assert.ok(compareHlc(seen[i - 1]!, seen[i]!) < 0, `tick ${i} must be after tick ${i - 1}`)
})

// Kulkarni et al. 2014, Fig. 5 (receive event): l' = max(l, l.m, pt); c per which term won.
const observeCases: Array<[name: string, local: [number, number], physical: number, remote: [number, number], expected: [number, number]]> = [
  ['physical clock ahead of both: counter resets', [100, 4], 200, [150, 9], [200, 0]],
  ['remote ahead: its counter + 1', [100, 4], 100, [150, 9], [150, 10]],
  ['local ahead: local counter + 1', [150, 4], 100, [120, 9], [150, 5]],
  ['local and remote tie: max counter + 1', [150, 4], 100, [150, 9], [150, 10]],
  ['local and remote tie, local counter larger', [150, 12], 150, [150, 9], [150, 13]]
]

for (const [name, local, physical, remote, expected] of observeCases) {
  test(`hlc: observe, ${name}`, () => {
    let now = local[0]
    const clock = new HlcClock('n1', () => now)
    clock.tick()
    for (let i = 0; i < local[1]; i++) clock.tick()
    assert.equal([clock.current().wallMs, clock.current().counter], local)
    now = physical
    const after = clock.observe({ wallMs: remote[0], counter: remote[1], node: 'n2' })
    assert.equal([after.wallMs, after.counter], expected)
    assert.ok(compareHlc(clock.tick(), { wallMs: remote[0], counter: remote[1], node: 'n2' }) > 0)
  })
}

test('hlc: a remote clock more than maxDriftMs ahead is refused and changes nothing', () => {
  const clock = new HlcClock('n1', () => 10_000, { maxDriftMs: 5000 })
  clock.tick()
  const before = clock.current()
  try {
    clock.observe({ wallMs: 15_001, counter: 0, node: 'n2' })
    assert.unreachable('expected HlcDriftError')
  } catch (error) {
    assert.instance(error, HlcDriftError)
    assert.is((error as HlcDriftError).aheadMs, 5001)
  }
  assert.equal(clock.current(), before)
  assert.is(clock.observe({ wallMs: 15_000, counter: 0, node: 'n2' }).wallMs, 15_000)
  assert.is(clock.observe({ wallMs: 99_000, counter: 0, node: 'n2' }, { allowDrift: true }).wallMs, 99_000)
})

test('hlc: a counter at its bound carries into the wall clock', () => {
  const clock = new HlcClock('n1', () => 100)
  clock.observe({ wallMs: 100, counter: MAX_HLC_COUNTER - 1, node: 'n2' })
  assert.equal(clock.current(), { wallMs: 100, counter: MAX_HLC_COUNTER, node: 'n1' })
  const next = clock.tick()
  assert.equal(next, { wallMs: 101, counter: 0, node: 'n1' })
})

test('hlc: the node ids order last, bytewise', () => {
  assert.ok(compareHlc({ wallMs: 1, counter: 0, node: 'B' }, { wallMs: 1, counter: 0, node: 'a' }) < 0)
  assert.ok(compareHlc({ wallMs: 1, counter: 1, node: 'A' }, { wallMs: 1, counter: 0, node: 'z' }) > 0)
  assert.is(compareHlc({ wallMs: 1, counter: 1, node: 'a' }, { wallMs: 1, counter: 1, node: 'a' }), 0)
})

test('state-crdt: applying an op moves the store\'s clock, so the next local write wins', () => {
  const clock = new HlcClock('n1', () => 1000)
  const replica = new StateStore({ verifier: signers.directory, clock })
  replica.apply(signedOp(signers, { key: 'a', author: 'n2', wallMs: 30_000, counter: 4, value: { from: 'n2' } }))
  const local = signStateOp(putOp(clock, 'services', 'a', { from: 'n1' }), signers.signer('n1'))
  assert.is(replica.apply(local), 'applied')
  assert.equal(replica.get('services', 'a'), { from: 'n1' })
  assert.is(replica.apply(signStateOp(deleteOp(clock, 'services', 'a'), signers.signer('n1'))), 'applied')
  assert.is(replica.get('services', 'a'), undefined)
})

test('state-crdt: an op more than 60 s ahead of the store\'s clock is refused; trusted (reloaded) ops are not', () => {
  const clock = new HlcClock('n1', () => 1000)
  const replica = new StateStore({ verifier: signers.directory, clock })
  expectOpError(() => replica.apply(signedOp(signers, { key: 'a', author: 'n2', wallMs: 61_001, value: { v: 1 } })), 'op.hlc.wallMs', /60001 ms ahead/)
  assert.is(replica.get('services', 'a'), undefined)
  assert.is(replica.apply(signedOp(signers, { key: 'a', author: 'n2', wallMs: 61_001, value: { v: 1 } }), { trusted: true }), 'applied')
})

// --- validation -----------------------------------------------------------------------------------

const good = stateOp({ key: 'web', author: 'n1', wallMs: 10, value: { v: 1 } })
function deep (depth: number): Record<string, unknown> {
  let value: Record<string, unknown> = {}
  for (let i = 1; i < depth; i++) value = { d: value }
  return value
}
const invalidOps: Array<[name: string, op: unknown, field: string, reason: RegExp]> = [
  ['not an object', 'op', 'op', /must be an object/],
  ['unknown collection', { ...good, collection: 'users' }, 'op.collection', /must be one of nodes, services, leases, settings/],
  ['empty key', { ...good, key: '' }, 'op.key', /non-empty/],
  ['key over 256 bytes', { ...good, key: 'é'.repeat(129) }, 'op.key', /longer than 256 bytes/],
  ['key with a control character', { ...good, key: 'a\nb' }, 'op.key', /control character/],
  ['key with an unpaired surrogate', { ...good, key: 'a\ud800' }, 'op.key', /unpaired surrogate/],
  ['negative wall clock', { ...good, hlc: { ...good.hlc, wallMs: -1 } }, 'op.hlc.wallMs', /non-negative safe integer/],
  ['fractional wall clock', { ...good, hlc: { ...good.hlc, wallMs: 1.5 } }, 'op.hlc.wallMs', /non-negative safe integer/],
  ['wall clock -0', { ...good, hlc: { ...good.hlc, wallMs: -0 } }, 'op.hlc.wallMs', /non-negative safe integer/],
  ['counter past 2^32 - 1', { ...good, hlc: { ...good.hlc, counter: 2 ** 32 } }, 'op.hlc.counter', /integer in/],
  ['node id with a space', { ...good, hlc: { ...good.hlc, node: 'n 1' }, author: 'n 1' }, 'op.hlc.node', /visible ASCII/],
  ['author is not hlc.node', { ...good, author: 'n2' }, 'op.author', /must equal hlc.node/],
  ['tombstone not a boolean', { ...good, tombstone: 1 }, 'op.tombstone', /boolean/],
  ['tombstone with a value', { ...good, tombstone: true }, 'op.value', /carries no value/],
  ['write without a value', { ...good, value: undefined }, 'op.value', /JSON object/],
  ['value an array', { ...good, value: [1] }, 'op.value', /JSON object/],
  ['value with NaN', { ...good, value: { x: Number.NaN } }, 'op.value.x', /finite/],
  ['value with undefined', { ...good, value: { x: undefined } }, 'op.value.x', /undefined is not JSON/],
  ['value with a Date', { ...good, value: { x: new Date(0) } }, 'op.value.x', /plain object/],
  ['value with an array hole', { ...good, value: { x: [1, , 3] } }, 'op.value.x[1]', /hole/], // eslint-disable-line no-sparse-arrays
  [`value nested deeper than ${MAX_VALUE_DEPTH}`, { ...good, value: deep(MAX_VALUE_DEPTH + 1) }, 'op.value' + '.d'.repeat(MAX_VALUE_DEPTH), /nested deeper/],
  ['value over 4 KiB', { ...good, value: { x: 'y'.repeat(MAX_VALUE_BYTES) } }, 'op.value', /longer than 4096 bytes/],
  ['value over 4 KiB in UTF-8 only', { ...good, value: { x: 'é'.repeat(2045) } }, 'op.value', /longer than 4096 bytes/]
]

for (const [name, op, field, reason] of invalidOps) {
  test(`state-crdt: apply refuses an op with ${name} (StateOpError on ${field}), changing nothing`, () => {
    const replica = store()
    const digest = replica.digest()
    expectOpError(() => replica.apply({ op: op as StateOp, signature: new Uint8Array(64) }), field, reason)
    assert.is(replica.digest(), digest)
  })
}

test('state-crdt: bounds are inclusive: a 256-byte key, a 4096-byte value and depth 16 are accepted', () => {
  const replica = store()
  const value = { x: 'y'.repeat(MAX_VALUE_BYTES - 8) }
  assert.is(JSON.stringify(value).length, MAX_VALUE_BYTES)
  assert.is(replica.apply(signedOp(signers, { key: 'k'.repeat(MAX_KEY_BYTES), author: 'n1', wallMs: 1, value })), 'applied')
  assert.is(replica.apply(signedOp(signers, { key: 'deep', author: 'n1', wallMs: 1, value: deep(MAX_VALUE_DEPTH) as never })), 'applied')
})

test('state-crdt: signature checks: a bad size, a forged signature, a changed value and another node\'s key are refused', () => {
  const replica = store()
  const op = signedOp(signers, { key: 'a', author: 'n1', wallMs: 1, value: { v: 1 } })
  expectOpError(() => replica.apply({ op: op.op, signature: new Uint8Array(0) }), 'signature', /1\.\.128 bytes/)
  expectOpError(() => replica.apply({ op: op.op, signature: new Uint8Array(129) }), 'signature', /1\.\.128 bytes/)
  const flipped = op.signature.slice()
  flipped[10]! ^= 1
  expectOpError(() => replica.apply({ op: op.op, signature: flipped }), 'signature', /does not verify against the key of "n1"/)
  expectOpError(() => replica.apply({ op: { ...op.op, value: { v: 2 } }, signature: op.signature }), 'signature', /does not verify/)
  const byN2 = signStateOp(stateOp({ key: 'a', author: 'n2', wallMs: 1, value: { v: 1 } }), signers.signer('n2'))
  expectOpError(() => replica.apply({ op: { ...op.op }, signature: byN2.signature }), 'signature', /does not verify/)
  expectOpError(() => replica.apply({ op: op.op, signature: new Uint8Array(64) }), 'signature', /does not verify/)
  const unknown = new StateStore({ verifier: createStateSigners(8).directory })
  expectOpError(() => unknown.apply(op), 'signature', /does not verify/)
  assert.is(replica.counts().services.live, 0)
  assert.is(replica.apply(op), 'applied')
  assert.ok(verifyStateOp(op, signers.directory))
  assert.not.ok(verifyStateOp({ op: op.op, signature: flipped }, signers.directory))
  assert.not.ok(verifyStateOp({ op: { ...op.op, key: '' }, signature: op.signature }, signers.directory))
})

test('state-crdt: signStateOp refuses an op that is not the signer\'s', () => {
  expectOpError(() => signStateOp(stateOp({ key: 'a', author: 'n2', wallMs: 1, value: { v: 1 } }), signers.signer('n1')), 'author', /is not the signer "n1"/)
})

// --- properties -------------------------------------------------------------------------------------

const AUTHORS = ['n1', 'n2', 'n3']
const KEYS = ['a', 'b', 'c/d', 'é', '😀']
/** Small ranges, so registers collide, clocks tie, and one author sometimes signs twice at one hlc. */
const opSpecArbitrary: fc.Arbitrary<OpSpec> = fc.record({
  collection: fc.constantFrom<Collection>(...STATE_COLLECTIONS),
  key: fc.constantFrom(...KEYS),
  author: fc.constantFrom(...AUTHORS),
  wallMs: fc.integer({ min: 0, max: 3 }),
  counter: fc.integer({ min: 0, max: 2 }),
  value: fc.option(fc.record({ v: fc.integer({ min: 0, max: 3 }) }), { nil: undefined })
}, { requiredKeys: ['collection', 'key', 'author', 'wallMs', 'counter'] })

/** Signing costs ~20 µs: sign each distinct op once. */
const signedCache = new Map<string, SignedStateOp>()
function sign (spec: OpSpec): SignedStateOp {
  const id = JSON.stringify([spec.collection, spec.key, spec.author, spec.wallMs, spec.counter, spec.value])
  let signed = signedCache.get(id)
  if (signed === undefined) { signed = signedOp(signers, spec); signedCache.set(id, signed) }
  return signed
}

const opsArbitrary = fc.array(opSpecArbitrary, { minLength: 1, maxLength: 40 }).map((specs) => specs.map(sign))

/** A delivery of every op at least once, with duplicates, in a random order. */
function deliveryArbitrary (count: number): fc.Arbitrary<number[]> {
  return fc.array(fc.nat({ max: count - 1 }), { maxLength: count }).chain((duplicates) => {
    const all = [...Array.from({ length: count }, (_, i) => i), ...duplicates]
    return fc.shuffledSubarray(all, { minLength: all.length, maxLength: all.length })
  })
}

function replicaOf (ops: readonly SignedStateOp[], order?: readonly number[], verify = false): StateStore {
  const replica = new StateStore(verify ? { verifier: signers.directory } : {})
  for (const index of order ?? ops.map((_, i) => i)) replica.apply(ops[index]!, { trusted: !verify })
  return replica
}

function allOps (replica: StateStore): SignedStateOp[] {
  return STATE_COLLECTIONS.flatMap((name) => replica.ops(name))
}

/** What LWW says the registers hold: the greatest (hlc, sha256 of the op bytes) per register. */
function oracle (ops: readonly SignedStateOp[]): Map<string, SignedStateOp> {
  const hash = (op: StateOp): string => createHash('sha256').update(encodeStateOp(op)).digest('hex')
  const winners = new Map<string, SignedStateOp>()
  for (const signed of ops) {
    const id = `${signed.op.collection}/${signed.op.key}`
    const current = winners.get(id)
    if (current === undefined) { winners.set(id, signed); continue }
    const order = compareHlc(signed.op.hlc, current.op.hlc) || (hash(signed.op) > hash(current.op) ? 1 : hash(signed.op) < hash(current.op) ? -1 : 0)
    if (order > 0) winners.set(id, signed)
  }
  return winners
}

function assertSameState (a: StateStore, b: StateStore): void {
  assert.is(a.digest(), b.digest())
  assert.equal(a.collectionDigests(), b.collectionDigests())
  for (const name of STATE_COLLECTIONS) assert.equal(a.entries(name), b.entries(name))
  assert.equal(a.counts(), b.counts())
}

test('state-crdt property: any delivery order with duplicates gives the same state, which is the LWW oracle\'s', () => {
  fc.assert(fc.property(
    opsArbitrary.chain((ops) => fc.tuple(fc.constant(ops), fc.array(deliveryArbitrary(ops.length), { minLength: 3, maxLength: 3 }))),
    ([ops, orders]) => {
      const replicas = orders.map((order, index) => replicaOf(ops, order, index === 0))
      for (const replica of replicas.slice(1)) assertSameState(replicas[0]!, replica)
      const expected = oracle(ops)
      const held = allOps(replicas[0]!)
      assert.is(held.length, expected.size)
      for (const signed of held) {
        const winner = expected.get(`${signed.op.collection}/${signed.op.key}`)
        assert.ok(winner !== undefined)
        assert.equal(encodeStateOp(signed.op), encodeStateOp(winner.op))
      }
    }
  ), { numRuns: 150, seed: 11 })
})

test('state-crdt property: merging replicas is associative, commutative and idempotent', () => {
  const merge = (x: StateStore, y: StateStore): StateStore => replicaOf([...allOps(x), ...allOps(y)])
  fc.assert(fc.property(opsArbitrary, opsArbitrary, opsArbitrary, (opsA, opsB, opsC) => {
    const [a, b, c] = [replicaOf(opsA), replicaOf(opsB), replicaOf(opsC)]
    assertSameState(merge(merge(a, b), c), merge(a, merge(b, c)))
    assertSameState(merge(a, b), merge(b, a))
    assertSameState(merge(a, a), a)
  }), { numRuns: 100, seed: 12 })
})

test('state-crdt property: incremental digests equal digests computed from scratch', () => {
  fc.assert(fc.property(opsArbitrary, fc.array(fc.boolean(), { minLength: 40, maxLength: 40 }), (ops, checkpoints) => {
    const incremental = new StateStore()
    ops.forEach((signed, index) => {
      incremental.apply(signed, { trusted: true })
      if (checkpoints[index] === true) { incremental.digest(); incremental.summary() }
    })
    incremental.pruneTombstones(1)
    const fresh = replicaOf(allOps(incremental))
    assertSameState(incremental, fresh)
    assert.equal(incremental.summary(), fresh.summary())
  }), { numRuns: 150, seed: 13 })
})

test('state-crdt property: one bucket anti-entropy round converges two diverged replicas', () => {
  fc.assert(fc.property(opsArbitrary, opsArbitrary, opsArbitrary, fc.boolean(), (shared, onlyA, onlyB, withBuckets) => {
    const a = replicaOf([...shared, ...onlyA])
    const b = replicaOf([...shared, ...onlyB])
    // a sends its summary; b answers with its ops in the differing buckets and asks for a's.
    const requests = b.diffSummary(a.summary(withBuckets ? STATE_COLLECTIONS : []))
    const toA = b.opsInBuckets(requests)
    const toB = a.opsInBuckets(requests)
    for (const signed of toA) a.apply(signed, { trusted: true })
    for (const signed of toB) b.apply(signed, { trusted: true })
    assertSameState(a, b)
    assertSameState(a, replicaOf([...shared, ...onlyA, ...onlyB]))
    assert.equal(b.diffSummary(a.summary()), [])
    if (withBuckets) {
      // Only differing buckets travel: every op sent is in a bucket where the two disagreed.
      const differing = new Set(requests.flatMap((r) => r.buckets.map((bucket) => `${r.collection}:${bucket}`)))
      for (const signed of [...toA, ...toB]) assert.ok(differing.has(`${signed.op.collection}:${bucketOfKey(signed.op.key)}`))
    }
  }), { numRuns: 150, seed: 14 })
})

test('state-crdt: anti-entropy between equal replicas asks for nothing; one changed key asks for one bucket', () => {
  const ops = KEYS.map((key, i) => signedOp(signers, { key, author: 'n1', wallMs: i + 1, value: { i } }))
  const a = replicaOf(ops)
  const b = replicaOf(ops)
  assert.equal(b.diffSummary(a.summary()), [])
  a.apply(signedOp(signers, { key: 'é', author: 'n2', wallMs: 50, value: { i: 99 } }))
  assert.equal(b.diffSummary(a.summary()), [{ collection: 'services', buckets: [bucketOfKey('é')] }])
  assert.equal(b.diffSummary(a.summary([])), [{ collection: 'services', buckets: Array.from({ length: 256 }, (_, i) => i) }])
})

test('state-crdt: compareKeys orders like UTF-8 bytes', () => {
  fc.assert(fc.property(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'grapheme' }), (x, y) => {
    assert.is(Math.sign(compareKeys(x, y)), Math.sign(Buffer.compare(Buffer.from(x), Buffer.from(y))))
  }), { numRuns: 500, seed: 15 })
})

test.run()
