// Runs the Store compliance suite on the in-memory store (the simulator's disk).
import { MemoryStore } from '../../src/runtime/memory-store.ts'
import { storeCompliance } from './store-compliance.ts'

storeCompliance('memory', async () => {
  let store = new MemoryStore()
  await store.open()
  return {
    get store () { return store },
    reopen: async () => {
      await store.close()
      store = new MemoryStore(store.disk)
      await store.open()
      return store
    },
    cleanup: async () => { await store.close() }
  }
})
