// Runs the Store compliance suite on LevelDB (classic-level) in a fresh directory under the OS's
// temporary directory, removed after each test.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LevelStore } from '../../src/runtime/level-store.ts'
import { storeCompliance } from './store-compliance.ts'

storeCompliance('level', async () => {
  const directory = await mkdtemp(join(tmpdir(), 'form-anycast-store-'))
  let store = new LevelStore({ directory })
  await store.open()
  return {
    get store () { return store },
    reopen: async () => {
      await store.close()
      store = new LevelStore({ directory })
      await store.open()
      return store
    },
    cleanup: async () => {
      await store.close()
      await rm(directory, { recursive: true, force: true })
    }
  }
})
