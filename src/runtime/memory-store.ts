// The Store port in memory, for the simulator and tests. Its contents live in a MemoryDisk that
// outlives the store: a new MemoryStore over the same disk is a node restarting over its disk,
// which is how the simulator models a crash (drop the node, build a new one over the same disk). Same rules as the LevelDB
// adapter, checked by one compliance suite (test/runtime/store-compliance.ts): keys in UTF-8 byte
// order, atomic batches, values copied in and out, every call on a closed store refused.
import type { Store, StoreOp } from './ports.ts'

/** `code` says which rule was broken: 'closed' (not open), 'key' (bad key), 'value' (not bytes), 'io'. */
export class StoreError extends Error {
  override name = 'StoreError'
  constructor (readonly code: 'closed' | 'key' | 'value' | 'io', message: string, options?: { cause?: unknown }) {
    super(`store: ${message}`, options)
  }
}

/** Most bytes in a key: LevelDB has no bound of its own, ours keep memory use predictable. */
export const MAX_STORE_KEY_BYTES = 1024
/** Most bytes in a value (an encoded op is under 5 KiB). */
export const MAX_STORE_VALUE_BYTES = 1024 * 1024
/** Most operations in one batch. */
export const MAX_STORE_BATCH_OPS = 100_000

const UNPAIRED_SURROGATE = /\p{Cs}/u

/** Throws StoreError unless the key is a non-empty, well-formed string within the bound. */
export function checkStoreKey (key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length === 0) throw new StoreError('key', 'a key must be a non-empty string')
  if (UNPAIRED_SURROGATE.test(key)) throw new StoreError('key', 'a key must not contain an unpaired surrogate (it has no UTF-8 form)')
  if (Buffer.byteLength(key) > MAX_STORE_KEY_BYTES) throw new StoreError('key', `a key must be at most ${MAX_STORE_KEY_BYTES} bytes`)
}

/** Throws StoreError unless every op of the batch is well formed; nothing is written then. */
export function checkStoreBatch (ops: StoreOp[]): void {
  if (!Array.isArray(ops)) throw new StoreError('value', 'a batch must be an array')
  if (ops.length > MAX_STORE_BATCH_OPS) throw new StoreError('value', `a batch must have at most ${MAX_STORE_BATCH_OPS} operations`)
  for (const op of ops) {
    checkStoreKey(op.key)
    if (op.type === 'del') continue
    if (op.type !== 'put') throw new StoreError('value', `unknown batch operation type ${String((op as { type: unknown }).type)}`)
    if (!(op.value instanceof Uint8Array)) throw new StoreError('value', `the value of ${op.key} must be a Uint8Array`)
    if (op.value.byteLength > MAX_STORE_VALUE_BYTES) throw new StoreError('value', `the value of ${op.key} must be at most ${MAX_STORE_VALUE_BYTES} bytes`)
  }
}

/** What survives a simulated crash: every written key and value. */
export type MemoryDisk = Map<string, Uint8Array>

export class MemoryStore implements Store {
  private isOpen = false

  constructor (private readonly data: MemoryDisk = new Map()) {}

  /** The data, for a store that reopens it after a simulated crash. */
  get disk (): MemoryDisk { return this.data }

  async open (): Promise<void> { this.isOpen = true }

  async close (): Promise<void> { this.isOpen = false }

  async get (key: string): Promise<Uint8Array | undefined> {
    this.checkOpen()
    checkStoreKey(key)
    return this.data.get(key)?.slice()
  }

  async batch (ops: StoreOp[]): Promise<void> {
    this.checkOpen()
    checkStoreBatch(ops)
    for (const op of ops) {
      if (op.type === 'put') this.data.set(op.key, op.value.slice())
      else this.data.delete(op.key)
    }
  }

  /** A snapshot taken at the call: writes made while iterating are not seen (like LevelDB's). */
  entries (prefix: string): AsyncIterable<[string, Uint8Array]> {
    this.checkOpen()
    if (typeof prefix !== 'string') throw new StoreError('key', 'a prefix must be a string')
    const matching: Array<{ order: Buffer, key: string, value: Uint8Array }> = []
    for (const [key, value] of this.data) if (key.startsWith(prefix)) matching.push({ order: Buffer.from(key), key, value })
    matching.sort((a, b) => Buffer.compare(a.order, b.order))
    return (async function * () {
      for (const { key, value } of matching) yield [key, value.slice()] as [string, Uint8Array]
    })()
  }

  /** Number of keys held (for tests and the simulator's figures). */
  get size (): number { return this.data.size }

  private checkOpen (): void {
    if (!this.isOpen) throw new StoreError('closed', 'the store is not open')
  }
}

export function createMemoryStore (disk?: MemoryDisk): MemoryStore { return new MemoryStore(disk) }
