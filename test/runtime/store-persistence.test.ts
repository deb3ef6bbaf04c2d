import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { MemoryStore } from '../../src/runtime/memory-store.ts'
import type { Store, StoreOp } from '../../src/runtime/ports.ts'
import { OP_KEY_PREFIX, StatePersistenceError, createStatePersistence, opStoreKey } from '../../src/runtime/state-persistence.ts'
import { decodeSignedOp, encodeSignedOp } from '../../src/protocols/state-codec.ts'
import { StateStore, type SignedStateOp } from '../../src/protocols/state-crdt.ts'
import { createStateSigners, signedOp } from '../support/state-fixtures.ts'

const signers = createStateSigners(51)

/** A Store whose batches wait until the test releases them, and can be told to fail. */
class GatedStore implements Store {
  readonly inner = new MemoryStore()
  readonly batches: StoreOp[][] = []
  gated = false
  failNext = false
  private releases: Array<() => void> = []

  async open (): Promise<void> { await this.inner.open() }
  async close (): Promise<void> { await this.inner.close() }
  async get (key: string): Promise<Uint8Array | undefined> { return await this.inner.get(key) }
  entries (prefix: string): AsyncIterable<[string, Uint8Array]> { return this.inner.entries(prefix) }
  async batch (ops: StoreOp[]): Promise<void> {
    this.batches.push(ops)
    if (this.gated) await new Promise<void>((resolve) => this.releases.push(resolve))
    if (this.failNext) { this.failNext = false; throw new Error('disk full') }
    await this.inner.batch(ops)
  }

  release (): void { for (const release of this.releases.splice(0)) release() }
}

async function started (store: Store = new MemoryStore(), state = new StateStore({ verifier: signers.directory })) {
  await store.open()
  const persistence = createStatePersistence({ store, state })
  const report = await persistence.start()
  return { store, state, persistence, report }
}

function op (key: string, wallMs: number, kind: 'write' | 'tombstone' = 'write'): SignedStateOp {
  return signedOp(signers, { collection: 'leases', key, author: 'n1', wallMs, ...(kind === 'tombstone' ? {} : { value: { v: wallMs } }) })
}

/** Lets queued microtasks and resolved promises run (the memory store settles within them). */
async function settle (): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve()
}

test('state-persistence: apply resolves after the op is on disk, under op/<collection>/<key>', async () => {
  const { store, persistence } = await started()
  assert.is(await persistence.apply(op('unicast/10.42.0.7', 1)), 'applied')
  const stored = await store.get('op/leases/unicast/10.42.0.7')
  assert.ok(stored !== undefined)
  assert.equal(decodeSignedOp(stored).op.value, { v: 1 })
  assert.is(opStoreKey('leases', 'a/b'), 'op/leases/a/b')
})

test('state-persistence: write before acknowledge: apply waits for its batch, and for nothing else', async () => {
  const store = new GatedStore()
  const { persistence, state } = await started(store)
  store.gated = true
  let acknowledged = false
  const pending = persistence.apply(op('a', 1)).then((result) => { acknowledged = true; return result })
  await settle()
  assert.is(state.get('leases', 'a')?.v, 1, 'memory moves first')
  assert.is(store.batches.length, 1)
  assert.not.ok(acknowledged, 'acknowledged before the batch was written')
  assert.is(await store.inner.get('op/leases/a'), undefined)
  store.release()
  assert.is(await pending, 'applied')
  assert.ok(await store.inner.get('op/leases/a'))
})

test('state-persistence: concurrent applies share batches (group commit); a register written twice is written once', async () => {
  const store = new GatedStore()
  const { persistence } = await started(store)
  store.gated = true
  const first = persistence.apply(op('first', 1))
  await settle()
  const burst = Array.from({ length: 100 }, async (_, i) => await persistence.apply(op(`k${i}`, 2)))
  const rewrites = [persistence.apply(op('k1', 3)), persistence.apply(op('k1', 4))]
  await settle()
  assert.is(store.batches.length, 1, 'the burst waits for the batch in flight')
  store.release()
  await first
  await settle()
  store.release()
  await Promise.all([...burst, ...rewrites])
  assert.is(store.batches.length, 2)
  assert.is(store.batches[1]!.length, 100)
  assert.equal(decodeSignedOp((await store.inner.get('op/leases/k1'))!).op.value, { v: 4 })
  assert.is(persistence.batches, 2)
})

