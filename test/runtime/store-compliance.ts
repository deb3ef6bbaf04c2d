// The one compliance suite for the `Store` port (ports.ts), run against every implementation: the
// in-memory store (store-memory.test.ts) and LevelDB (store-level.test.ts). The simulator's nodes
// persist through the memory store and real nodes through LevelDB; if the state persistence could
// tell them apart through the port, one of them fails here.
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import type { Store } from '../../src/runtime/ports.ts'
import { StoreError } from '../../src/runtime/memory-store.ts'

export interface StoreHarness {
  /** An opened, empty store. */
  store: Store
  /** Close the store and open one over the same data (a node restarting over its disk). */
  reopen(): Promise<Store>
  /** Close and delete everything. */
  cleanup(): Promise<void>
}

const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values)

async function collect (store: Store, prefix: string): Promise<Array<[string, number[]]>> {
  const found: Array<[string, number[]]> = []
  for await (const [key, value] of store.entries(prefix)) found.push([key, Array.from(value)])
  return found
}

async function expectStoreError (run: () => Promise<unknown>, code: StoreError['code']): Promise<void> {
  try {
    await run()
  } catch (error) {
    assert.instance(error, StoreError)
    assert.is((error as StoreError).name, 'StoreError')
    assert.is((error as StoreError).code, code)
    return
  }
  assert.unreachable(`expected a StoreError (${code})`)
}

export function storeCompliance (name: string, createHarness: () => Promise<StoreHarness>): void {
  const test = suite(`store compliance: ${name}`)
  let harness: StoreHarness
  test.before.each(async () => { harness = await createHarness() })
  test.after.each(async () => { await harness.cleanup() })

  test('get: an absent key is undefined; a put value comes back; open is idempotent', async () => {
    const { store } = harness
    await store.open()
    assert.is(await store.get('op/nodes/a'), undefined)
    await store.batch([{ type: 'put', key: 'op/nodes/a', value: bytes(1, 2, 3) }])
    assert.equal(Array.from(await store.get('op/nodes/a') ?? []), [1, 2, 3])
    assert.instance(await store.get('op/nodes/a'), Uint8Array)
    await store.batch([{ type: 'put', key: 'op/nodes/a', value: bytes() }])
    assert.equal(Array.from(await store.get('op/nodes/a') ?? [9]), [])
  })

  test('batch: puts and deletes in order; a delete of an absent key is fine', async () => {
    const { store } = harness
    await store.batch([
      { type: 'put', key: 'a', value: bytes(1) },
      { type: 'put', key: 'b', value: bytes(2) },
      { type: 'del', key: 'a' },
      { type: 'del', key: 'never' },
      { type: 'put', key: 'b', value: bytes(3) }
    ])
    assert.is(await store.get('a'), undefined)
    assert.equal(Array.from(await store.get('b') ?? []), [3])
    await store.batch([])
  })

  test('batch: atomic: one bad operation writes nothing', async () => {
    const { store } = harness
    await store.batch([{ type: 'put', key: 'kept', value: bytes(1) }])
    await expectStoreError(() => store.batch([
      { type: 'put', key: 'new', value: bytes(1) },
      { type: 'del', key: 'kept' },
      { type: 'put', key: '', value: bytes(2) }
    ]), 'key')
    await expectStoreError(() => store.batch([{ type: 'put', key: 'new', value: 'text' as unknown as Uint8Array }]), 'value')
    assert.is(await store.get('new'), undefined)
    assert.equal(Array.from(await store.get('kept') ?? []), [1])
  })

  test('values are copied in and out', async () => {
    const { store } = harness
    const value = bytes(1, 2)
    await store.batch([{ type: 'put', key: 'k', value }])
    value[0] = 9
    const read = await store.get('k')
    assert.equal(Array.from(read ?? []), [1, 2])
    read![1] = 9
    assert.equal(Array.from(await store.get('k') ?? []), [1, 2])
    for await (const [, entry] of store.entries('k')) entry[0] = 7
    assert.equal(Array.from(await store.get('k') ?? []), [1, 2])
  })

  test('entries: only keys with the prefix, in UTF-8 byte order', async () => {
    const { store } = harness
    const keys = ['op/b', 'op/a', 'op/\uffff', 'op/😀', 'op/é', 'op/a/b', 'op', 'opx/a', 'oo/z', 'op0']
    await store.batch(keys.map((key, i) => ({ type: 'put' as const, key, value: bytes(i) })))
    const expected = ['op/a', 'op/a/b', 'op/b', 'op/é', 'op/\uffff', 'op/😀']
    assert.equal((await collect(store, 'op/')).map(([key]) => key), expected)
    assert.equal((await collect(store, 'op/')).map(([, value]) => value[0]), expected.map((key) => keys.indexOf(key)))
    assert.equal((await collect(store, '')).length, keys.length)
    assert.equal((await collect(store, 'op/😀')).map(([key]) => key), ['op/😀'])
    assert.equal(await collect(store, 'zz'), [])
    assert.equal((await collect(store, 'op')).map(([key]) => key), ['op', ...expected, 'op0', 'opx/a'])
  })

  test('entries: a snapshot at the call; breaking out early is fine', async () => {
    const { store } = harness
    await store.batch(Array.from({ length: 50 }, (_, i) => ({ type: 'put' as const, key: `s/${String(i).padStart(2, '0')}`, value: bytes(i) })))
    const seen: string[] = []
    for await (const [key] of store.entries('s/')) {
      if (seen.length === 0) await store.batch([{ type: 'put', key: 's/99', value: bytes(1) }, { type: 'del', key: 's/49' }])
      seen.push(key)
    }
    assert.is(seen.length, 50)
    assert.ok(seen.includes('s/49') && !seen.includes('s/99'))
    let count = 0
    for await (const entry of store.entries('s/')) { if (entry[0] !== '' && ++count === 3) break }
    assert.is(count, 3)
    assert.equal(Array.from(await store.get('s/99') ?? []), [1])
  })

  test('keys: empty, unpaired surrogates and over 1 KiB are refused', async () => {
    const { store } = harness
    await expectStoreError(() => store.get(''), 'key')
    await expectStoreError(() => store.get('a\ud800'), 'key')
    await expectStoreError(() => store.batch([{ type: 'put', key: 'x'.repeat(1025), value: bytes() }]), 'key')
    await store.batch([{ type: 'put', key: 'x'.repeat(1024), value: bytes(1) }])
    assert.ok(await store.get('x'.repeat(1024)))
  })

  test('close: idempotent; every call after it is refused; reopening keeps every write', async () => {
    await harness.store.batch(Array.from({ length: 2000 }, (_, i) => ({ type: 'put' as const, key: `op/leases/${i}`, value: bytes(i & 0xff, i >> 8) })))
    await harness.store.batch([{ type: 'del', key: 'op/leases/7' }])
    const closed = harness.store
    const store = await harness.reopen()
    await closed.close()
    await expectStoreError(() => closed.get('op/leases/1'), 'closed')
    await expectStoreError(() => closed.batch([]), 'closed')
    await expectStoreError(async () => { for await (const entry of closed.entries('')) assert.ok(entry) }, 'closed')
    const entries = await collect(store, 'op/leases/')
    assert.is(entries.length, 1999)
    assert.equal(Array.from(await store.get('op/leases/1999') ?? []), [1999 & 0xff, 1999 >> 8])
    assert.is(await store.get('op/leases/7'), undefined)
  })

  test.run()
}
