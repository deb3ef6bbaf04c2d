// The Store port on LevelDB (classic-level 3.0.0): an embedded, crash-safe log-structured store
// with prebuilt binaries in the npm package, so it installs on Node 20 with nothing downloaded from
// elsewhere. A batch is one atomic write-ahead-log record; once it resolves the record is in the
// OS's hands, so a killed process loses nothing acknowledged. `sync: true` also fsyncs each batch,
// which survives a machine crash too, at the cost of a disk flush per batch (the state persistence
// groups concurrent writes into one batch, so that cost is paid per group, not per op).
import { ClassicLevel } from 'classic-level'
import { StoreError, checkStoreBatch, checkStoreKey } from './memory-store.ts'
import type { Store, StoreOp } from './ports.ts'

export interface LevelStoreOptions {
  /** The database directory; created when missing. */
  directory: string
  /** fsync every batch (default false: written to the OS, which is what survives a SIGKILL). */
  sync?: boolean
}

export class LevelStore implements Store {
  private readonly db: ClassicLevel<string, Uint8Array>
  private readonly sync: boolean
  private isOpen = false

  constructor (options: LevelStoreOptions) {
    if (typeof options.directory !== 'string' || options.directory === '') throw new TypeError('level store: directory must be a non-empty path')
    this.db = new ClassicLevel<string, Uint8Array>(options.directory, { keyEncoding: 'utf8', valueEncoding: 'view' })
    this.sync = options.sync ?? false
  }

  get directory (): string { return this.db.location }

  async open (): Promise<void> {
    if (this.isOpen) return
    try {
      await this.db.open({ createIfMissing: true })
    } catch (error) {
      // LEVEL_LOCKED names the usual cause: another process holds the directory.
      const code = (error as { cause?: { code?: string }, code?: string }).cause?.code ?? (error as { code?: string }).code ?? 'unknown'
      throw new StoreError('io', `cannot open ${this.db.location} (${code})`, { cause: error })
    }
    this.isOpen = true
  }

  async close (): Promise<void> {
    if (!this.isOpen) return
    this.isOpen = false
    await this.db.close()
  }

  async get (key: string): Promise<Uint8Array | undefined> {
    this.checkOpen()
    checkStoreKey(key)
    return await this.db.get(key)
  }

  async batch (ops: StoreOp[]): Promise<void> {
    this.checkOpen()
    checkStoreBatch(ops)
    if (ops.length === 0) return
    await this.db.batch(ops.map((op) => op.type === 'put' ? { type: 'put' as const, key: op.key, value: op.value } : { type: 'del' as const, key: op.key }), { sync: this.sync })
  }

  /** Iterates a snapshot taken at the call (LevelDB's implicit iterator snapshot). */
  entries (prefix: string): AsyncIterable<[string, Uint8Array]> {
    this.checkOpen()
    if (typeof prefix !== 'string') throw new StoreError('key', 'a prefix must be a string')
    // Keys sharing a byte prefix are contiguous in LevelDB's byte order: start at the prefix and
    // stop at the first key without it.
    const iterator = this.db.iterator(prefix === '' ? {} : { gte: prefix })
    return (async function * () {
      try {
        for await (const [key, value] of iterator) {
          if (!key.startsWith(prefix)) break
          yield [key, value] as [string, Uint8Array]
        }
      } finally {
        await iterator.close()
      }
    })()
  }

  private checkOpen (): void {
    if (!this.isOpen) throw new StoreError('closed', 'the store is not open')
  }
}

export function createLevelStore (options: LevelStoreOptions): LevelStore { return new LevelStore(options) }