test('state-persistence: ops applied straight to the StateStore (gossip) are persisted; flush waits for them', async () => {
  const { store, state, persistence } = await started()
  state.apply(op('gossip', 1))
  state.apply(op('gossip', 0))
  await persistence.flush()
  assert.equal(decodeSignedOp((await store.get('op/leases/gossip'))!).op.value, { v: 1 })
  // A duplicate still waits for the write of the op it duplicates.
  state.apply(op('later', 1))
  assert.is(await persistence.apply(op('later', 1)), 'duplicate')
  assert.ok(await store.get('op/leases/later'))
})

test('state-persistence: a restart over the same disk reloads the same state and digest', async () => {
  const { store, state, persistence } = await started()
  for (let i = 0; i < 50; i++) await persistence.apply(op(`k${i % 20}`, i, i % 7 === 0 ? 'tombstone' : 'write'))
  await persistence.stop()
  await store.close()
  assert.ok(state.counts().leases.tombstones > 0)
  const restarted = await started(new MemoryStore((store as MemoryStore).disk))
  assert.is(restarted.report.loaded, 20)
  assert.equal(restarted.report.skipped, [])
  assert.is(restarted.state.digest(), state.digest())
  assert.equal(restarted.state.entries('leases'), state.entries('leases'))
  assert.equal(restarted.state.counts(), state.counts())
})

test('state-persistence: corrupt records and records under the wrong key are skipped and reported', async () => {
  const disk = new MemoryStore()
  await disk.open()
  await disk.batch([
    { type: 'put', key: 'op/leases/good', value: encodeSignedOp(op('good', 1)) },
    { type: 'put', key: 'op/leases/moved', value: encodeSignedOp(op('elsewhere', 1)) },
    { type: 'put', key: 'op/leases/corrupt', value: Uint8Array.from([3, 0, 1, 120]) },
    { type: 'put', key: 'other/ignored', value: Uint8Array.from([1]) }
  ])
  const { state, report } = await started(disk)
  assert.is(report.loaded, 1)
  assert.equal(report.skipped.map((entry) => entry.key), ['op/leases/corrupt', 'op/leases/moved'])
  assert.match(report.skipped[0]!.reason, /state op: .*truncated/)
  assert.match(report.skipped[1]!.reason, /holds the op of op\/leases\/elsewhere/)
  assert.equal(state.entries('leases').map(([key]) => key), ['good'])
  assert.is(OP_KEY_PREFIX, 'op/')
})

test('state-persistence: pruning tombstones deletes them from disk', async () => {
  const { store, persistence } = await started()
  await persistence.apply(op('old', 1, 'tombstone'))
  await persistence.apply(op('new', 900, 'tombstone'))
  await persistence.apply(op('live', 1))
  assert.is(await persistence.pruneTombstones(500), 1)
  assert.is(await store.get('op/leases/old'), undefined)
  assert.ok(await store.get('op/leases/new'))
  assert.ok(await store.get('op/leases/live'))
})

test('state-persistence: a failed write fails its waiters and every later call', async () => {
  const store = new GatedStore()
  const { persistence, state } = await started(store)
  store.failNext = true
  try {
    await persistence.apply(op('a', 1))
    assert.unreachable('the apply whose batch failed must reject')
  } catch (error) {
    assert.instance(error, StatePersistenceError)
    assert.match((error as Error).message, /writing 1 ops failed: disk full/)
  }
  for (const call of [async () => await persistence.apply(op('b', 1)), async () => { await persistence.flush() }]) {
    try { await call(); assert.unreachable('expected StatePersistenceError') } catch (error) { assert.instance(error, StatePersistenceError) }
  }
  assert.is(state.get('leases', 'b'), undefined, 'nothing is applied once the disk failed')
})

test('state-persistence: start is idempotent; apply before start or after stop is refused', async () => {
  const store = new MemoryStore()
  await store.open()
  const persistence = createStatePersistence({ store, state: new StateStore() })
  try { await persistence.apply(op('a', 1)); assert.unreachable('expected StatePersistenceError') } catch (error) { assert.instance(error, StatePersistenceError) }
  const [one, two] = await Promise.all([persistence.start(), persistence.start()])
  assert.is(one, two)
  await persistence.apply(op('a', 1))
  await persistence.stop()
  await persistence.stop()
  try { await persistence.apply(op('b', 1)); assert.unreachable('expected StatePersistenceError') } catch (error) { assert.match((error as Error).message, /not started/) }
})

test.run()
